"""The push, the webhook inbox and the reconciliation poll on SQLite, end to end (what `make run` runs).

The suite runs on PostgreSQL, but `make run` and the demo run on SQLite with tasks in process, and several services
write there by another path (invoices/services/push/outcomes.py, integrations/webhooks/record.py and selectors.py
branch on the database vendor). So, as tests/invoices/test_customer_names_sqlite.py does, each test runs a script in a
subprocess against a SQLite database of its own (DATABASE_URL pointing at a file in tmp_path, no Redis), copied from
one migrated from scratch once for the module. Xero is mocked with `responses` inside the subprocess; nothing else is.
Tasks are queued through the real gateway (coordinoter/queue.py, in-process mode); what it hands the runner thread is
recorded instead and run in order in the script's thread, so each run is deterministic.
"""

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WEBHOOK_KEY = "sqlite-paths-webhook-key"
API = "https://api.xero.com/api.xro/2.0"

# Shared by every script: a network guard (as tests/conftest.py's), Django, and the in-process runner replaced by a
# recorder that `drain()` empties in this thread (the runner's thread would race the script's own reads).
PRELUDE = r"""
import ipaddress, json, socket, sys

_real_connect = socket.socket.connect


def _guarded_connect(self, address):
    if isinstance(address, tuple) and address[0] not in ("localhost", ""):
        try:
            loopback = ipaddress.ip_address(address[0]).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise RuntimeError(f"Test tried to reach the network at {address!r}: mock it with `responses`.")
    return _real_connect(self, address)


socket.socket.connect = _guarded_connect

import django

django.setup()

from django.conf import settings
from django.db import connection

from coordinoter import queue

assert settings.TASKS_IN_PROCESS and not settings.REDIS_URL, "expected make run's embedded mode"
queued = []


def _submit(task, *, args=(), kwargs=None, countdown=0.0):
    queued.append((task, tuple(args), dict(kwargs or {}), countdown))


queue.runner.submit = _submit
queue.runner.ensure_started = lambda: None  # the first request would start the runner's thread (and beat)


def drain(limit=20):
    # Run what the gateway queued, oldest first, without waiting for countdowns (a task may queue more).
    ran = []
    while queued and limit:
        task, args, kwargs, countdown = queued.pop(0)
        ran.append([task.name, countdown])
        task.run(*args, **kwargs)
        limit -= 1
    return ran


def iso(value):
    return value.isoformat() if value is not None else None


def report(data):
    print("REPORT " + json.dumps({"vendor": connection.vendor, **data}, default=str))
"""

PUSH = r"""
import responses

from integrations.models import XeroConnection
from integrations.outbound.models import OutboundAttempt
from invoices.models import Customer, Invoice, InvoiceEvent, customer_name_key
from invoices.services.push import push_enqueue_for_organisation
from invoices.services.push.common import chunks
from tests.factories import echo_invoices, make_connected_organisation, make_organisation

org = make_organisation(name="Émile Çafé Pty")
_, batch = make_connected_organisation(organisation=org, invoices=4)
name = "Émile Çafé & Søn"
Customer.objects.filter(organisation=org).update(name=name, name_key=customer_name_key(name))
numbers = sorted(batch.invoices.values_list("number", flat=True))
ok, warned, refused = numbers[:2], numbers[2], numbers[3]

with responses.RequestsMock(assert_all_requests_are_fired=False) as xero:  # the test counts the calls
    xero.add_callback(
        responses.PUT,
        f"{settings.XERO_API_URL}/Invoices",
        callback=lambda request: echo_invoices(
            request,
            warnings={warned: ["Account code '200' has been archived"]},
            errors={refused: ["Invoice not of valid status for creation"]},
        ),
    )
    push_enqueue_for_organisation(organisation_id=org.pk)
    ran = drain()
    puts = [call.request for call in xero.calls if call.request.method == "PUT"]

chunk = chunks().get(organisation=org)
invoices = {
    row["number"]: row
    for row in Invoice.objects.filter(organisation=org).values(
        "number", "status", "sync_state", "xero_invoice_id", "xero_status", "xero_updated_at", "xero_tenant_id",
        "xero_short_code", "subtotal", "total_tax", "total", "amount_due", "amount_paid", "sync_errors",
        "sync_warnings", "synced_at",
    )
}
report(
    {
        "numbers": {"ok": ok, "warned": warned, "refused": refused},
        "ran": ran,
        "left": [[task.name, countdown] for task, _, _, countdown in queued],
        "puts": [
            {
                "key": p.headers.get("Idempotency-Key"),
                "numbers": [e["InvoiceNumber"] for e in json.loads(p.body)["Invoices"]],
            }
            for p in puts
        ],
        "chunk": {"state": chunk.state, "key": chunk.idempotency_key, "sends": chunk.sends},
        "attempts": list(OutboundAttempt.objects.filter(operation=chunk).values_list("outcome", flat=True)),
        "invoices": invoices,
        "events": sorted(
            InvoiceEvent.objects.filter(organisation=org).values_list("invoice__number", "kind", "source", "message")
        ),
        "last_synced_at": iso(XeroConnection.objects.get(organisation=org).last_synced_at),
    }
)
"""

