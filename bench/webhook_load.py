"""Webhook receiver under load: gunicorn on PostgreSQL, signed deliveries with duplicates, real Celery workers
applying them against xero_sandbox (not a test).

Usage:
  .venv/bin/python bench/webhook_load.py [--rate 200] [--seconds 60] [--web-workers 2] [--celery-workers 2]

Needs PostgreSQL and Redis (`make services`). Uses its own database (BENCH_WEBHOOK_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/coordinoter_bench_webhooks, created and migrated if missing, its organisations
wiped at each run) and its own Redis database (BENCH_WEBHOOK_REDIS_URL, default redis://127.0.0.1:6379/6, flushed).

What runs: xero_sandbox with Xero's real limits (time scale 1); two tenants connected to Coordinoter organisations,
each with --invoices invoices in Xero that Coordinoter holds as pushed; the product's receiver under gunicorn
(gthread, production settings: DJANGO_DEBUG unset, JSON logs at INFO) on 127.0.0.1; --celery-workers Celery
worker processes on the `webhooks` queue, fetching from the sandbox through the shared rate limiter.

The load: --rate requests a second for --seconds from a bounded asyncio generator on loopback (64 keep-alive
connections; wrk cannot sign each body, so every body is generated and signed before the clock starts). Each
request is sent at its scheduled time and its latency counts from that time, so a slow server cannot hide its
queue (no coordinated omission). The mix, like Xero's: most deliveries carry one event, some 2-5; 10% of requests
re-send an earlier delivery byte for byte (Xero's retries and duplicates); 5% of new deliveries repeat an event
already sent; 3% of events are for a tenant no organisation holds (kept as ignored). --replayed-share (default 0)
of the new events are replays dated an hour back, older than the invoice version Coordinoter holds: the inbox
processes them without fetching (outcome fetch_skipped, issue 15).

Prints one JSON object as its last line: requests, seconds, rps, p50_ms, p99_ms (at the load generator, from
each request's scheduled time), server_p50_ms, server_p99_ms (gunicorn's own request time), errors, stored, lost,
duplicates_stored, apply_lag_p50_s, apply_lag_p95_s, apply_lag_max_s, events_processed, fetches_skipped (events
processed without a Xero call), replayed_events_sent, xero_calls, resources_fetched (ids asked for in those GETs),
xero_429, web_cpu_ms_per_request, the configuration and the machine's load average at the end.
An error is anything but a 200 with an empty body and no Set-Cookie.
"""

import argparse
import asyncio
import base64
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WEBHOOK_KEY = "bench-webhook-signing-key"
RECEIVER = "/integrations/xero/webhooks/"
UNKNOWN_TENANT = "0badbeef-0000-4000-8000-00000000dead"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=200.0, help="requests a second")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument(
        "--warmup-seconds",
        type=float,
        default=3.0,
        help="send at the same rate for this long first, not timed (new threads' database and "
        "broker connections); those deliveries still count for stored and lost",
    )
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn processes")
    parser.add_argument("--web-class", choices=["sync", "gthread"], default="gthread", help="gunicorn worker class")
    parser.add_argument("--web-threads", type=int, default=8, help="threads per gunicorn process (gthread only)")
    parser.add_argument("--celery-workers", type=int, default=2, help="Celery worker processes (prefork)")
    parser.add_argument("--invoices", type=int, default=50, help="invoices in Xero per tenant")
    parser.add_argument("--connections", type=int, default=64, help="keep-alive connections of the generator")
    parser.add_argument("--drain-timeout", type=float, default=60.0, help="wait this long for the inbox to empty")
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument(
        "--replayed-share",
        type=float,
        default=0.0,
        help="share of new events replayed with older timestamps (an hour before the version held): not fetched",
    )
    parser.add_argument(
        "--keep-other-data",
        action="store_true",
        help="do not empty the database: replace only this bench's organisations and events (run it "
        "on a database seeded with `manage.py seed_scale` to measure with 1,000,000 invoices "
        "present)",
    )
    return parser.parse_args()


