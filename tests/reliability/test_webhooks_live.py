"""Webhooks end to end: xero_sandbox (a subprocess) delivers signed webhooks to our receiver running in Django's
live server, and REAL Celery workers (subprocesses) process them on Postgres and Redis.

The workers and this process share their own Redis database, so no other test session's workers take these tasks.
"""

import datetime as dt
import os
import time
import uuid

import pytest
from celery import current_app

from coordinoter import queue
from integrations.models import ReconciliationState, WebhookEvent
from integrations.webhooks import fetch, sweep
from integrations.webhooks.tasks import reconcile_organisation
from tests.support.live import CeleryProcesses, live_env, wait_until
from tests.support.xero_live import connect_organisation, pay_in_xero, sandbox_settings, status_of, xero_invoice_of_ours

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

KEY = "live-webhook-signing-key"
RECEIVER = "/integrations/xero/webhooks/"
DEAD_BROKER = "redis://127.0.0.1:1/0"


@pytest.fixture(scope="module")
def sandbox():
    from xero_sandbox.testing import start_sandbox

    handle = start_sandbox(webhook_key=KEY, webhook_batch_ms=100)
    yield handle
    handle.stop()


@pytest.fixture
def broker(settings, monkeypatch):
    """A Redis database of our own for this test's broker (and the workers' cache and limiter)."""
    base = settings.REDIS_URL.rsplit("/", 1)[0]
    url = f"{base}/{8 + os.getpid() % 8}"
    monkeypatch.setattr(current_app.conf, "broker_url", url)
    # Celery caches its connection and producer pools: start both afresh on this broker, and put back after.
    monkeypatch.setattr(current_app, "_pool", None)
    monkeypatch.setattr(current_app.amqp, "_producer_pool", None)
    yield url
    queue.fail_fast_connection_drop()


@pytest.fixture
def xero(sandbox, settings, live_server, monkeypatch):
    sandbox.reset(keep_settings=True)
    for name, value in sandbox_settings(sandbox).items():
        setattr(settings, name, value)
    settings.XERO_WEBHOOK_KEY = KEY
    monkeypatch.setattr(fetch, "xero_rate_limiter", lambda: None)
    sandbox.set_webhook(url=live_server.url + RECEIVER, key=KEY, webhook_duplicate=0, webhook_out_of_order=False)
    return sandbox


@pytest.fixture
def workers(settings, sandbox, broker, transactional_db):
    processes = CeleryProcesses(
        env=live_env(
            settings,
            **sandbox_settings(sandbox),
            REDIS_URL=broker,
            XERO_WEBHOOK_KEY=KEY,
            XERO_RATE_LIMIT_PREFIX=f"test:webhooks:{uuid.uuid4().hex}",
        )
    )
    processes.start_workers(2, queues="webhooks,default")
    yield processes
    processes.stop()


@pytest.fixture
def tenant():
    from xero_sandbox.testing import AU_ID

    return AU_ID


@pytest.fixture
def organisation(xero, tenant):
    return connect_organisation(xero, name="Live Florists", tenant_id=tenant)


def test_sandbox_intent_to_receive_passes_when_checked_against_running_receiver(xero, live_server):
    outcome = xero.intent_to_receive(url=live_server.url + RECEIVER, key=KEY)
    assert outcome["ok"], outcome
    assert sorted((c["correctly_signed"], c["status"]) for c in outcome["checks"]) == [
        (False, 401),
        (False, 401),
        (True, 200),
        (True, 200),
    ]
    assert all(c["ms"] < 5000 for c in outcome["checks"])


def test_payment_in_xero_is_applied_within_seconds_when_workers_run(xero, tenant, organisation, workers):
    invoice = xero_invoice_of_ours(organisation)
    started = time.monotonic()
    pay_in_xero(xero, tenant, invoice, "110.00")
    wait_until(lambda: status_of(invoice) == "PAID", timeout=5, message="invoice PAID in Coordinoter")
    lag = time.monotonic() - started
    invoice.refresh_from_db()
    assert invoice.amount_due == 0
    assert invoice.events.filter(source="xero", message__contains="status AUTHORISED → PAID").exists()
    print(f"payment in Xero -> PAID in Coordinoter: {lag:.2f}s")