WEBHOOK = r"""
import datetime as dt

import responses
from django.test import Client
from django.utils import timezone
from responses import matchers

from integrations.models import WebhookEvent
from integrations.webhooks.selectors import webhook_inbox_summaries, webhook_lag_by_hour, webhook_lag_percentiles
from invoices.models import Invoice, InvoiceEvent, Payment
from tests.factories import (
    TENANT_ID, make_connection, make_organisation, make_pushed_invoice, make_webhook_delivery, make_xero_event,
)

params = json.loads(sys.argv[1])
held = dt.datetime.fromisoformat(params["held"])
org = make_organisation(name="Straße & Søn GmbH")
make_connection(organisation=org)
invoice = make_pushed_invoice(
    organisation=org, xero_invoice_id=params["invoice_id"], xero_updated_at=held, number="INV-0001"
)
ours = make_xero_event(tenant_id=TENANT_ID, resource_id=params["invoice_id"], at=params["event_at"])
strangers = make_xero_event(tenant_id=params["other_tenant"], at=params["event_at"])
body, signature = make_webhook_delivery(events=[ours, strangers], key=params["key"], sequence=41)
client = Client()
url = "/integrations/xero/webhooks/"


def deliver(signature):
    return client.post(url, data=body, content_type="application/json", headers={"x-xero-signature": signature})


forged = deliver("AAAA" + signature[4:])
stored_after_forged = WebhookEvent.objects.count()
first = deliver(signature)
again = deliver(signature)  # Xero delivers again when it missed our answer
received = sorted(WebhookEvent.objects.values_list("tenant_id", "organisation_id", "state", "outcome"), key=str)
queued_names = [[task.name, kwargs] for task, _, kwargs, _ in queued]

with responses.RequestsMock(assert_all_requests_are_fired=False) as xero:  # the test counts the calls
    xero.get(
        f"{settings.XERO_API_URL}/Invoices",
        json={"Status": "OK", "Invoices": [params["paid"]]},
        match=[matchers.query_param_matcher({"IDs": params["invoice_id"], "page": "1", "unitdp": "4"})],
    )
    ran = drain()
    fetches = len(xero.calls)

invoice.refresh_from_db()
since = timezone.now() - dt.timedelta(hours=1)
summary = webhook_inbox_summaries(organisation_ids=[org.pk, None], since=since)
report(
    {
        "organisation_id": org.pk,
        "statuses": [forged.status_code, first.status_code, again.status_code],
        "bodies": [forged.content.decode(), first.content.decode(), again.content.decode()],
        "stored_after_forged": stored_after_forged,
        "received": received,
        "queued": queued_names,
        "ran": ran,
        "fetches": fetches,
        "events": list(
            WebhookEvent.objects.order_by("pk").values("tenant_id", "state", "outcome", "attempts", "processed_at")
        ),
        "invoice": {
            "status": invoice.status,
            "xero_status": invoice.xero_status,
            "amount_paid": invoice.amount_paid,
            "amount_due": invoice.amount_due,
            "xero_updated_at": iso(invoice.xero_updated_at),
        },
        "payments": list(
            Payment.objects.filter(invoice=invoice).values_list("xero_payment_id", "amount", "date", "reference")
        ),
        "history": list(InvoiceEvent.objects.filter(invoice=invoice).values_list("source", "kind", "message")),
        "summary": {str(k): [v.received, v.processed, v.ignored, v.failed] for k, v in summary.items()},
        "lag": webhook_lag_percentiles(organisation_ids=[org.pk], since=since)[org.pk],
        "lag_by_hour": list(webhook_lag_by_hour(organisation_id=org.pk, since=since).values()),
    }
)
"""