# ---------------------------------------------------------------- environment


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prepare_environment(sandbox) -> dict[str, str]:
    from cryptography.fernet import Fernet

    database_url = os.environ.get(
        "BENCH_WEBHOOK_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/coordinoter_bench_webhooks"
    )
    redis_url = os.environ.get("BENCH_WEBHOOK_REDIS_URL", "redis://127.0.0.1:6379/6")
    from bench.common import create_database, production_env

    create_database(database_url)
    common = {
        "DJANGO_SETTINGS_MODULE": "coordinoter.settings",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "CACHE_REDIS_URL": redis_url,
        "TOKEN_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "XERO_WEBHOOK_KEY": WEBHOOK_KEY,
        "XERO_RATE_LIMIT_PREFIX": f"bench:webhooks:{uuid.uuid4().hex[:8]}",
        "XERO_CLIENT_ID": sandbox.client_id,
        "XERO_CLIENT_SECRET": sandbox.client_secret,
        "XERO_TOKEN_URL": sandbox.token_endpoint,
        "XERO_REVOCATION_URL": sandbox.revocation_endpoint,
        "XERO_CONNECTIONS_URL": sandbox.connections_url,
        "XERO_API_URL": sandbox.api_url,
        "XERO_REDIRECT_URI": "http://127.0.0.1/integrations/xero/callback/",
        "PYTHONUNBUFFERED": "1",
    }
    # This process (set-up and figures) runs with development settings on the same database and Redis.
    os.environ.update({**common, "DJANGO_DEBUG": "true", "LOG_LEVEL": "WARNING"})
    # gunicorn and the workers run as production does.
    return production_env(common, log_level=os.environ.get("BENCH_LOG_LEVEL", "INFO"))


class Processes:
    """gunicorn and Celery as subprocesses, each logging to its own file; always stopped."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST_"))}
        self.env.update(env)
        self.dir = Path(tempfile.mkdtemp(prefix="coordinoter-webhook-bench-"))
        self.running: list[subprocess.Popen] = []

    def start(self, args: list[str], name: str) -> subprocess.Popen:
        log = (self.dir / f"{name}.log").open("wb")
        process = subprocess.Popen(
            args, cwd=str(ROOT), env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        self.running.append(process)
        return process

    def log(self, name: str) -> str:
        path = self.dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        for process in self.running:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        for process in self.running:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)


def cpu_seconds(root_pid: int) -> float:
    """User + system CPU of a process and its children so far (from /proc), in seconds."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = [root_pid]
    try:
        children = Path(f"/proc/{root_pid}/task/{root_pid}/children").read_text().split()
        pids += [int(pid) for pid in children]
    except OSError:
        pass
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
        except (OSError, IndexError, ValueError):
            continue
    return total


def wait_ready(url: str, timeout: float = 30.0) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {timeout}s")


# ---------------------------------------------------------------- the data and the deliveries


def bench_tenant_ids(sandbox) -> list[str]:
    """Every tenant id this bench's deliveries name (its rows are the ones it counts)."""
    return [tenant["tenantId"].lower() for tenant in sandbox.tenants()[:2]] + [UNKNOWN_TENANT]


