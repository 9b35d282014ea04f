"""Redis (the Celery broker) down while a delivery arrives: the delivery is still stored and answered 200 within
milliseconds, and processed once Redis is back (the beat sweeper, or the next delivery, enqueues it)."""

import copy
import json
import logging
import time
from pathlib import Path

import pytest
import responses
from celery import current_app
from celery.app.task import Task

from coordinoter import queue
from integrations.models import WebhookEvent
from integrations.webhooks import fetch, sweep
from invoices.models import Invoice
from tests.factories import (
    TENANT_ID,
    make_connection,
    make_organisation,
    make_pushed_invoice,
    make_webhook_delivery,
    make_xero_event,
)

REAL_APPLY_ASYNC = Task.apply_async  # captured before the integrations conftest swaps in its recorder
KEY = "broker-down-webhook-key"
INV = "0f0d5a46-9c4a-4f7e-8a39-2d2c4a7b1e01"
DEAD_BROKER = "redis://127.0.0.1:1/0"  # nothing listens on port 1
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "xero" / "invoice_authorised.json"


@pytest.fixture
def broker_down(monkeypatch):
    monkeypatch.setattr(Task, "apply_async", REAL_APPLY_ASYNC)
    monkeypatch.setattr(current_app.conf, "broker_url", DEAD_BROKER)
    yield
    queue.fail_fast_connection_drop()


def test_delivery_is_stored_and_answered_fast_when_broker_is_down(
    client, db, settings, broker_down, caplog, django_capture_on_commit_callbacks
):
    settings.XERO_WEBHOOK_KEY = KEY
    organisation = make_organisation()
    make_connection(organisation=organisation)
    body, signature = make_webhook_delivery(events=[make_xero_event(tenant_id=TENANT_ID, resource_id=INV)], key=KEY)
    started = time.monotonic()
    with (
        caplog.at_level(logging.WARNING, logger="integrations.webhooks"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = client.post(
            "/integrations/xero/webhooks/", data=body, content_type="application/json", HTTP_X_XERO_SIGNATURE=signature
        )
    elapsed = time.monotonic() - started
    assert (response.status_code, response.content) == (200, b"")
    assert elapsed < 1.0, f"answered in {elapsed:.2f}s with the broker down"
    assert WebhookEvent.objects.get().state == "received"
    assert any(getattr(r, "event", "") == "xero.webhook.enqueue_failed" for r in caplog.records)


@responses.activate
def test_stored_event_is_processed_when_broker_is_back(
    client, db, settings, monkeypatch, enqueued, django_capture_on_commit_callbacks
):
    settings.XERO_WEBHOOK_KEY = KEY
    organisation = make_organisation()
    make_connection(organisation=organisation)
    invoice = make_pushed_invoice(organisation=organisation, xero_invoice_id=INV, number="INV-0001")
    body, signature = make_webhook_delivery(events=[make_xero_event(tenant_id=TENANT_ID, resource_id=INV)], key=KEY)
    # Broker down while the delivery arrives.
    recorder = Task.apply_async
    live_broker = current_app.conf.broker_url
    monkeypatch.setattr(Task, "apply_async", REAL_APPLY_ASYNC)
    monkeypatch.setattr(current_app.conf, "broker_url", DEAD_BROKER)
    with django_capture_on_commit_callbacks(execute=True):
        assert (
            client.post(
                "/integrations/xero/webhooks/",
                data=body,
                content_type="application/json",
                HTTP_X_XERO_SIGNATURE=signature,
            ).status_code
            == 200
        )
    queue.fail_fast_connection_drop()
    assert WebhookEvent.objects.get().state == "received"
    # Redis is back: the beat sweeper finds the waiting event and enqueues it; a worker runs the task.
    monkeypatch.setattr(current_app.conf, "broker_url", live_broker)
    monkeypatch.setattr(Task, "apply_async", recorder)
    monkeypatch.setattr(fetch, "xero_rate_limiter", lambda: None)
    WebhookEvent.objects.update(received_at=WebhookEvent.objects.get().received_at.replace(year=2025))
    assert sweep.webhook_inbox_sweep() == [organisation.pk]
    data = copy.deepcopy(json.loads(FIXTURE.read_text())["Invoices"][0])
    data.update(Status="PAID", AmountPaid=110.0, AmountDue=0.0)
    responses.get("https://api.xero.com/api.xro/2.0/Invoices", json={"Invoices": [data]})
    enqueued.run_all()
    assert WebhookEvent.objects.get().state == "processed"
    assert Invoice.objects.get(pk=invoice.pk).status == "PAID"
