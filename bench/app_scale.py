"""Ten thousand organisations on one Xero app (issue 15): the app-wide budget under the product's real limiter,
beat, Celery workers, PostgreSQL and Redis, against xero_sandbox (not a test).

Usage:
  .venv/bin/python bench/app_scale.py                                   # 10,000 tenants, 100 pushing 2,000 each
  .venv/bin/python bench/app_scale.py --tenants 200 --pushing 5 --xero-minutes 10     # a quick look

Needs PostgreSQL and redis-server. Uses its own database (BENCH_APP_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/coordinoter_bench_app, created and migrated if missing, emptied at each run) and
a private redis-server on a free port (tests.support.live.PrivateRedis; or BENCH_APP_REDIS_URL, flushed): the
machine's Redis databases 2-15 belong to whichever test runs claim them, and a test run's FLUSHDB there would drop
the benchmark's queued tasks.

What runs
- xero_sandbox with --extra-orgs (tenants - 2), Xero's real limits (a tenant: 5 at once, 60 a minute, 5,000 a day;
  the app: 10,000 a minute), the push latency model of bench/push_throughput.py (500 ms + 20 ms per invoice), all
  at --time-scale, and its webhooks delivered to the product's receiver.
- The product, unchanged and with production settings (DJANGO_DEBUG off, bench/common.py): the receiver under
  gunicorn, Celery workers (solo pool: --push-workers on `xero`, one on `webhooks`, --background-workers on
  `default`), beat with the one schedule, XERO_TIME_SCALE matching the sandbox (Xero's windows, the reconciliation
  cadence and its beat divided by it). Keep-alive keeps wall time (each connection's daily check at its own second
  of the real day); only its fan-out window is divided by the scale, so checks come due all through the run.
- The connections are seeded through the documented path: the sandbox's admin API `POST /_sandbox/bulk-connect`
  issues each tenant its own user, connection and token set (what a consent leaves), and `seed_connections` below
  stores them through the token store (`tokens.connection_tokens_save`), as the connect flow does. Every connection
  starts in steady state: checked within the last day at its own time, its refresh token issued 0-7.5 days ago (so
  keep-alive refreshes come due during the run), its reconciliation due at its phase within the cadence.
- Meanwhile --pushing tenants each push --invoices invoices, each at its own random moment of the run (seeded), as
  if a batch were created then: the invoices, made beforehand, turn pending and the push is enqueued.

Figures (Xero time = wall time x scale). app_calls_per_min_max and the background figures come from the limiter's
own sliding window (all calls, and the background classes), sampled every second: a sliding window's maximum is at
least any fixed Xero minute's. http_429 and per-tenant push timing come from the sandbox's request log.
push_ratio_min: over pushing tenants, invoices / Xero minutes from its start moment to its last invoice in Xero,
divided by the tenant ceiling (60 calls x 50 = 3,000 a Xero minute); push_schedule_efficiency_min: the tightest
schedule Xero's limits and the latency model allow for its calls, divided by the time it took.
reconcile_coverage: share of tenants whose last complete pass is no older than their cadence (plus two fan-out
intervals) when the workers stop. keepalive_overdue: connections whose daily check time passed during the run more
than one keep-alive window and a minute before its end without a check since, or checked with a refresh token still
older than XERO_KEEPALIVE_AFTER_DAYS.
worker_rss_mb: the largest worker's peak resident memory. cpu_s_by_component: CPU seconds during the run of the
push workers, the webhook and default workers, beat, the receiver, the sandbox (Xero's side), PostgreSQL (the server
and its backends) and the private Redis, and of the whole machine. The sandbox's request log is left in the logs
directory (sandbox-requests.jsonl) for a closer look at one tenant. Prints one JSON object as its last line.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WEBHOOK_KEY = "bench-app-scale-webhook-key"
CALLS_PER_MINUTE, INVOICES_PER_CALL, CONCURRENT = 60, 50, 5


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tenants", type=int, default=10000, help="connected tenants")
    parser.add_argument("--pushing", type=int, default=100, help="tenants that push during the run")
    parser.add_argument("--invoices", type=int, default=2000, help="invoices each pushing tenant pushes")
    parser.add_argument("--customers", type=int, default=20, help="customers per pushing tenant")
    parser.add_argument("--xero-minutes", type=float, default=60.0, help="length of the run in Xero minutes")
    parser.add_argument("--time-scale", type=float, default=5.0)
    # Solo workers spend most of a push waiting on Xero (1.5 Xero seconds a PUT): five in flight per tenant, for the
    # three or four tenants whose pushes overlap at the busiest moments of the run.
    parser.add_argument("--push-workers", type=int, default=20)
    parser.add_argument("--background-workers", type=int, default=1)
    # Everything shares one small machine here; in production `webhooks` and `default` run on their own worker hosts.
    # A niceness for their workers (and beat) gives the push workers the CPU first, as separate hosts would (tried on
    # 4 Dec at 10: it did not raise push_ratio_min, see docs/benchmarks.md, so it is off by default).
    parser.add_argument("--background-nice", type=int, default=0, help="niceness of the background workers (0: none)")
    parser.add_argument("--latency-ms", type=float, default=500.0)
    parser.add_argument("--latency-per-invoice-ms", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--drain-seconds", type=float, default=120.0, help="wall seconds to let pushes finish")
    return parser.parse_args()


def _cpu_seconds(pids) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(v) for v in fields[11:15]) / ticks
    return total


def _machine_cpu_seconds() -> float:
    """CPU time the whole machine spent busy (every process, not idle or waiting on I/O), from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    busy = sum(fields[:8]) - fields[3] - fields[4]  # user nice system idle iowait irq softirq steal
    return busy / os.sysconf("SC_CLK_TCK")