def set_up_tenants(sandbox, invoices_per_tenant: int, keep_other_data: bool) -> list[tuple[str, list[str]]]:
    """Connect each sandbox tenant to an organisation; create invoices in Xero that Coordinoter holds as pushed.
    Returns (tenant id, invoice ids) for each."""
    from django.db import connection

    from bench.common import delete_organisations
    from integrations.models import WebhookEvent
    from integrations.xero.client import xero_request
    from invoices.mappers import parse_xero_datetime
    from invoices.models import Customer, Invoice, InvoiceBatch, InvoiceLine
    from organisations.models import Organisation
    from tests.support.xero_live import connect_organisation

    if keep_other_data:  # a seeded database: replace only what an earlier run of this bench left
        delete_organisations(Organisation.objects.filter(name__startswith="Webhook Bench "))
        WebhookEvent.objects.filter(tenant_id__in=bench_tenant_ids(sandbox)).delete()
    else:
        with connection.cursor() as cursor:  # the bench's own database: start from nothing
            cursor.execute(f"TRUNCATE {Organisation._meta.db_table} CASCADE")
    out = []
    for index, tenant in enumerate(sandbox.tenants()[:2]):
        tenant_id = tenant["tenantId"]
        organisation = connect_organisation(sandbox, name=f"Webhook Bench {index + 1}", tenant_id=tenant_id)
        connection_id = organisation.xero_connection.pk
        contact = xero_request(connection_id, "PUT", "/Contacts", json={"Contacts": [{"Name": f"Bench {index}"}]})
        contact_id = contact.body["Contacts"][0]["ContactID"]
        customer = Customer.objects.create(organisation=organisation, name=f"Bench {index}", xero_contact_id=contact_id)
        batch = InvoiceBatch.objects.create(
            organisation=organisation, name="Bench batch", eligibility=InvoiceBatch.Eligibility.ELIGIBLE
        )
        account = "200"
        created = xero_request(
            connection_id,
            "PUT",
            "/Invoices",
            params={"summarizeErrors": "false"},
            json={
                "Invoices": [
                    {
                        "Type": "ACCREC",
                        "Contact": {"ContactID": contact_id},
                        "InvoiceNumber": f"WB{index}-{n:04d}",
                        "Status": "AUTHORISED",
                        "Date": "2026-11-02",
                        "DueDate": "2026-11-30",
                        "LineItems": [
                            {"Description": "Service", "Quantity": 1, "UnitAmount": 100, "AccountCode": account}
                        ],
                    }
                    for n in range(invoices_per_tenant)
                ]
            },
        ).body["Invoices"]
        ids = []
        for element in created:
            invoice = Invoice.objects.create(
                organisation=organisation,
                batch=batch,
                customer=customer,
                number=element["InvoiceNumber"],
                issue_date=dt.date(2026, 11, 2),
                due_date=dt.date(2026, 11, 30),
                status="AUTHORISED",
                xero_status="AUTHORISED",
                sync_state=Invoice.SyncState.SYNCED,
                xero_invoice_id=element["InvoiceID"],
                xero_updated_at=parse_xero_datetime(element["UpdatedDateUTC"]),
                subtotal=element["SubTotal"],
                total_tax=element["TotalTax"],
                total=element["Total"],
                amount_due=element["AmountDue"],
            )
            InvoiceLine.objects.create(invoice=invoice, description="Service", quantity=1, unit_amount=100)
            ids.append(element["InvoiceID"])
        out.append((tenant_id, ids))
    return out


def sign(body: bytes) -> str:
    return base64.b64encode(hmac.new(WEBHOOK_KEY.encode(), body, hashlib.sha256).digest()).decode()


def make_deliveries(
    tenants: list[tuple[str, list[str]]], count: int, seed: int, replayed_share: float = 0.0, after=None
) -> tuple[list, set, int]:
    """Pre-generated (body, signature) pairs, the set of distinct event keys they carry, and how many of those are
    replays dated before the invoices' versions held. Ordinary events are dated after `after` (the newest version
    held), as changes made in Xero since are: an event dated before it is not fetched (issue 15)."""
    rng = random.Random(seed)
    replayed = 0
    base = max(dt.datetime.now(dt.UTC), (after or dt.datetime.min.replace(tzinfo=dt.UTC)) + dt.timedelta(seconds=2))
    base = base.replace(microsecond=0)
    deliveries: list[tuple[bytes, str]] = []
    sent_events: list[dict] = []
    distinct: set = set()
    sequence = 0
    tick = 0
    for _ in range(count):
        if deliveries and rng.random() < 0.10:
            deliveries.append(rng.choice(deliveries))  # Xero sends the same delivery again
            continue
        events = []
        for _ in range(1 if rng.random() < 0.7 else rng.randint(2, 5)):
            if sent_events and rng.random() < 0.05:
                events.append(rng.choice(sent_events))  # an event already delivered, in a new delivery
                continue
            tick += 1
            old = False
            if rng.random() < 0.03:
                tenant_id, resource_id = UNKNOWN_TENANT, str(uuid.UUID(int=rng.getrandbits(128), version=4))
            else:
                tenant_id, ids = rng.choice(tenants)
                resource_id = rng.choice(ids)
                old = rng.random() < replayed_share
            # A replay is dated an hour back: before the invoices were created in Xero, so older than what we hold.
            at = base + dt.timedelta(milliseconds=tick) - (dt.timedelta(hours=1) if old else dt.timedelta(0))
            replayed += old
            event = {
                "resourceUrl": f"https://api.xero.com/api.xro/2.0/Invoices/{resource_id}",
                "resourceId": resource_id,
                "tenantId": tenant_id,
                "tenantType": "ORGANISATION",
                "eventCategory": "INVOICE",
                "eventType": "UPDATE",
                "eventDateUtc": at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}",
            }
            events.append(event)
            sent_events.append(event)
        for event in events:
            distinct.add((event["tenantId"], event["resourceId"], event["eventDateUtc"]))
        sequence += len(events)
        body = json.dumps(
            {
                "events": events,
                "firstEventSequence": sequence - len(events) + 1,
                "lastEventSequence": sequence,
                "entropy": uuid.uuid4().hex[:20].upper(),
            },
            separators=(",", ":"),
        ).encode()
        deliveries.append((body, sign(body)))
    return deliveries, distinct, replayed