RECONCILE = r"""
import datetime as dt

import responses
from django.utils import timezone
from responses import matchers

from integrations.models import ReconciliationState
from integrations.webhooks.tasks import reconcile_all
from invoices.models import Invoice, InvoiceEvent
from tests.factories import make_connection, make_organisation, make_pushed_invoice

params = json.loads(sys.argv[1])
held = dt.datetime.fromisoformat(params["held"])
org = make_organisation(name="İzmir Foods A.Ş.")
make_connection(organisation=org)
for key in ("drifted", "same"):
    answer = params[key]
    make_pushed_invoice(
        organisation=org, xero_invoice_id=answer["InvoiceID"], xero_updated_at=held, number=answer["InvoiceNumber"]
    )
now = timezone.now()
ReconciliationState.objects.create(
    organisation=org, last_success_at=held - dt.timedelta(minutes=5), next_due_at=now - dt.timedelta(minutes=1)
)

with responses.RequestsMock(assert_all_requests_are_fired=False) as xero:  # the test counts the calls
    xero.get(
        f"{settings.XERO_API_URL}/Invoices",
        json={
            "Invoices": [params["same"], params["drifted"]],
            "pagination": {"page": 1, "pageSize": 100, "pageCount": 1, "itemCount": 2},
        },
        match=[
            matchers.query_param_matcher({"page": "1", "order": "InvoiceID ASC", "unitdp": "4"}),
            matchers.header_matcher({"If-Modified-Since": params["since"]}),
        ],
    )
    xero.get(f"{settings.XERO_API_URL}/Contacts", json={"Contacts": []})
    due = reconcile_all.run()  # beat's fan-out: claims the due tenant and queues its pass
    ran = drain()
    asked = [call.request.url.split("?")[0].rsplit("/", 1)[-1] for call in xero.calls]

state = ReconciliationState.objects.get(organisation=org)
invoices = {
    row["number"]: row
    for row in Invoice.objects.filter(organisation=org).values(
        "number", "status", "amount_paid", "amount_due", "xero_updated_at"
    )
}
report(
    {
        "due": due,
        "ran": ran,
        "asked": asked,
        "invoices": invoices,
        "history": list(
            InvoiceEvent.objects.filter(organisation=org).values_list("invoice__number", "source", "kind", "message")
        ),
        "state": {
            "drift_last": state.drift_last,
            "drift_total": state.drift_total,
            "passes": state.passes,
            "checked_last": state.checked_last,
            "drift_recent": state.drift_recent,
            "last_error": state.last_error,
            "last_success_at": iso(state.last_success_at),
            "reconcile_claimed_until": iso(state.reconcile_claimed_until),
            "next_due_at": iso(state.next_due_at),
            "due_reason": state.due_reason,
            "started": iso(state.last_started_at),
        },
        "now": iso(now),
    }
)
"""


def _env(database: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "CACHE_REDIS_URL", "TEST_DATABASE_NAME"}
        and not key.startswith("XERO_")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="coordinoter.settings",
        DJANGO_DEBUG="true",
        DATABASE_URL=f"sqlite:///{database}",
        PYTHONPATH=str(ROOT),
        XERO_API_URL=API,
        XERO_WEBHOOK_KEY=WEBHOOK_KEY,
    )
    return env


def _run(args: list[str], database: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=_env(database), capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def migrated(tmp_path_factory) -> Path:
    """A SQLite database migrated from scratch, once for the module (migrating takes most of a run's time)."""
    database = tmp_path_factory.mktemp("sqlite") / "migrated.sqlite3"
    done = _run(["manage.py", "migrate", "--verbosity=0", "--no-input"], database)
    assert done.returncode == 0, done.stderr[-3000:]
    return database


def run_on_sqlite(migrated: Path, tmp_path: Path, script: str, params: dict | None = None) -> dict:
    """Run PRELUDE + script on a copy of the migrated database; the script's REPORT line, parsed."""
    database = tmp_path / "db.sqlite3"
    shutil.copyfile(migrated, database)
    done = _run(["-c", PRELUDE + script, json.dumps(params or {})], database)
    assert done.returncode == 0, done.stderr[-5000:]
    [line] = [line for line in done.stdout.splitlines() if line.startswith("REPORT ")]
    report = json.loads(line.removeprefix("REPORT "))
    assert report["vendor"] == "sqlite"
    return report


def xero_date(at: dt.datetime) -> str:
    return f"/Date({int(at.timestamp() * 1000)}+0000)/"


def xero_invoice(invoice_id: str, number: str, at: dt.datetime, **changes) -> dict:
    """An invoice as GET /Invoices returns it (tests/fixtures/xero/invoice_authorised.json), changed at `at`."""
    fixture = json.loads((ROOT / "tests" / "fixtures" / "xero" / "invoice_authorised.json").read_text())
    base = {**fixture["Invoices"][0], "InvoiceID": invoice_id, "InvoiceNumber": number, "UpdatedDateUTC": xero_date(at)}
    return {**base, **changes}


HELD = dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.UTC)


