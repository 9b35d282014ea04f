"""Correctly signed webhook deliveries that no real Xero sends (issue 13, finding 6): each is answered 200 so Xero
does not retry it forever, never a 500; what can be stored is stored as ignored with the reason, on PostgreSQL's
one-statement path and on the portable ORM path alike."""

import json
import logging

import pytest
from django.db import connection as db_connection

from integrations.models import WebhookEvent
from integrations.webhooks import record
from integrations.xero.signatures import webhook_signature
from tests.factories import TENANT_ID, make_connection, make_organisation, make_xero_event

KEY = "test-webhook-key-current"
URL = "/integrations/xero/webhooks/"
GOOD_RESOURCE = "00000000-0000-4000-8000-000000000001"


@pytest.fixture(autouse=True)
def webhook_key(settings):
    settings.XERO_WEBHOOK_KEY = KEY
    settings.XERO_WEBHOOK_KEY_PREVIOUS = ""


@pytest.fixture
def connected(db):
    organisation = make_organisation(name="Maple Florists")
    make_connection(organisation=organisation)
    return organisation


@pytest.fixture(params=["postgresql", "orm"])
def record_path(request, monkeypatch):
    """Both recording paths: PostgreSQL's single statement, and the ORM path SQLite uses."""
    if request.param == "orm":
        monkeypatch.setattr(record, "_record_postgresql", record._record_orm)
    return request.param


def send(client, body: bytes):
    return client.post(
        URL, data=body, content_type="application/json", HTTP_X_XERO_SIGNATURE=webhook_signature(body=body, key=KEY)
    )


def delivery(*events, **extra) -> bytes:
    return json.dumps({"events": list(events), "firstEventSequence": 1, "lastEventSequence": 1, **extra}).encode()


def test_deeply_nested_json_is_answered_200_and_logged_when_validly_signed(client, connected, caplog):
    body = b'{"events": [], "entropy": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    with caplog.at_level(logging.WARNING, logger="integrations.webhooks"):
        response = send(client, body)
    assert response.status_code == 200 and response.content == b""
    assert WebhookEvent.objects.count() == 0
    assert any(getattr(r, "reason", "") == "JSON nested too deeply" for r in caplog.records)


def test_deeply_nested_event_is_answered_200_when_nesting_sits_inside_the_events_list(client, connected):
    body = b'{"events": [' + b"[" * 5000 + b"]" * 5000 + b"]}"
    assert send(client, body).status_code == 200


def test_huge_first_event_sequence_is_dropped_and_the_event_kept_when_it_overflows_a_bigint(
    client, connected, record_path
):
    event = make_xero_event(tenant_id=TENANT_ID, resource_id=GOOD_RESOURCE)
    response = send(client, delivery(event, firstEventSequence=10**30))
    assert response.status_code == 200
    stored = WebhookEvent.objects.get()
    assert (stored.state, stored.sequence, stored.resource_id) == ("received", None, GOOD_RESOURCE)


def test_lone_surrogate_in_tenant_id_is_stored_as_ignored_with_the_reason_when_signed(client, connected, record_path):
    bad = make_xero_event(tenant_id=TENANT_ID, resource_id=GOOD_RESOURCE)
    bad["tenantId"] = "70784a63-\ud800-46a9"
    good = make_xero_event(tenant_id=TENANT_ID, resource_id="00000000-0000-4000-8000-000000000002")
    body = json.dumps({"events": [bad, good]}).encode()  # json.dumps writes the surrogate as \\ud800
    assert b"\\ud800" in body
    assert send(client, body).status_code == 200
    unusable = WebhookEvent.objects.get(outcome="unusable")
    assert unusable.state == "ignored" and "tenantId" in unusable.last_error
    assert "\ufffd" in unusable.tenant_id
    assert WebhookEvent.objects.get(outcome="").state == "received"  # the good event of the delivery goes on


def test_nul_in_resource_id_is_stored_as_ignored_with_the_reason_when_signed(client, connected, record_path):
    assert db_connection.vendor == "postgresql"  # where NUL in text is refused
    event = make_xero_event(tenant_id=TENANT_ID, resource_id="00000000-0000-4000-8000-00000000\u00000001")
    assert send(client, delivery(event)).status_code == 200
    stored = WebhookEvent.objects.get()
    assert (stored.state, stored.outcome) == ("ignored", "unusable")
    assert "resourceId" in stored.last_error and "\x00" not in stored.resource_id


@pytest.mark.parametrize(
    "change",
    [
        {"eventDateUtc": "0001-01-01T00:00:00+14:00"},
        {"eventDateUtc": "9999-12-31T23:59:59-14:00"},
        {"eventDateUtc": "2026-11-24T10:00:00\u0000"},
        {"eventCategory": "INVOICE" * 10},
        {"tenantType": ["ORGANISATION"]},
        {"eventType": 5},
        {"resourceId": ""},
    ],
    ids=["year-1", "year-9999", "nul-date", "long-category", "list-type", "number-type", "empty-resource"],
)
def test_event_outside_what_xero_sends_is_stored_as_ignored_when_signed(client, connected, record_path, change):
    event = {**make_xero_event(tenant_id=TENANT_ID, resource_id=GOOD_RESOURCE), **change}
    assert send(client, delivery(event)).status_code == 200
    stored = WebhookEvent.objects.get()
    assert (stored.state, stored.outcome) == ("ignored", "unusable") and stored.last_error


def test_non_object_events_are_stored_as_ignored_when_signed(client, connected, record_path):
    assert send(client, delivery(5, None, "x")).status_code == 200
    assert set(WebhookEvent.objects.values_list("outcome", flat=True)) == {"unusable"}