def test_newest_state_wins_when_deliveries_are_duplicated_and_reordered(xero, tenant, organisation, workers):
    invoice = xero_invoice_of_ours(organisation)
    xero.settings(webhook_duplicate=1.0, webhook_out_of_order=True)
    pay_in_xero(xero, tenant, invoice, "50.00")
    pay_in_xero(xero, tenant, invoice, "60.00")
    assert xero.flush_webhooks(timeout=10)
    wait_until(lambda: status_of(invoice) == "PAID", timeout=10, message="invoice PAID")
    wait_until(lambda: not WebhookEvent.objects.filter(state="received").exists(), timeout=10, message="inbox drained")
    deliveries = xero.webhook_deliveries()
    sent = sum(len(d["payload"]["events"]) for d in deliveries for a in d["attempts"] if a["status"] == 200)
    distinct = {
        (e["tenantId"], e["eventCategory"], e["eventType"], e["resourceId"], e["eventDateUtc"])
        for d in deliveries
        for e in d["payload"]["events"]
    }
    assert sent > len(distinct)  # Xero (the sandbox) really sent duplicates
    assert WebhookEvent.objects.count() == len(distinct)
    invoice.refresh_from_db()
    assert (invoice.amount_paid, invoice.amount_due) == (110, 0)


def test_delivery_is_stored_while_redis_is_down_and_processed_once_it_is_back(
    xero, tenant, organisation, workers, broker, monkeypatch
):
    invoice = xero_invoice_of_ours(organisation)
    assert xero.flush_webhooks(timeout=10)
    wait_until(lambda: not WebhookEvent.objects.filter(state="received").exists(), timeout=10, message="settled")
    monkeypatch.setattr(current_app.conf, "broker_url", DEAD_BROKER)
    pay_in_xero(xero, tenant, invoice, "110.00")
    assert xero.flush_webhooks(timeout=10)
    last = xero.webhook_deliveries()[-1]
    assert [a["status"] for a in last["attempts"]] == [200]  # answered, first time, while the broker was down
    stored = WebhookEvent.objects.get(resource_id=invoice.xero_invoice_id, state="received")
    time.sleep(1)
    assert status_of(invoice) == "AUTHORISED"
    # Redis is back: the beat sweeper's pass enqueues what waits; the workers process it.
    monkeypatch.setattr(current_app.conf, "broker_url", broker)
    sweep.webhook_inbox_sweep(older_than=dt.timedelta(0))
    wait_until(lambda: status_of(invoice) == "PAID", timeout=5, message="processed after the broker came back")
    # The invoice is applied, then its events are marked (an event left received by a crash between the two is
    # processed again, idempotently): wait for the mark rather than read it the instant the invoice turns PAID.
    wait_until(
        lambda: WebhookEvent.objects.get(pk=stored.pk).state == "processed", timeout=5, message="event marked processed"
    )


def test_missed_webhook_is_repaired_by_reconciliation_when_beat_runs_it(xero, tenant, organisation, workers):
    invoice = xero_invoice_of_ours(organisation)
    assert xero.flush_webhooks(timeout=10)
    # Let the CREATE events settle first: processing fetches the invoice as it is then, payment or not.
    wait_until(lambda: not WebhookEvent.objects.filter(state="received").exists(), timeout=10, message="settled")
    ReconciliationState.objects.update_or_create(
        organisation=organisation, defaults={"last_success_at": dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)}
    )
    xero.set_webhook(url="")  # Xero's webhook is down: this change never arrives
    pay_in_xero(xero, tenant, invoice, "110.00")
    time.sleep(0.5)
    assert status_of(invoice) == "AUTHORISED"
    reconcile_organisation.apply_async(kwargs={"organisation_id": organisation.pk})
    wait_until(lambda: status_of(invoice) == "PAID", timeout=10, message="repaired by reconciliation")
    wait_until(lambda: ReconciliationState.objects.get(organisation=organisation).passes >= 1, timeout=5)
    state = ReconciliationState.objects.get(organisation=organisation)
    assert state.drift_last >= 1
    assert any(r["label"] == invoice.number for r in state.drift_recent)