# ---------------------------------------------------------------- the push


def test_push_records_xero_ids_states_and_history_on_sqlite_when_a_chunk_is_answered(migrated, tmp_path):
    report = run_on_sqlite(migrated, tmp_path, PUSH)
    numbers = report["numbers"]
    ok, warned, refused = numbers["ok"], numbers["warned"], numbers["refused"]
    # The gateway's tasks, as the in-process runner would run them: dispatch, then the chunk; nothing left to retry.
    assert report["ran"] == [["invoices.tasks.push_organisation", 0.0], ["invoices.tasks.push_chunk", 0.0]]
    assert report["left"] == []
    [put] = report["puts"]
    assert put["numbers"] == sorted([*ok, warned, refused])
    assert put["key"] == report["chunk"]["key"]  # the key stored before the call
    assert report["chunk"]["state"] == "done" and report["chunk"]["sends"] == 1
    assert len(report["attempts"]) == 1
    invoices = report["invoices"]
    answered_at = dt.datetime.fromtimestamp(1764000000, tz=dt.UTC)  # echo_invoices' UpdatedDateUTC
    for number in [*ok, warned]:
        invoice = invoices[number]
        assert invoice["sync_state"] == ("warning" if number == warned else "synced"), number
        assert invoice["xero_invoice_id"] == str(uuid.uuid5(uuid.NAMESPACE_URL, number))
        assert invoice["xero_status"] == invoice["status"] and invoice["xero_status"]
        assert dt.datetime.fromisoformat(invoice["xero_updated_at"]) == answered_at
        assert (invoice["xero_tenant_id"], invoice["xero_short_code"]) == (
            "70784a63-d24b-46a9-a4db-0e70a274b056",
            "!mF3pq",
        )
        amounts = [Decimal(str(invoice[f])) for f in ("subtotal", "total_tax", "total", "amount_due", "amount_paid")]
        assert amounts == [Decimal("100"), Decimal("10"), Decimal("110"), Decimal("110"), Decimal("0")], number
        assert invoice["sync_errors"] == [] and invoice["synced_at"] is not None
    assert invoices[warned]["sync_warnings"] == ["Account code '200' has been archived"]
    assert [invoices[n]["sync_warnings"] for n in ok] == [[], []]
    failed = invoices[refused]
    assert failed["sync_state"] == "failed" and failed["xero_invoice_id"] == ""
    assert failed["sync_errors"] == ["Invoice not of valid status for creation"]
    assert failed["synced_at"] is None
    assert Decimal(str(failed["subtotal"])) == 0  # as before the push: the synced ones' amounts came from Xero
    status = invoices[ok[0]]["status"]
    assert report["events"] == sorted(
        [
            [ok[0], "synced", "system", f"In Xero as {ok[0]} ({status})"],
            [ok[1], "synced", "system", f"In Xero as {ok[1]} ({status})"],
            [
                warned,
                "synced",
                "system",
                f"In Xero as {warned} ({status}), with warnings: Account code '200' has been archived",
            ],
            [refused, "failed", "system", "Xero rejected it: Invoice not of valid status for creation"],
        ]
    )
    assert report["last_synced_at"] is not None


# ---------------------------------------------------------------- the webhook inbox

INVOICE_ID = "0f0d5a46-9c4a-4f7e-8a39-2d2c4a7b1e01"
PAYMENT_ID = "b1c2d3e4-0000-4000-8000-00000000a001"