def _group_pids(leader: int) -> list[int]:
    """The processes of a process group (gunicorn's arbiter and its worker)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[2]) == leader:
                    found.append(int(entry.name))
    return found


def _postmaster_pids() -> list[int]:
    """PostgreSQL's postmaster: its children's CPU (backends, reaped) counts in its own cutime and cstime, so the
    share of PostgreSQL is its CPU now plus its live backends'. Empty where it cannot be found."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() in ("postgres", "postmaster"):
                    found.append(int(entry.name))
    return found


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_redis_server = None


def _private_redis():
    global _redis_server
    from tests.support.live import PrivateRedis

    _redis_server = PrivateRedis()
    _redis_server.start()
    return _redis_server


def main() -> None:
    args = parse_args()
    from xero_sandbox.testing import start_sandbox

    port = _free_port()
    started = time.monotonic()
    sandbox = start_sandbox(
        time_scale=args.time_scale,
        latency_ms=args.latency_ms,
        latency_per_invoice_ms=args.latency_per_invoice_ms,
        extra_orgs=max(0, args.tenants - 2),
        webhook_url=f"http://127.0.0.1:{port}/integrations/xero/webhooks/",
        webhook_key=WEBHOOK_KEY,
        quiet=True,
        startup_timeout=120.0,  # seeding 10,000 organisations takes 10-15 s, more on a busy machine
    )
    sandbox_ready = time.monotonic() - started
    try:
        result = run(args, sandbox, port)
    finally:
        sandbox.stop()
        if _redis_server is not None:
            _redis_server.stop()
    result["sandbox_start_s"] = round(sandbox_ready, 1)
    print(json.dumps(result))