# ---------------------------------------------------------------- the load generator


async def _send(port: int, deliveries: list, rate: float, connections: int) -> tuple[list[float], int, float]:
    start = time.monotonic() + 0.5
    queue: asyncio.Queue = asyncio.Queue()
    for index, delivery in enumerate(deliveries):
        queue.put_nowait((start + index / rate, delivery))
    latencies: list[float] = []
    errors = 0

    async def lane() -> None:
        nonlocal errors
        reader = writer = None
        while True:
            try:
                scheduled, (body, signature) = queue.get_nowait()
            except asyncio.QueueEmpty:
                break
            delay = scheduled - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            request = (
                f"POST {RECEIVER} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nx-xero-signature: {signature}\r\n"
                "User-Agent: Xero-Webhooks-Bench\r\n\r\n"
            ).encode() + body
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(request)
                await writer.drain()
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                status = int(lines[0].split()[1])
                headers = {
                    k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)
                }
                length = int(headers.get("content-length", "0"))
                content = await reader.readexactly(length) if length else b""
                latencies.append((time.monotonic() - scheduled) * 1000)
                if status != 200 or content or "set-cookie" in headers:
                    errors += 1
                if headers.get("connection", "").lower() == "close":
                    writer.close()
                    writer = None
            except (OSError, asyncio.IncompleteReadError, ValueError):
                errors += 1
                latencies.append((time.monotonic() - scheduled) * 1000)
                if writer is not None:
                    writer.close()
                writer = None
        if writer is not None:
            writer.close()

    await asyncio.gather(*(lane() for _ in range(connections)))
    return latencies, errors, time.monotonic() - start


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else 0.0


# ---------------------------------------------------------------- main


def main() -> None:
    args = parse_args()
    from xero_sandbox.testing import start_sandbox

    sandbox = start_sandbox()
    try:
        result = run(args, sandbox)
    finally:
        sandbox.stop()
    print(json.dumps(result))