def test_webhook_delivery_is_verified_stored_once_and_makes_the_invoice_paid_on_sqlite(migrated, tmp_path):
    paid_at = HELD + dt.timedelta(minutes=5)
    paid = xero_invoice(
        INVOICE_ID,
        "INV-0001",
        paid_at,
        Status="PAID",
        AmountPaid=110.0,
        AmountDue=0.0,
        Payments=[
            {
                "PaymentID": PAYMENT_ID,
                "Date": xero_date(paid_at),
                "Amount": 110.0,
                "Reference": "Überweisung 17",
            }
        ],
    )
    other_tenant = str(uuid.uuid4())
    params = {
        "held": HELD.isoformat(),
        "invoice_id": INVOICE_ID,
        "event_at": "2026-11-24T09:05:00.000",
        "other_tenant": other_tenant,
        "key": WEBHOOK_KEY,
        "paid": paid,
    }
    report = run_on_sqlite(migrated, tmp_path, WEBHOOK, params)
    organisation_id = report["organisation_id"]
    # Signature checked: the forged delivery is refused and stores nothing; the real one (twice) gets an empty 200.
    assert report["statuses"] == [401, 200, 200] and report["bodies"] == ["", "", ""]
    assert report["stored_after_forged"] == 0
    # Stored once each (the retry adds nothing); the stranger's event kept as ignored, the way _record_orm decides.
    assert sorted(report["received"], key=str) == sorted(
        [
            ["70784a63-d24b-46a9-a4db-0e70a274b056", organisation_id, "received", ""],
            [other_tenant, None, "ignored", "unknown_tenant"],
        ],
        key=str,
    )
    assert report["queued"] == [
        ["integrations.webhook_tasks.process_webhook_inbox", {"organisation_id": organisation_id}]
    ]
    assert [name for name, _ in report["ran"]] == ["integrations.webhook_tasks.process_webhook_inbox"]
    assert report["fetches"] == 1
    ours = [e for e in report["events"] if e["tenant_id"] != other_tenant]
    assert [(e["state"], e["outcome"], e["attempts"]) for e in ours] == [("processed", "applied", 1)]
    assert ours[0]["processed_at"] is not None
    invoice = report["invoice"]
    assert (invoice["status"], invoice["xero_status"]) == ("PAID", "PAID")
    assert (Decimal(str(invoice["amount_paid"])), Decimal(str(invoice["amount_due"]))) == (Decimal("110"), Decimal(0))
    assert dt.datetime.fromisoformat(invoice["xero_updated_at"]) == paid_at
    [(payment_id, amount, paid_on, reference)] = report["payments"]
    assert (payment_id, Decimal(str(amount)), paid_on, reference) == (
        PAYMENT_ID,
        Decimal("110"),
        "2026-11-24",
        "Überweisung 17",
    )
    [(source, kind, message)] = report["history"]
    assert (source, kind) == ("xero", "changed_in_xero")
    assert message.startswith("changed in Xero: status AUTHORISED → PAID")
    # The support console's readings of the inbox: counts, and the lag computed in Python on SQLite.
    assert report["summary"][str(organisation_id)] == [0, 1, 0, 0]
    assert report["summary"]["None"] == [0, 0, 1, 0]
    lag = report["lag"]
    assert lag["count"] == 1 and lag["p50"] is not None and 0 <= lag["p50"] == lag["p95"] < 60
    [hour] = report["lag_by_hour"]
    assert hour["count"] == 1 and hour["p50"] == lag["p50"]


# ---------------------------------------------------------------- reconciliation


def test_reconciliation_pass_applies_a_drifted_invoice_and_counts_it_on_sqlite(migrated, tmp_path):
    drifted = xero_invoice(
        "0f0d5a46-9c4a-4f7e-8a39-2d2c4a7b1e02",
        "INV-0001",
        HELD + dt.timedelta(minutes=6),
        Status="PAID",
        AmountPaid=110.0,
        AmountDue=0.0,
    )
    same = xero_invoice("0f0d5a46-9c4a-4f7e-8a39-2d2c4a7b1e03", "INV-0002", HELD)  # the version we hold
    params = {"held": HELD.isoformat(), "drifted": drifted, "same": same, "since": "2026-11-24T08:53:00Z"}
    report = run_on_sqlite(migrated, tmp_path, RECONCILE, params)
    assert report["due"] == 1
    assert [name for name, _ in report["ran"]] == ["integrations.webhook_tasks.reconcile_organisation"]
    assert report["asked"] == ["Invoices", "Contacts"]  # no credit notes of ours: none polled
    invoices = report["invoices"]
    assert invoices["INV-0001"]["status"] == "PAID"
    assert Decimal(str(invoices["INV-0001"]["amount_due"])) == 0
    assert dt.datetime.fromisoformat(invoices["INV-0001"]["xero_updated_at"]) == HELD + dt.timedelta(minutes=6)
    assert invoices["INV-0002"]["status"] == "AUTHORISED"
    assert dt.datetime.fromisoformat(invoices["INV-0002"]["xero_updated_at"]) == HELD
    [(number, source, kind, message)] = report["history"]
    assert (number, source, kind) == ("INV-0001", "xero", "changed_in_xero")
    assert "status AUTHORISED → PAID" in message
    state = report["state"]
    assert (state["drift_last"], state["drift_total"], state["passes"], state["checked_last"]) == (1, 1, 1, 2)
    [repair] = state["drift_recent"]
    assert (repair["label"], repair["outcome"], repair["category"]) == ("INV-0001", "applied", "INVOICE")
    assert state["last_error"] == "" and state["reconcile_claimed_until"] is None
    assert state["last_success_at"] == state["started"]
    now = dt.datetime.fromisoformat(report["now"])
    assert state["due_reason"] == "cadence" and dt.datetime.fromisoformat(state["next_due_at"]) > now