def environment(args, sandbox) -> dict[str, str]:
    from cryptography.fernet import Fernet

    database_url = os.environ.get("BENCH_APP_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/coordinoter_bench_app")
    redis_url = os.environ.get("BENCH_APP_REDIS_URL") or _private_redis().url(0)
    scale = args.time_scale
    env = {
        "DJANGO_SETTINGS_MODULE": "coordinoter.settings",
        "DJANGO_DEBUG": "true",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "CACHE_REDIS_URL": redis_url,
        "TOKEN_ENCRYPTION_KEYS": os.environ.get("BENCH_TOKEN_KEY") or Fernet.generate_key().decode(),
        "XERO_TIME_SCALE": str(scale),
        "XERO_WEBHOOK_KEY": WEBHOOK_KEY,
        "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
        "XERO_RATE_LIMIT_PREFIX": f"bench:app:{uuid.uuid4().hex[:8]}",
        "XERO_CLIENT_ID": sandbox.client_id,
        "XERO_CLIENT_SECRET": sandbox.client_secret,
        "XERO_TOKEN_URL": sandbox.token_endpoint,
        "XERO_REVOCATION_URL": sandbox.revocation_endpoint,
        "XERO_CONNECTIONS_URL": sandbox.connections_url,
        "XERO_API_URL": sandbox.api_url,
        # The beat's fan-outs in Xero time (the cadences they serve are divided by XERO_TIME_SCALE in settings).
        "XERO_RECONCILE_EVERY_SECONDS": str(max(1, round(60 / scale))),
        "PUSH_SWEEP_SECONDS": str(max(2.0, 30 / scale)),
        "OUTBOUND_SWEEP_SECONDS": str(max(2.0, 30 / scale)),
        # Keep-alive keeps wall time (each connection's check at its own second of the real day), but its fan-out
        # runs every window divided by the scale, so the checks come due through the run, not all at its end.
        "XERO_KEEPALIVE_WINDOW_SECONDS": str(max(60, round(600 / scale))),
        "PYTHONUNBUFFERED": "1",
    }
    os.environ.update(env)
    from bench.common import create_database

    create_database(database_url)
    return env


