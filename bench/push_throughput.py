"""Push throughput against xero_sandbox with real Celery workers (not a test).

Usage:
  .venv/bin/python bench/push_throughput.py [--invoices 10000] [--workers 4] [--time-scale 4]
  .venv/bin/python bench/push_throughput.py --tenants 2 --invoices 10000       # fairness between tenants

Needs PostgreSQL and Redis (`make services`). Uses its own database (BENCH_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/coordinoter_bench, created and migrated if missing; its organisations are
wiped at each run) and its own Redis database (BENCH_REDIS_URL, default redis://127.0.0.1:6379/7, flushed).

The sandbox runs --time-scale times faster than real time with Xero's real limits (a tenant: 5 at once, 60 a
minute, 5,000 a day) and a latency model of 1.5 s per 50-invoice call at real speed (500 ms + 20 ms per
invoice), scaled the same way. The workers run the product's code unchanged, with XERO_TIME_SCALE set to match.
Figures are given in Xero time (real seconds x time scale), so they compare with the real ceiling:
60 calls x 50 invoices = 3,000 invoices a minute per tenant.

Prints one JSON object as its last line: invoices, tenants, workers, seconds (wall), http_calls, http_429,
duplicates, missing, ceiling_invoices_per_min, achieved_invoices_per_min, ratio, worker_rss_mb,
worker_cpu_s_per_1000_invoices (with the workers' start-up) and ..._push_only (without), machine_calibration_cpu_s
(the VM's speed at the time: bench.common.cpu_calibration), and with several tenants each tenant's share of the work
done when the first tenant finished (fair share = 1.0).
"""

import argparse
import collections
import contextlib
import json
import os
import signal
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CALLS_PER_MINUTE, INVOICES_PER_CALL = 60, 50
# The push's end is read by polling. Every 250 ms it would be read up to 2.5 Xero seconds late at time scale 10 (of a
# 200-second push); for the last chunks the poll asks every 20 ms whether anything is still waiting or in flight (a
# query the partial index `invoice_unsynced` answers), then counts once more to confirm.
FINAL_STRETCH_INVOICES, FINAL_POLL_SECONDS = 10 * INVOICES_PER_CALL, 0.02


