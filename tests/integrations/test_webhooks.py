"""The webhook receiver's fixed order of checks, one test per rejection, and what a good delivery stores.

https://developer.xero.com/documentation/guides/webhooks/configuring-your-server/
"""

import json
import logging

import pytest
from django.test import Client
from django.urls import reverse

from integrations.models import WebhookEvent
from integrations.xero.signatures import webhook_signature
from tests.factories import TENANT_ID, make_connection, make_organisation, make_webhook_delivery, make_xero_event

KEY = "test-webhook-key-current"
PREVIOUS_KEY = "test-webhook-key-previous"
URL = "/integrations/xero/webhooks/"
PROCESS_TASK = "integrations.webhook_tasks.process_webhook_inbox"


@pytest.fixture(autouse=True)
def webhook_keys(settings):
    settings.XERO_WEBHOOK_KEY = KEY
    settings.XERO_WEBHOOK_KEY_PREVIOUS = ""
    settings.WEBHOOK_MAX_BODY_BYTES = 64 * 1024
    return settings


@pytest.fixture
def connected(db):
    organisation = make_organisation(name="Maple Florists")
    make_connection(organisation=organisation)
    return organisation


def post(client, body: bytes, signature: str | None):
    headers = {"HTTP_X_XERO_SIGNATURE": signature} if signature is not None else {}
    return client.post(URL, data=body, content_type="application/json", **headers)


def test_url_is_the_one_configured_in_xero_when_reversed():
    assert reverse("webhooks:xero_receive") == URL


def test_get_is_refused_with_405_when_method_is_not_post(client, db):
    response = client.get(URL)
    assert response.status_code == 405
    assert response.content == b""


def test_delivery_is_refused_with_401_and_empty_body_when_signature_missing(client, connected, caplog):
    body, _ = make_webhook_delivery(events=[make_xero_event(tenant_id=TENANT_ID)], key=KEY)
    with caplog.at_level(logging.WARNING, logger="integrations.webhooks"):
        response = post(client, body, None)
    assert response.status_code == 401
    assert response.content == b""
    assert WebhookEvent.objects.count() == 0
    assert any(getattr(r, "reason", "") == "signature_missing" for r in caplog.records)


def test_delivery_is_refused_with_401_when_signature_wrong(client, connected):
    body, _ = make_webhook_delivery(events=[make_xero_event(tenant_id=TENANT_ID)], key="some-other-key")
    response = post(client, body, webhook_signature(body=body, key="some-other-key"))
    assert response.status_code == 401
    assert response.content == b""
    assert WebhookEvent.objects.count() == 0


def test_delivery_is_refused_with_401_when_body_altered_after_signing(client, connected):
    body, signature = make_webhook_delivery(events=[make_xero_event(tenant_id=TENANT_ID)], key=KEY)
    tampered = body.replace(b'"UPDATE"', b'"CREATE"')
    assert tampered != body
    response = post(client, tampered, signature)
    assert response.status_code == 401
    assert WebhookEvent.objects.count() == 0


def test_intent_to_receive_is_answered_200_when_correctly_signed(client, db):
    body, signature = make_webhook_delivery(events=[], key=KEY)
    response = post(client, body, signature)
    assert response.status_code == 200
    assert response.content == b""
    assert WebhookEvent.objects.count() == 0


def test_intent_to_receive_is_answered_401_when_wrongly_signed(client, db):
    body, _ = make_webhook_delivery(events=[], key=KEY)
    response = post(client, body, webhook_signature(body=body, key="random-key-from-xero"))
    assert response.status_code == 401
    assert response.content == b""


def test_delivery_is_stored_and_answered_200_empty_without_cookies_when_valid(
    client, connected, enqueued, django_capture_on_commit_callbacks
):
    event = make_xero_event(tenant_id=TENANT_ID, resource_id="0f0d5a46-9c4a-4f7e-8a39-2d2c4a7b1e01")
    body, signature = make_webhook_delivery(events=[event], key=KEY)
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, body, signature)
    assert response.status_code == 200
    assert response.content == b""
    assert "Set-Cookie" not in response.headers
    assert not response.cookies
    stored = WebhookEvent.objects.get()
    assert (stored.organisation_id, stored.state, stored.category, stored.event_type, stored.resource_id) == (
        connected.pk,
        "received",
        "INVOICE",
        "UPDATE",
        "0f0d5a46-9c4a-4f7e-8a39-2d2c4a7b1e01",
    )
    assert stored.event_date.isoformat() == "2026-11-24T10:00:00.123000+00:00"
    # Processing happens after the answer, in a worker: only enqueued here, after the commit.
    assert [(e.name, e.kwargs) for e in enqueued] == [(PROCESS_TASK, {"organisation_id": connected.pk})]


def test_delivery_sets_no_cookie_when_sender_carries_a_session(client, connected, admin_a):
    client.force_login(admin_a)
    body, signature = make_webhook_delivery(events=[make_xero_event(tenant_id=TENANT_ID)], key=KEY)
    response = post(client, body, signature)
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers


def test_receiver_is_csrf_exempt_when_checks_enforced(connected):
    body, signature = make_webhook_delivery(events=[make_xero_event(tenant_id=TENANT_ID)], key=KEY)
    response = post(Client(enforce_csrf_checks=True), body, signature)
    assert response.status_code == 200


def test_delivery_is_accepted_when_signed_with_previous_key_during_rotation(client, connected, settings):
    settings.XERO_WEBHOOK_KEY_PREVIOUS = PREVIOUS_KEY
    body, signature = make_webhook_delivery(events=[make_xero_event(tenant_id=TENANT_ID)], key=PREVIOUS_KEY)
    assert post(client, body, signature).status_code == 200
    assert WebhookEvent.objects.count() == 1


def test_duplicate_delivery_is_stored_once_when_xero_sends_it_twice(client, connected):
    events = [
        make_xero_event(tenant_id=TENANT_ID, resource_id=f"00000000-0000-4000-8000-00000000000{i}") for i in range(3)
    ]
    body, signature = make_webhook_delivery(events=events, key=KEY)
    assert post(client, body, signature).status_code == 200
    assert post(client, body, signature).status_code == 200
    # The same events again in a new delivery (new entropy, new sequence), plus one new event.
    again, again_signature = make_webhook_delivery(
        events=[*events, make_xero_event(tenant_id=TENANT_ID, at="2026-11-24T10:00:05.000")], key=KEY, sequence=9
    )
    assert post(client, again, again_signature).status_code == 200
    assert WebhookEvent.objects.count() == 4


def test_same_resource_is_stored_per_event_time_when_it_changes_twice(client, connected):
    events = [
        make_xero_event(tenant_id=TENANT_ID, resource_id="00000000-0000-4000-8000-000000000001", at=at)
        for at in ("2026-11-24T10:00:00.000", "2026-11-24T10:00:01.000")
    ]
    body, signature = make_webhook_delivery(events=events, key=KEY)
    assert post(client, body, signature).status_code == 200
    assert WebhookEvent.objects.filter(state="received").count() == 2


def test_event_is_stored_as_ignored_when_tenant_unknown(
    client, connected, enqueued, django_capture_on_commit_callbacks
):
    body, signature = make_webhook_delivery(
        events=[make_xero_event(tenant_id="11111111-2222-4333-8444-555555555555")], key=KEY
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, body, signature)
    assert response.status_code == 200
    stored = WebhookEvent.objects.get()
    assert (stored.organisation_id, stored.state, stored.outcome) == (None, "ignored", "unknown_tenant")
    assert stored.processed_at is not None
    assert enqueued == []


def test_event_is_stored_as_ignored_when_category_unknown(client, connected):
    event = make_xero_event(tenant_id=TENANT_ID, category="CREDITNOTE", event_type="CREATE")
    event["data"] = {"Type": "ACCRECCREDIT", "Status": "DRAFT"}
    body, signature = make_webhook_delivery(events=[event], key=KEY)
    assert post(client, body, signature).status_code == 200
    assert WebhookEvent.objects.get().outcome == "unknown_category"


def test_event_is_stored_as_ignored_when_tenant_was_disconnected(client, db):
    organisation = make_organisation()
    make_connection(organisation=organisation, status="disconnected")
    body, signature = make_webhook_delivery(events=[make_xero_event(tenant_id=TENANT_ID)], key=KEY)
    assert post(client, body, signature).status_code == 200
    assert WebhookEvent.objects.get().outcome == "unknown_tenant"


@pytest.mark.parametrize(
    "body",
    [b"{not json", b'"just a string"', b'{"events": "nope"}', b"\xff\xfe"],
    ids=["syntax", "not-object", "events-not-list", "not-utf8"],
)
def test_delivery_is_answered_200_and_logged_when_validly_signed_but_not_a_payload(client, connected, body, caplog):
    # Xero retries anything but a 2xx for days: a signed body we cannot use is logged, never refused.
    with caplog.at_level(logging.WARNING, logger="integrations.webhooks"):
        response = post(client, body, webhook_signature(body=body, key=KEY))
    assert response.status_code == 200
    assert response.content == b""
    assert WebhookEvent.objects.count() == 0
    assert any(getattr(r, "event", "") == "xero.webhook.unusable" for r in caplog.records)


@pytest.mark.parametrize(
    "body",
    [
        b'{"events": [{"resourceId": "x"}]}',
        b'{"events": [{"resourceId": "x", "tenantId": "t", "eventCategory": "INVOICE", "eventType": "UPDATE",'
        b' "eventDateUtc": "yesterday"}]}',
    ],
    ids=["missing-fields", "bad-date"],
)
def test_event_is_stored_as_ignored_with_the_reason_when_validly_signed_but_unusable(client, connected, body):
    response = post(client, body, webhook_signature(body=body, key=KEY))
    assert response.status_code == 200
    event = WebhookEvent.objects.get()
    assert (event.state, event.outcome) == ("ignored", "unusable")
    assert ("lacks tenantId" in event.last_error) or ("eventDateUtc" in event.last_error)