def run(args, sandbox, port: int) -> dict:
    env = environment(args, sandbox)
    import django

    django.setup()
    import redis
    from django.core.management import call_command
    from django.db import connection

    from organisations.models import Organisation

    call_command("migrate", verbosity=0)
    redis.Redis.from_url(env["REDIS_URL"]).flushdb()
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {Organisation._meta.db_table} CASCADE")
    clock = time.monotonic()
    tenants = [t["tenantId"] for t in sandbox.tenants()][: args.tenants]
    if len(tenants) < args.tenants:
        raise SystemExit(f"the sandbox offers {len(tenants)} organisations, not {args.tenants}")
    organisations = seed_connections(sandbox, tenants, args)
    seed_seconds = time.monotonic() - clock
    rng = random.Random(args.seed)
    step = max(1, len(tenants) // max(1, args.pushing))
    pushing = [organisations[i] for i in range(0, len(organisations), step)][: args.pushing]
    clock = time.monotonic()
    for org_id, _tenant_id in pushing:
        make_unsent_batch(organisation_id=org_id, invoices=args.invoices, customers=args.customers)
    batch_seconds = time.monotonic() - clock
    result = measure(args, sandbox, env, port, organisations, pushing, rng)
    result.update(seed_s=round(seed_seconds, 1), batches_s=round(batch_seconds, 1))
    return result


# ---------------------------------------------------------------- seeding (the documented path)


def seed_connections(sandbox, tenants: list[str], args) -> list[tuple[int, str]]:
    """Connect every tenant: tokens issued by the sandbox (POST /_sandbox/bulk-connect, each tenant its own user and
    grant), stored through the token store. Steady state: each connection checked at its own time within the last
    day, its refresh token 0-7 days old, its reconciliation due at its phase. Returns (organisation id, tenant id)."""
    from django.conf import settings
    from django.db import transaction
    from django.utils import timezone

    from integrations.models import ReconciliationState, XeroConnection
    from integrations.selectors import DAY_SECONDS, keepalive_offset_seconds
    from integrations.services.reconcile_cadence import reconcile_next_due
    from integrations.xero import tokens
    from integrations.xero.types import TokenSet
    from organisations.models import Organisation

    now = timezone.now()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    quiet = dt.timedelta(seconds=settings.XERO_RECONCILE_QUIET_SECONDS)
    rng = random.Random(args.seed + 1)
    made: list[tuple[int, str]] = []
    for start in range(0, len(tenants), 1000):
        page = tenants[start : start + 1000]
        issued = sandbox.admin("POST", "/bulk-connect", {"tenants": page})
        with transaction.atomic():
            orgs = Organisation.objects.bulk_create(
                [Organisation(name=f"App Scale {start + i:05d} {item['tenantName']}") for i, item in enumerate(issued)]
            )
            connections = XeroConnection.objects.bulk_create(
                [
                    XeroConnection(
                        organisation=org,
                        status=XeroConnection.Status.ACTIVE,
                        tenant_id=item["tenantId"],
                        tenant_name=item["tenantName"],
                        tenant_type="ORGANISATION",
                        tenant_short_code=f"!b{start + i:05d}",
                        base_currency="AUD",
                        connection_id=item["id"],
                        auth_event_id=item["authEventId"],
                        connected_at=now - dt.timedelta(days=30),
                        status_changed_at=now - dt.timedelta(days=30),
                    )
                    for i, (org, item) in enumerate(zip(orgs, issued, strict=True))
                ]
            )
            for conn, item in zip(connections, issued, strict=True):
                tokens.connection_tokens_save(
                    connection=conn,
                    token_set=TokenSet(
                        access_token=item["access_token"],
                        refresh_token=item["refresh_token"],
                        expires_at=now + dt.timedelta(seconds=int(item["expires_in"])),
                        scopes=tuple(item["scope"].split()),
                    ),
                )
            # Steady state: the last daily check at its own second (today's if passed, else yesterday's), the
            # refresh token issued 0-7 days ago, the reconciliation due at its phase within the cadence.
            for conn in connections:
                at = midnight + dt.timedelta(seconds=keepalive_offset_seconds(conn.pk))
                if at > now:
                    at -= dt.timedelta(seconds=DAY_SECONDS)
                XeroConnection.objects.filter(pk=conn.pk).update(
                    last_verified_at=at,
                    refresh_token_issued_at=now - dt.timedelta(seconds=rng.uniform(0, 7.5 * DAY_SECONDS)),
                )
            states = []
            for org in orgs:
                due = reconcile_next_due(organisation_id=org.pk, after=now)  # within the next cadence
                states.append(
                    ReconciliationState(
                        organisation=org, next_due_at=due, due_reason="cadence", last_success_at=due - quiet
                    )
                )
            ReconciliationState.objects.bulk_create(states)
        made += [(org.pk, item["tenantId"]) for org, item in zip(orgs, issued, strict=True)]
    return made


def make_unsent_batch(*, organisation_id: int, invoices: int, customers: int) -> None:
    """A batch created beforehand, its invoices not yet pending (they turn pending at the tenant's moment)."""
    from decimal import Decimal

    from invoices.models import Customer, Invoice, InvoiceBatch, InvoiceLine, XeroMapping

    XeroMapping.objects.create(
        organisation_id=organisation_id, revenue_account_code="200", revenue_account_name="Sales", tax_type="OUTPUT"
    )
    batch = InvoiceBatch.objects.create(
        organisation_id=organisation_id, name="App scale batch", eligibility=InvoiceBatch.Eligibility.ELIGIBLE
    )
    people = [  # one by one: save() sets each customer's canonical name key
        Customer.objects.create(
            organisation_id=organisation_id, name=f"Kunde {i:03d} Straße {organisation_id}", email=f"c{i}@x.test"
        )
        for i in range(customers)
    ]
    rows = Invoice.objects.bulk_create(
        [
            Invoice(
                organisation_id=organisation_id,
                batch=batch,
                customer=people[i % customers],
                number=f"AS{organisation_id}-{i:05d}",
                currency="AUD",
                issue_date=dt.date(2026, 11, 2),
                due_date=dt.date(2026, 11, 30),
                total=Decimal("110.00"),
                amount_due=Decimal("110.00"),
                sync_state=Invoice.SyncState.NOT_SYNCED,
            )
            for i in range(invoices)
        ]
    )
    InvoiceLine.objects.bulk_create(
        [
            InvoiceLine(invoice=r, description="Monthly service", quantity=Decimal(1), unit_amount=Decimal(100))
            for r in rows
        ]
    )


# ---------------------------------------------------------------- the run


def measure(args, sandbox, env, port, organisations, pushing, rng) -> dict:
    import redis
    from django.conf import settings
    from django.db import OperationalError, transaction
    from django.db import connection as db_connection
    from django.utils import timezone

    from integrations.xero.ratelimit import BACKGROUND, rate_limiter
    from invoices.models import Invoice
    from invoices.services.push import push_enqueue_for_organisation
    from tests.support.live import CeleryProcesses

    scale = args.time_scale
    run_seconds = args.xero_minutes * 60 / scale
    # Each pushing tenant starts at its own random moment, early enough to finish within the run.
    starts = sorted((rng.uniform(0, run_seconds * 0.9), org_id, tenant_id) for org_id, tenant_id in pushing)
    sandbox.admin("GET", "/requests?drain=1")
    from bench.common import AutovacuumStandIn, compile_product, production_env

    # The product's processes run as production does (DEBUG off: no debug cursor recording every query).
    product_env = production_env({**env, "XERO_REDIRECT_URI": "http://127.0.0.1/callback"}, log_level=env["LOG_LEVEL"])
    compile_product()
    processes = CeleryProcesses(env={**os.environ, **product_env})
    web = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "coordinoter.wsgi",
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            "1",
            "--threads",
            "4",
            "-k",
            "gthread",
        ],
        cwd=str(ROOT),
        env={**os.environ, **product_env},
        stdout=(Path(processes.dir) / "gunicorn.log").open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log: list[dict] = []
    samples: list[dict] = []
    rss: dict[int, float] = {}
    stop = threading.Event()
    try:
        push_pids = processes.start_workers(args.push_workers, queues="xero")
        webhook_pids = processes.start_workers(1, queues="webhooks")
        default_pids = processes.start_workers(args.background_workers, queues="default")
        pids = push_pids + webhook_pids + default_pids
        beat_pid = processes.start_beat()
        if args.background_nice:
            for pid in webhook_pids + default_pids + [beat_pid]:
                os.setpriority(os.PRIO_PROCESS, pid, args.background_nice)
        components = {
            "push_workers": push_pids,
            "webhook_worker": webhook_pids,
            "default_workers": default_pids,
            "beat": [beat_pid],
            "receiver": _group_pids(web.pid),
            "sandbox": [sandbox.process.pid],
            "postgresql": _postmaster_pids(),
            "redis": [_redis_server.process.pid] if _redis_server is not None and _redis_server.process else [],
        }
        limiter = rate_limiter()
        rss.update({pid: 0.0 for pid in pids})

        def sample() -> None:
            while not stop.is_set():
                for pid in pids:
                    with contextlib.suppress(OSError):
                        rss[pid] = max(rss[pid], processes.rss_mb(pid))
                with contextlib.suppress(Exception):
                    usage = limiter.app_usage()
                    samples.append({"at": time.time(), **usage})
                stop.wait(1.0)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        # Production's autovacuum, which this machine's PostgreSQL runs without (its first pass analyzes the tables
        # just seeded, as autovacuum would before any push).
        autovacuum = AutovacuumStandIn(env["DATABASE_URL"]).start()
        cpu_ready = _cpu_seconds(pids)
        components_ready = {name: _cpu_seconds(ids) for name, ids in components.items()}
        machine_ready = _machine_cpu_seconds()
        t0_wall, t0 = time.time(), time.monotonic()
        run_started = timezone.now()
        started_at: dict[int, float] = {}
        pending = list(starts)
        while time.monotonic() - t0 < run_seconds:
            elapsed = time.monotonic() - t0
            while pending and pending[0][0] <= elapsed:
                _, org_id, _tenant = pending[0]
                try:
                    with transaction.atomic():
                        Invoice.objects.filter(organisation_id=org_id, sync_state=Invoice.SyncState.NOT_SYNCED).update(
                            sync_state=Invoice.SyncState.PENDING
                        )
                        push_enqueue_for_organisation(organisation_id=org_id)
                except OperationalError:  # the machine's PostgreSQL restarted (shared with other sessions): retry
                    db_connection.close()
                    time.sleep(1.0)
                    continue
                pending.pop(0)
                started_at[org_id] = time.time()
            log += sandbox.admin("GET", "/requests?drain=1")
            time.sleep(0.5)
        run_ended = timezone.now()
        # Let the last pushes finish (the background keeps running meanwhile; its figures count too).
        deadline = time.monotonic() + args.drain_seconds
        push_ids = [o for o, _ in pushing]
        while time.monotonic() < deadline:
            left = Invoice.objects.filter(organisation_id__in=push_ids).exclude(
                sync_state__in=(Invoice.SyncState.SYNCED, Invoice.SyncState.WARNING)
            )
            log += sandbox.admin("GET", "/requests?drain=1")
            try:
                if not left.exists():
                    break
            except OperationalError:
                db_connection.close()
            time.sleep(1.0)
        log += sandbox.admin("GET", "/requests?drain=1")
        cpu_end = _cpu_seconds(pids)
        product_stopped = timezone.now()  # coverage is judged here: nothing reconciles once the workers stop
        components["postgresql"] = _postmaster_pids()  # backends started during the run; the exited ones are reaped
        cpu_by_component = {
            name: round(_cpu_seconds(ids) - components_ready[name], 1) for name, ids in components.items()
        }
        cpu_by_component["machine"] = round(_machine_cpu_seconds() - machine_ready, 1)
        wall = time.monotonic() - t0
        stop.set()
        sampler.join(3)
        vacuumed = autovacuum.stop()
    finally:
        stop.set()
        processes.stop()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(web.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            web.wait(10)
    with (Path(processes.dir) / "sandbox-requests.jsonl").open("w") as out:  # for a closer look at one tenant
        out.writelines(json.dumps(e) + "\n" for e in log)
        out.writelines(
            json.dumps({"started": org, "tenant": t, "at": started_at.get(org)}) + "\n" for org, t in pushing
        )
    result = figures(
        args=args,
        sandbox=sandbox,
        log=log,
        samples=samples,
        organisations=organisations,
        pushing=pushing,
        started_at=started_at,
        run_started=run_started,
        run_ended=run_ended,
        product_stopped=product_stopped,
        t0_wall=t0_wall,
        limits=(limiter.limits.app_minute, limiter.background_limits(BACKGROUND[0])[0]),
    )
    invoices_pushed = len(pushing) * args.invoices
    result.update(
        wall_s=round(wall, 1),
        time_scale=scale,
        worker_rss_mb=round(max(rss.values() or [0.0]), 1),
        worker_cpu_s=round(cpu_end - cpu_ready, 1),
        worker_cpu_ms_per_call=round((cpu_end - cpu_ready) * 1000 / max(1, result["http_calls"]), 2),
        cpu_s_by_component=cpu_by_component,
        worker_cpu_s_per_1000_invoices_all_work=round((cpu_end - cpu_ready) / max(1, invoices_pushed) * 1000, 3),
        load_average=[round(x, 2) for x in os.getloadavg()],
        autovacuum_stand_in=vacuumed,
        logs=str(processes.dir),
        workers={
            "xero": args.push_workers,
            "webhooks": 1,
            "default": args.background_workers,
            "background_nice": args.background_nice,
        },
        settings={
            "XERO_BACKGROUND_SHARE": settings.XERO_BACKGROUND_SHARE,
            "XERO_RECONCILE_QUIET_SECONDS (xero time)": settings.XERO_RECONCILE_QUIET_SECONDS * scale,
        },
    )
    redis.Redis.from_url(env["REDIS_URL"]).flushdb()
    return result


def figures(
    *,
    args,
    sandbox,
    log,
    samples,
    organisations,
    pushing,
    started_at,
    run_started,
    run_ended,
    product_stopped,
    t0_wall,
    limits,
):
    from django.conf import settings
    from django.db.models import Q

    from integrations.models import ReconciliationState, XeroConnection
    from integrations.selectors import DAY_SECONDS, keepalive_offset_seconds
    from invoices.models import Invoice

    scale = args.time_scale
    app_limit, background_cap = limits
    # ---- the app minute, from the limiter's sliding window (sampled each second)
    app_max = max((sum(s[c] for c in ("customer", "webhook", "reconcile", "health")) for s in samples), default=0)
    background_max = max((s["webhook"] + s["reconcile"] + s["health"] for s in samples), default=0)
    # ---- the same, fixed Xero minutes from the sandbox's log (Accounting calls; /connections is not logged)
    per_minute = collections.Counter(int((e["at"] - t0_wall) * scale // 60) for e in log if e["status"] != 429)
    # ---- pushes
    ratios, efficiencies, durations, detail = [], [], [], []
    duplicates = missing = 0
    by_tenant = collections.defaultdict(list)
    for e in log:
        by_tenant[e["tenant_id"]].append(e)
    latency = (args.latency_ms + args.latency_per_invoice_ms * INVOICES_PER_CALL) / 1000 / scale
    for org_id, tenant_id in pushing:
        ours = set(Invoice.objects.filter(organisation_id=org_id).values_list("number", flat=True))
        counts = collections.Counter(
            i["InvoiceNumber"] for i in sandbox.invoices(tenant_id) if i["InvoiceNumber"] in ours
        )
        duplicates += sum(n - 1 for n in counts.values() if n > 1)
        missing += len(ours - set(counts))
        puts = [e for e in by_tenant[tenant_id] if e["method"] == "PUT" and e["path"].endswith("/Invoices")]
        if org_id not in started_at or not puts:
            continue
        end = max(e["at"] for e in puts)
        took = max(1e-3, end - started_at[org_id])
        xero_minutes = took * scale / 60
        ratios.append(len(ours) / xero_minutes / (CALLS_PER_MINUTE * INVOICES_PER_CALL))
        calls = len(puts)
        # The tightest schedule: 5 at once, each taking the latency model, and 60 a minute.
        bound = max(-(-calls // CONCURRENT) * latency, ((calls - 1) // CALLS_PER_MINUTE) * 60 / scale)
        efficiencies.append(bound / took)
        durations.append(took * scale)
        first_call = min(e["at"] for e in by_tenant[tenant_id] if e["at"] >= started_at[org_id])
        detail.append(
            {
                "xero_s_to_first_call": round((first_call - started_at[org_id]) * scale, 1),
                "xero_s_to_first_put": round((min(e["at"] for e in puts) - started_at[org_id]) * scale, 1),
                "xero_s_puts": round((end - min(e["at"] for e in puts)) * scale, 1),
                "puts": calls,
                "calls": len([e for e in by_tenant[tenant_id] if e["at"] >= started_at[org_id]]),
            }
        )
    # ---- reconciliation: every tenant's last complete pass within its cadence (plus two fan-out intervals), as it
    # stood when the workers stopped (the checks of duplicates above take a while: nothing reconciles meanwhile)
    now = product_stopped
    quiet = dt.timedelta(seconds=settings.XERO_RECONCILE_QUIET_SECONDS)
    slack = dt.timedelta(seconds=settings.XERO_RECONCILE_EVERY_SECONDS * 2)
    states = ReconciliationState.objects.filter(organisation_id__in=[o for o, _ in organisations])
    covered = states.filter(last_success_at__gte=now - quiet - slack).count()
    uncovered = [  # what kept the first few late (Xero seconds relative to the end)
        {
            "due_xero_s": round((due - now).total_seconds() * scale, 1) if due else None,
            "reason": reason,
            "last_success_xero_s": round((last - now).total_seconds() * scale, 1) if last else None,
            "last_started_xero_s": round((begun - now).total_seconds() * scale, 1) if begun else None,
            "error": (error or "")[:120],
        }
        for due, reason, last, begun, error in states.exclude(last_success_at__gte=now - quiet - slack)
        .order_by("last_success_at")
        .values_list("next_due_at", "due_reason", "last_success_at", "last_started_at", "last_error")[:10]
    ]
    passes = states.filter(last_success_at__gte=run_started).count()
    # ---- keep-alive: every connection whose daily time passed in the run (a minute's margin) was checked since
    midnight = run_started.replace(hour=0, minute=0, second=0, microsecond=0)
    overdue = due = refreshed = 0
    keep_after = dt.timedelta(days=settings.XERO_KEEPALIVE_AFTER_DAYS)
    for pk, verified, issued in XeroConnection.objects.filter(
        organisation_id__in=[o for o, _ in organisations]
    ).values_list("pk", "last_verified_at", "refresh_token_issued_at"):
        at = midnight + dt.timedelta(seconds=keepalive_offset_seconds(pk))
        while at < run_started:
            at += dt.timedelta(seconds=DAY_SECONDS)
        # The beat's fan-out queues a window's checks when it runs (every XERO_KEEPALIVE_WINDOW_SECONDS, not aligned
        # to the windows), so a check is due by the end of the window after its second, plus a minute.
        if at > run_ended - dt.timedelta(seconds=settings.XERO_KEEPALIVE_WINDOW_SECONDS + 60):
            continue
        due += 1
        if verified is None or verified < at or (issued is not None and verified - issued > keep_after):
            overdue += 1
        elif issued is not None and issued >= run_started:
            refreshed += 1
    xero_minutes = (max((e["at"] for e in log), default=t0_wall) - t0_wall) * scale / 60
    return {
        "tenants": len(organisations),
        "active_tenants": len(pushing),
        "xero_minutes": round(xero_minutes, 1),
        "app_calls_per_min_max": app_max,
        "app_calls_per_fixed_xero_min_max": max(per_minute.values(), default=0),
        "app_minute_limit": app_limit,
        "background_calls_per_min_max": background_max,
        "background_cap": background_cap,
        "background_share_max": round(background_max / app_limit, 4),
        "push_ratio_min": round(min(ratios), 3) if ratios else None,
        "push_ratio_median": round(sorted(ratios)[len(ratios) // 2], 3) if ratios else None,
        "push_schedule_efficiency_min": round(min(efficiencies), 3) if efficiencies else None,
        "push_xero_seconds_max": round(max(durations), 1) if durations else None,
        "push_slowest": sorted(detail, key=lambda d: -d["xero_s_to_first_call"] - d["xero_s_puts"])[:3],
        "http_calls": len(log),
        "http_429": sum(1 for e in log if e["status"] == 429),
        "duplicates": duplicates,
        "missing": missing,
        "reconcile_coverage": round(covered / max(1, states.count()), 4),
        "reconcile_passes": passes,
        "reconcile_uncovered": uncovered,
        "keepalive_due": due,
        "keepalive_overdue": overdue,
        "keepalive_refreshed": refreshed,
        "webhook_events_stored": _webhook_count(Q()),
    }


def _webhook_count(q) -> int:
    from integrations.models import WebhookEvent

    return WebhookEvent.objects.filter(q).count()


if __name__ == "__main__":
    main()