def _cpu_seconds(pids) -> float:
    """User + system CPU seconds of these processes, their live children (a prefork worker's pool) and their reaped
    children, from /proc/<pid>/stat."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(v) for v in fields[11:15]) / ticks  # utime, stime, cutime, cstime
        total += _cpu_seconds(_children([pid]))
    return total


def _children(pids) -> list[int]:
    found = []
    for pid in pids:
        with contextlib.suppress(OSError):
            found += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return found


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--invoices", type=int, default=10000, help="invoices in all (split evenly by tenant)")
    parser.add_argument("--tenants", type=int, default=1)
    parser.add_argument("--workers", type=int, default=4, help="Celery worker processes (solo pool)")
    parser.add_argument(
        "--prefork",
        action="store_true",
        help="one prefork worker of --workers children, as scripts/run.sh starts them, instead of --workers solo "
        "processes (the children share the parent's start-up)",
    )
    parser.add_argument("--customers", type=int, default=50, help="customers per tenant")
    parser.add_argument("--time-scale", type=float, default=4.0)
    parser.add_argument("--latency-ms", type=float, default=500.0)
    parser.add_argument("--latency-per-invoice-ms", type=float, default=20.0)
    parser.add_argument(
        "--small-tenant",
        type=int,
        default=0,
        metavar="N",
        help="with --tenants 1: another tenant pushes N invoices once the big push is under way; "
        "reports how long they took to land",
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="give up after this many real seconds")
    parser.add_argument(
        "--keep-other-data",
        action="store_true",
        help="do not empty the database: replace only this bench's organisations (run it on a "
        "database seeded with `manage.py seed_scale` to measure with 1,000,000 invoices present; "
        "the other organisations' Xero connections are paused for the run and restored after)",
    )
    return parser.parse_args()


def prepare_environment(args: argparse.Namespace, sandbox) -> dict:
    """This process (set-up and figures) runs with development settings; the workers get production_env() of the
    same (bench/common.py): the CPU per invoice is measured as production would spend it."""
    from bench.common import bench_env

    database_url = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/coordinoter_bench")
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/7")
    env = {
        **bench_env(database_url=database_url, redis_url=redis_url),
        "XERO_TIME_SCALE": str(args.time_scale),
        "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
        "XERO_RATE_LIMIT_PREFIX": f"bench:{uuid.uuid4().hex[:8]}",
        "XERO_CLIENT_ID": sandbox.client_id,
        "XERO_CLIENT_SECRET": sandbox.client_secret,
        "XERO_TOKEN_URL": sandbox.token_endpoint,
        "XERO_REVOCATION_URL": sandbox.revocation_endpoint,
        "XERO_CONNECTIONS_URL": sandbox.connections_url,
        "XERO_API_URL": sandbox.api_url,
    }
    os.environ.update(env)
    from bench.common import create_database

    create_database(database_url)
    return env


def main() -> None:
    args = parse_args()
    from xero_sandbox.testing import start_sandbox

    sandbox = start_sandbox(
        time_scale=args.time_scale,
        latency_ms=args.latency_ms,
        latency_per_invoice_ms=args.latency_per_invoice_ms,
        extra_orgs=max(0, args.tenants - 2),
    )
    try:
        result = run(args, sandbox)
    finally:
        sandbox.stop()
    print(json.dumps(result))


def run(args: argparse.Namespace, sandbox) -> dict:
    env = prepare_environment(args, sandbox)
    import django

    django.setup()
    import redis
    from django.core.management import call_command
    from django.db import connection

    from bench.common import delete_organisations
    from integrations.models import XeroConnection
    from organisations.models import Organisation

    call_command("migrate", verbosity=0)
    redis.Redis.from_url(env["REDIS_URL"]).flushdb()
    paused: dict[int, str] = {}
    if args.keep_other_data:
        # What an earlier run of this bench left.
        delete_organisations(Organisation.objects.filter(name__startswith="Bench "))
        _restore_paused(database_url=env["DATABASE_URL"])  # an earlier run that was killed before restoring
        # The seeded organisations hold placeholder tokens no Xero accepts: the beat must not spend the run finding
        # that out (their invoices, batches and inbox stay in the database, which is what this mode measures).
        paused = dict(
            XeroConnection.objects.filter(status__in=XeroConnection.BOUND_STATUSES).values_list("pk", "status")
        )
        _paused_file(env["DATABASE_URL"]).write_text(json.dumps(paused))  # written before anything changes
        XeroConnection.objects.filter(pk__in=paused).update(status=XeroConnection.Status.DISCONNECTED)
    else:
        with connection.cursor() as cursor:  # the bench's own database: start from nothing
            cursor.execute(f"TRUNCATE {Organisation._meta.db_table} CASCADE")
    previous_sigterm = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so `finally` restores
    try:
        return _measure(args, sandbox, env)
    finally:
        signal.signal(signal.SIGTERM, previous_sigterm)
        if paused:
            _restore_paused(database_url=env["DATABASE_URL"])


def _paused_file(database_url: str) -> Path:
    name = database_url.rsplit("/", 1)[-1]
    return Path(tempfile.gettempdir()) / f"coordinoter-bench-paused-{name}.json"


def _restore_paused(*, database_url: str) -> None:
    """Give the seeded connections back the statuses a run paused (kept in a file until restored)."""
    from integrations.models import XeroConnection

    path = _paused_file(database_url)
    if not path.exists():
        return
    paused = {int(pk): status for pk, status in json.loads(path.read_text()).items()}
    for status in set(paused.values()):
        XeroConnection.objects.filter(pk__in=[pk for pk, s in paused.items() if s == status]).update(status=status)
    path.unlink()


def _measure(args: argparse.Namespace, sandbox, env: dict) -> dict:
    from django.db import transaction
    from django.db.models import Count

    from bench.common import cpu_calibration
    from invoices.models import Invoice
    from invoices.services.push import push_enqueue_for_organisation
    from tests.factories import make_pending_batch
    from tests.support.live import CeleryProcesses
    from tests.support.xero_live import connect_organisation

    calibration_before = cpu_calibration()
    other_invoices = Invoice.objects.count()

    tenants = [t["tenantId"] for t in sandbox.tenants()]
    if args.tenants > len(tenants):
        raise SystemExit(
            f"xero_sandbox offers {len(tenants)} organisations; --tenants {args.tenants} needs "
            f"{args.tenants} (start it with --extra-orgs)"
        )
    per_tenant = args.invoices // args.tenants
    organisations = []
    for index, tenant_id in enumerate(tenants[: args.tenants]):
        organisation = connect_organisation(sandbox, name=f"Bench Tenant {index + 1}", tenant_id=tenant_id)
        currency = sandbox.admin("GET", f"/tenants/{tenant_id}")["BaseCurrency"]
        make_pending_batch(
            organisation=organisation,
            invoices=per_tenant,
            customers=args.customers,
            prefix=f"B{index + 1}",
            currency=currency,
        )
        organisations.append((organisation, tenant_id))
    small = None
    if args.small_tenant:
        if args.tenants != 1 or len(tenants) < 2:
            raise SystemExit("--small-tenant needs --tenants 1 and a second sandbox organisation")
        small = connect_organisation(sandbox, name="Bench Small Tenant", tenant_id=tenants[1])
        small_currency = sandbox.admin("GET", f"/tenants/{tenants[1]}")["BaseCurrency"]
    sandbox.admin("DELETE", "/requests")

    from bench.common import compile_product, production_env

    compile_product()
    worker_env = production_env(env, log_level=env["LOG_LEVEL"])
    workers = CeleryProcesses(env={**os.environ, **worker_env, "PYTHONUNBUFFERED": "1"})
    try:
        if args.prefork:
            pids = workers.start_workers(1, concurrency=args.workers)
        else:
            pids = workers.start_workers(args.workers)
        workers.start_beat()
        rss = {pid: 0.0 for pid in pids}
        stop = threading.Event()

        def sample_rss() -> None:
            while not stop.is_set():
                for pid in pids + _children(pids):
                    with contextlib.suppress(OSError):
                        rss[pid] = max(rss.get(pid, 0.0), workers.rss_mb(pid))
                stop.wait(0.5)

        sampler = threading.Thread(target=sample_rss, daemon=True)
        sampler.start()
        cpu_ready = _cpu_seconds(pids)  # start-up done: what the workers spent importing and connecting
        started = time.monotonic()
        with transaction.atomic():
            for organisation, _ in organisations:
                push_enqueue_for_organisation(organisation_id=organisation.pk)
        done_states = (Invoice.SyncState.SYNCED, Invoice.SyncState.WARNING)
        shares_at_first_finish = None
        total = per_tenant * len(organisations)
        small_started = small_seconds = None
        while True:
            if small is not None and small_started is None and time.monotonic() - started > 3:
                make_pending_batch(
                    organisation=small, invoices=args.small_tenant, customers=1, prefix="S", currency=small_currency
                )
                small_started = time.monotonic()
                with transaction.atomic():
                    push_enqueue_for_organisation(organisation_id=small.pk)
            if (
                small_started is not None
                and small_seconds is None
                and Invoice.objects.filter(organisation=small, sync_state__in=done_states).count() >= args.small_tenant
            ):
                small_seconds = time.monotonic() - small_started
            counts = dict(
                Invoice.objects.filter(organisation__in=[o for o, _ in organisations], sync_state__in=done_states)
                .values_list("organisation_id")
                .annotate(n=Count("pk"))
            )
            done = sum(counts.get(o.pk, 0) for o, _ in organisations)
            if (
                shares_at_first_finish is None
                and len(organisations) > 1
                and any(counts.get(o.pk, 0) >= per_tenant for o, _ in organisations)
            ):
                mean = done / len(organisations)
                shares_at_first_finish = {o.name: round(counts.get(o.pk, 0) / mean, 3) for o, _ in organisations}
            if (done >= total and (small is None or small_seconds is not None)) or (
                time.monotonic() - started > args.timeout
            ):
                break
            if total - done <= FINAL_STRETCH_INVOICES and (small is None or small_seconds is not None):
                unfinished = Invoice.objects.filter(
                    organisation__in=[o for o, _ in organisations],
                    sync_state__in=(Invoice.SyncState.PENDING, Invoice.SyncState.IN_FLIGHT),
                )
                waited = False
                while unfinished.exists() and time.monotonic() - started <= args.timeout:
                    time.sleep(FINAL_POLL_SECONDS)
                    waited = True
                if waited:
                    continue  # count again; with nothing left to wait for (failed invoices), the 250 ms poll goes on
            time.sleep(0.25)
        seconds = time.monotonic() - started
        cpu_end = _cpu_seconds(pids)
        stop.set()
        sampler.join(2)
    finally:
        workers.stop()

    log = sandbox.admin("GET", "/requests")
    duplicates = missing = 0
    for organisation, tenant_id in organisations:
        ours = set(Invoice.objects.filter(organisation=organisation).values_list("number", flat=True))
        counts = collections.Counter(
            i["InvoiceNumber"] for i in sandbox.invoices(tenant_id) if i["InvoiceNumber"] in ours
        )
        duplicates += sum(n - 1 for n in counts.values() if n > 1)
        missing += len(ours - set(counts))
    xero_minutes = seconds * args.time_scale / 60
    ceiling = CALLS_PER_MINUTE * INVOICES_PER_CALL * len(organisations)
    achieved = total / xero_minutes if xero_minutes else 0.0
    result = {
        "invoices": total,
        "tenants": len(organisations),
        "workers": args.workers,
        "pool": "prefork" if args.prefork else "solo",
        "seconds": round(seconds, 2),
        "time_scale": args.time_scale,
        "xero_minutes": round(xero_minutes, 3),
        "http_calls": len(log),
        "http_calls_put_invoices": sum(1 for e in log if e["method"] == "PUT" and e["path"].endswith("/Invoices")),
        "http_429": sum(1 for e in log if e["status"] == 429),
        "duplicates": duplicates,
        "missing": missing,
        "ceiling_invoices_per_min": ceiling,
        "achieved_invoices_per_min": round(achieved, 1),
        "ratio": round(achieved / ceiling, 3) if ceiling else 0.0,
        "worker_rss_mb": round(max(rss.values()), 1),
        # CPU of all worker processes (user + system, from /proc) per 1,000 invoices pushed: with their start-up, as
        # issue 11 measured it, and for the push alone (from the moment every worker was ready).
        "worker_cpu_s_per_1000_invoices": round(cpu_end / total * 1000, 3) if total else None,
        "worker_cpu_s_per_1000_invoices_push_only": round((cpu_end - cpu_ready) / total * 1000, 3) if total else None,
        "other_invoices_in_database": other_invoices,
        # The VM's speed at the time (bench.common.cpu_calibration, before and after the run, averaged): compare worker
        # CPU figures of runs only in proportion to it.
        "machine_calibration_cpu_s": round((calibration_before + cpu_calibration()) / 2, 3),
    }
    result.update(_schedule_bound(log, args, len(organisations)))
    if small is not None:
        result["small_tenant_invoices"] = args.small_tenant
        result["small_tenant_seconds"] = round(small_seconds, 2) if small_seconds is not None else None
        result["small_tenant_xero_seconds"] = (
            round(small_seconds * args.time_scale, 1) if small_seconds is not None else None
        )
    if shares_at_first_finish is not None:
        result["shares_at_first_finish"] = shares_at_first_finish
        result["fair_within_10pct"] = all(0.9 <= s <= 1.1 for s in shares_at_first_finish.values())
    return result


def _schedule_bound(log: list[dict], args: argparse.Namespace, tenants: int) -> dict:
    """The tightest schedule Xero's limits allow for the calls actually made (per tenant: the first 60 at once,
    then 60 per minute), against the time the calls actually took from the first to the last."""
    if not log:
        return {}
    minute = 60 / args.time_scale
    by_tenant = collections.Counter(e["tenant_id"] for e in log)
    calls = max(by_tenant.values())
    spans = [e["at"] for e in log]
    took = max(spans) - min(spans)
    bound = ((calls - 1) // CALLS_PER_MINUTE) * minute
    return {
        "calls_per_tenant": calls,
        "first_to_last_call_s": round(took, 2),
        "limit_bound_s": round(bound, 2),
        "schedule_efficiency": round(bound / took, 3) if took else 1.0,
    }


if __name__ == "__main__":
    main()