def test_delivery_is_refused_with_413_when_body_larger_than_cap(client, connected, settings, caplog):
    settings.WEBHOOK_MAX_BODY_BYTES = 1024
    events = [make_xero_event(tenant_id=TENANT_ID) for _ in range(10)]
    body, signature = make_webhook_delivery(events=events, key=KEY)
    assert len(body) > 1024
    with caplog.at_level(logging.WARNING, logger="integrations.webhooks"):
        response = post(client, body, signature)
    assert response.status_code == 413
    assert WebhookEvent.objects.count() == 0
    assert any(getattr(r, "reason", "") == "body_too_large" for r in caplog.records)


def test_size_is_checked_before_signature_when_both_wrong(client, db, settings):
    settings.WEBHOOK_MAX_BODY_BYTES = 10
    assert post(client, b'{"events": []}' * 3, "bogus").status_code == 413


def test_signature_is_checked_before_json_when_both_wrong(client, db):
    assert post(client, b"{not json", "bogus").status_code == 401


def test_key_and_signature_never_logged_when_delivery_rejected_or_accepted(client, connected, caplog):
    body, signature = make_webhook_delivery(events=[make_xero_event(tenant_id=TENANT_ID)], key=KEY)
    with caplog.at_level(logging.DEBUG):
        post(client, body, signature)
        post(client, body, "wrong")
    text = " ".join(json.dumps(r.__dict__, default=str) for r in caplog.records)
    assert KEY not in text
    assert signature not in text


def test_many_events_are_stored_in_one_insert_when_delivery_is_large(client, connected, django_assert_max_num_queries):
    events = [make_xero_event(tenant_id=TENANT_ID) for _ in range(50)]
    body, signature = make_webhook_delivery(events=events, key=KEY)
    # On PostgreSQL one statement resolves the tenants and inserts every event (test_paths_store_the_same_rows).
    with django_assert_max_num_queries(1):
        assert post(client, body, signature).status_code == 200
    assert WebhookEvent.objects.count() == 50


def test_postgresql_and_portable_paths_store_the_same_rows_when_given_the_same_deliveries(db, settings):
    """The receiver's one-statement PostgreSQL path and the ORM path used on SQLite decide alike."""
    from integrations.webhooks import parse
    from integrations.webhooks import record as inbox

    held = make_organisation(name="Held")
    make_connection(organisation=held)
    parted = make_organisation(name="Parted")
    make_connection(
        organisation=parted,
        tenant_id="22222222-3333-4444-8555-666666666666",
        status="disconnected",
        connection_id="c0ffee00-0000-4000-8000-000000000002",
    )
    events = [
        make_xero_event(tenant_id=TENANT_ID, at="2026-11-24T10:00:00.000"),
        make_xero_event(tenant_id=TENANT_ID, category="CONTACT", at="2026-11-24T10:00:01.000"),
        make_xero_event(tenant_id=TENANT_ID, category="CREDITNOTE", at="2026-11-24T10:00:02.000"),
        make_xero_event(tenant_id="22222222-3333-4444-8555-666666666666", at="2026-11-24T10:00:03.000"),
        make_xero_event(tenant_id="11111111-2222-4333-8444-555555555555", at="2026-11-24T10:00:04.000"),
    ]
    events[0]["tenantType"] = "ORGANISATION"
    events.append({**events[0], "tenantType": "PRACTICE", "eventDateUtc": "2026-11-24T10:00:05.000"})
    body, _ = make_webhook_delivery(events=events, key=KEY)
    parsed = parse.webhook_delivery_parse(body=body)
    columns = (
        "organisation_id",
        "tenant_id",
        "tenant_type",
        "category",
        "event_type",
        "resource_id",
        "event_date",
        "sequence",
        "state",
        "outcome",
        "attempts",
        "last_error",
    )

    def stored(record) -> tuple[list, list]:
        WebhookEvent.objects.all().delete()
        first = record(events=parsed, now=inbox.timezone.now())
        again = record(events=parsed, now=inbox.timezone.now())  # the same delivery re-sent
        rows = list(WebhookEvent.objects.order_by("event_date").values_list(*columns))
        handled = [e.processed_at is not None for e in WebhookEvent.objects.order_by("event_date")]
        return rows + handled, sorted(first, key=str), again

    rows_pg, first_pg, again_pg = stored(inbox._record_postgresql)
    rows_orm, first_orm, _ = stored(inbox._record_orm)
    assert rows_pg == rows_orm
    assert [row[9] for row in rows_pg[:6]] == [
        "",
        "",
        "unknown_category",
        "unknown_tenant",
        "unknown_tenant",
        "unknown_category",
    ]
    assert first_pg == first_orm
    assert again_pg == []  # RETURNING names only rows stored now: a re-sent delivery enqueues nothing