def run(args: argparse.Namespace, sandbox) -> dict:
    production = prepare_environment(sandbox)
    import django

    django.setup()
    import redis
    from django.core.management import call_command

    from integrations.models import WebhookEvent

    call_command("migrate", verbosity=0)
    redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()
    tenants = set_up_tenants(sandbox, args.invoices, args.keep_other_data)
    ours = WebhookEvent.objects.filter(tenant_id__in=bench_tenant_ids(sandbox))
    from invoices.models import Invoice

    other_invoices = Invoice.objects.exclude(organisation__name__startswith="Webhook Bench ").count()
    other_events = WebhookEvent.objects.count() - ours.count()
    warmup = int(args.rate * args.warmup_seconds)
    total = int(args.rate * args.seconds)
    from django.db.models import Max

    held = Invoice.objects.filter(organisation__name__startswith="Webhook Bench ").aggregate(Max("xero_updated_at"))
    deliveries, distinct, replayed = make_deliveries(
        tenants, warmup + total, args.seed, args.replayed_share, after=held["xero_updated_at__max"]
    )
    sandbox.admin("DELETE", "/requests")

    port = free_port()
    processes = Processes(production)
    try:
        web = processes.start(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "coordinoter.wsgi:application",
                "-b",
                f"127.0.0.1:{port}",
                "-k",
                args.web_class,
                "-w",
                str(args.web_workers),
                "--access-logfile",
                str(processes.dir / "access.log"),
                "--access-logformat",
                "%(s)s %(D)s",
                *(["--threads", str(args.web_threads), "--keep-alive", "30"] if args.web_class == "gthread" else []),
            ],
            "web",
        )
        worker = processes.start(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "coordinoter",
                "worker",
                "-Q",
                "webhooks,default",
                "-c",
                str(args.celery_workers),
                "--prefetch-multiplier",
                "1",
                "--without-gossip",
                "--without-mingle",
                "--loglevel",
                "INFO",
            ],
            "worker",
        )
        wait_ready(f"http://127.0.0.1:{port}/healthz")
        deadline = time.monotonic() + 30
        while "ready." not in processes.log("worker"):
            if time.monotonic() > deadline:
                raise SystemExit("Celery worker not ready:\n" + processes.log("worker")[-2000:])
            time.sleep(0.2)

        web_cpu_before, worker_cpu_before = cpu_seconds(web.pid), cpu_seconds(worker.pid)
        if warmup:
            _, warmup_errors, _ = asyncio.run(_send(port, deliveries[:warmup], args.rate, args.connections))
            access_log = processes.dir / "access.log"
            warmed_lines = len(access_log.read_text().splitlines()) if access_log.exists() else 0
        else:
            warmup_errors, warmed_lines = 0, 0
        latencies, errors, seconds = asyncio.run(_send(port, deliveries[warmup:], args.rate, args.connections))
        web_cpu = cpu_seconds(web.pid) - web_cpu_before
        drain_until = time.monotonic() + args.drain_timeout
        while ours.filter(state="received").exists() and time.monotonic() < drain_until:
            time.sleep(0.25)
        worker_cpu = cpu_seconds(worker.pid) - worker_cpu_before
    finally:
        processes.stop()

    # gunicorn's own view: microseconds from reading the request to the response written (%(D)s).
    server_ms = [
        int(line.split()[1]) / 1000
        for line in (processes.dir / "access.log").read_text().splitlines()[warmed_lines:]
        if line.startswith("200 ")
    ]
    rows = list(ours.values_list("tenant_id", "resource_id", "event_date", "state", "received_at", "processed_at"))
    fetches_skipped = ours.filter(outcome="fetch_skipped").count()
    stored_keys = [
        (t, r, e.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{e.microsecond // 1000:03d}")
        for t, r, e, *_ in rows
    ]
    lags = sorted(
        (processed - received).total_seconds()
        for _t, _r, _e, state, received, processed in rows
        if state == "processed" and processed is not None
    )
    log = sandbox.admin("GET", "/requests")
    return {
        "requests": len(latencies),
        "seconds": round(seconds, 2),
        "rps": round(len(latencies) / seconds, 1),
        "p50_ms": round(percentile(latencies, 0.50), 2),
        "p99_ms": round(percentile(latencies, 0.99), 2),
        "max_ms": round(max(latencies), 2) if latencies else 0.0,
        "errors": errors + warmup_errors,
        "warmup_requests": warmup,
        "server_p50_ms": round(percentile(server_ms, 0.50), 2),
        "server_p99_ms": round(percentile(server_ms, 0.99), 2),
        "distinct_events_sent": len(distinct),
        "stored": len(rows),
        "lost": len(distinct - set(stored_keys)),
        "duplicates_stored": len(stored_keys) - len(set(stored_keys)),
        "events_processed": len(lags),
        "events_ignored": sum(1 for row in rows if row[3] == "ignored"),
        "events_waiting": sum(1 for row in rows if row[3] == "received"),
        "events_failed": sum(1 for row in rows if row[3] == "failed"),
        "fetches_skipped": fetches_skipped,
        "replayed_events_sent": replayed,
        "apply_lag_p50_s": round(percentile(lags, 0.50), 3),
        "apply_lag_p95_s": round(percentile(lags, 0.95), 3),
        "apply_lag_max_s": round(lags[-1], 3) if lags else 0.0,
        "web_cpu_ms_per_request": round(web_cpu * 1000 / max(1, len(latencies)), 2),
        "worker_cpu_s": round(worker_cpu, 2),
        "xero_calls": len(log),
        "resources_fetched": sum(
            len(ids.split(","))
            for entry in log
            if entry["method"] == "GET"
            for ids in urllib.parse.parse_qs(entry.get("query") or "").get("IDs", [])
        ),
        "xero_429": sum(1 for entry in log if entry["status"] == 429),
        "rate": args.rate,
        "replayed_share": args.replayed_share,
        "web_class": args.web_class,
        "web_workers": args.web_workers,
        "web_threads": args.web_threads if args.web_class == "gthread" else 1,
        "celery_workers": args.celery_workers,
        "other_invoices_in_database": other_invoices,
        "other_webhook_events_in_database": other_events,
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


if __name__ == "__main__":
    main()
