"""The token store: refresh ahead of expiry under a row lock, rotation, invalid_grant, lost answers, the race."""

import datetime as dt
import threading
import time
from urllib.parse import parse_qs

import pytest
import requests
import responses
from django.db import connection as db_connection
from django.urls import reverse
from django.utils import timezone

from integrations.models import IntegrationAuditEvent, XeroConnection
from integrations.xero import tokens
from integrations.xero.exceptions import XeroNeedsReconnect, XeroNotConnected, XeroTimeout
from tests.factories import make_connection, token_response
from tests.integrations.conftest import xero_json

TOKEN_URL = "https://identity.xero.com/connect/token"


def refresh_calls() -> list:
    return [c for c in responses.calls if c.request.url == TOKEN_URL]


@pytest.mark.django_db
@responses.activate
def test_stored_access_token_is_used_without_refresh_when_it_is_fresh(org_a):
    connection = make_connection(organisation=org_a, expires_in=1800)
    grant = tokens.access_token_get(connection_id=connection.pk)
    assert grant.access_token == connection.access_token and grant.tenant_id == connection.tenant_id
    assert refresh_calls() == []


@pytest.mark.django_db
@responses.activate
def test_refresh_saves_the_rotated_refresh_token_when_the_access_token_is_about_to_expire(org_a):
    connection = make_connection(organisation=org_a, expires_in=120)  # inside the 5-minute margin
    old_refresh = connection.refresh_token
    body = token_response(refresh_token="rt-rotated")
    responses.post(TOKEN_URL, json=body)
    grant = tokens.access_token_get(connection_id=connection.pk)
    assert grant.access_token == body["access_token"]
    form = parse_qs(refresh_calls()[0].request.body)
    assert form == {"grant_type": ["refresh_token"], "refresh_token": [old_refresh]}
    connection.refresh_from_db()
    assert connection.refresh_token == "rt-rotated"
    assert connection.access_token_expires_at > timezone.now() + dt.timedelta(minutes=29)
    assert connection.last_refreshed_at is not None


@pytest.mark.django_db
@responses.activate
def test_invalid_grant_marks_needs_reconnect_emails_admins_and_shows_a_banner(
    org_a, admin_a, accountant_a, enqueued, mailoutbox, login_as, django_capture_on_commit_callbacks
):
    connection = make_connection(organisation=org_a, expires_in=0)
    responses.post(TOKEN_URL, json=xero_json("invalid_grant.json"), status=400)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(XeroNeedsReconnect):
        tokens.access_token_get(connection_id=connection.pk)
    connection.refresh_from_db()
    assert connection.status == "needs_reconnect"
    assert connection.refresh_token == "" and connection.access_token == ""  # a dead grant is not kept
    assert IntegrationAuditEvent.objects.filter(organisation=org_a, action="needs_reconnect").exists()
    assert enqueued.names() == ["integrations.xero_admins_notify"]  # queued on commit, by id
    enqueued.run_all()
    assert [m.to for m in mailoutbox] == [["admin@a.test"]]
    assert "reconnect Xero" in mailoutbox[0].subject and "/integrations/" in mailoutbox[0].body
    page = login_as(accountant_a).get(reverse("invoices:dashboard")).content.decode()
    assert "Xero needs you to reconnect" in page


@pytest.mark.django_db(transaction=True)
@responses.activate
def test_invalid_grant_is_not_retried_when_the_connection_is_used_again(org_a, admin_a, enqueued, mailoutbox):
    connection = make_connection(organisation=org_a, expires_in=0)
    responses.post(TOKEN_URL, json=xero_json("invalid_grant.json"), status=400)
    with pytest.raises(XeroNeedsReconnect):
        tokens.access_token_get(connection_id=connection.pk)
    for _ in range(3):
        with pytest.raises(XeroNeedsReconnect):
            tokens.access_token_get(connection_id=connection.pk)
    assert len(refresh_calls()) == 1
    assert enqueued.names() == ["integrations.xero_admins_notify"]  # queued once, after the commit
    enqueued.run_all()
    assert len(mailoutbox) == 1


@pytest.mark.django_db
@responses.activate
def test_a_lost_refresh_answer_keeps_the_old_refresh_token_for_the_next_try(org_a):
    connection = make_connection(organisation=org_a, expires_in=0)
    old_refresh = connection.refresh_token
    responses.post(TOKEN_URL, body=requests.ConnectionError("Connection aborted: RemoteDisconnected"))
    with pytest.raises(XeroTimeout) as caught:
        tokens.access_token_get(connection_id=connection.pk)
    assert caught.value.outcome_unknown
    connection.refresh_from_db()
    assert connection.status == "active" and connection.refresh_token == old_refresh
    assert "Token refresh failed" in connection.last_error
    # Xero accepts the same old refresh token again inside its 30-minute grace window.
    responses.replace(responses.POST, TOKEN_URL, json=token_response(refresh_token="rt-newest"))
    tokens.access_token_get(connection_id=connection.pk)
    connection.refresh_from_db()
    assert connection.refresh_token == "rt-newest" and connection.last_error == ""
    assert parse_qs(refresh_calls()[-1].request.body)["refresh_token"] == [old_refresh]


@pytest.mark.django_db
def test_access_token_is_refused_when_the_connection_is_not_active(org_a):
    for status, error in (
        ("needs_reconnect", XeroNeedsReconnect),
        ("disconnected", XeroNotConnected),
        ("revoked_in_xero", XeroNotConnected),
    ):
        XeroConnection.objects.filter(organisation=org_a).delete()
        connection = make_connection(organisation=org_a, status=status)
        with pytest.raises(error):
            tokens.access_token_get(connection_id=connection.pk)


@pytest.mark.django_db
@responses.activate
def test_a_rejected_token_is_not_refreshed_again_when_another_worker_already_replaced_it(org_a):
    connection = make_connection(organisation=org_a)
    grant = tokens.access_token_get(connection_id=connection.pk)
    assert tokens.access_token_get(connection_id=connection.pk, rejected_token="some-older-token") == grant
    assert refresh_calls() == []
    responses.post(TOKEN_URL, json=token_response())
    assert tokens.access_token_get(connection_id=connection.pk, rejected_token=grant.access_token) != grant
    assert len(refresh_calls()) == 1


@pytest.mark.django_db(transaction=True)
def test_two_workers_needing_a_refresh_at_once_make_exactly_one_refresh_and_both_use_the_new_token(org_a):
    connection = make_connection(organisation=org_a, expires_in=60)
    new_body = token_response(refresh_token="rt-after-race")
    seen_refresh_tokens = []
    inside = threading.Event()

    def slow_token_endpoint(request):
        seen_refresh_tokens.append(parse_qs(request.body)["refresh_token"][0])
        inside.set()
        time.sleep(0.5)  # the other worker arrives meanwhile and waits on the row lock
        import json

        return 200, {}, json.dumps(new_body)

    results, errors = {}, []

    def worker(name):
        try:
            results[name] = tokens.access_token_get(connection_id=connection.pk).access_token
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            db_connection.close()

    with responses.RequestsMock() as rsps:
        rsps.add_callback(responses.POST, TOKEN_URL, callback=slow_token_endpoint)
        first = threading.Thread(target=worker, args=("first",))
        second = threading.Thread(target=worker, args=("second",))
        first.start()
        assert inside.wait(5)
        second.start()
        first.join(10)
        second.join(10)

    assert errors == []
    assert len(seen_refresh_tokens) == 1
    assert results == {"first": new_body["access_token"], "second": new_body["access_token"]}
    connection.refresh_from_db()
    assert connection.refresh_token == "rt-after-race"
