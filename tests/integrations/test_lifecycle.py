"""After connecting: the Manage Integrations card, disconnect (retryable steps), Xero-side disconnects, keep-alive,
eligibility for new batches."""

import datetime as dt
from urllib.parse import parse_qs

import pytest
import requests
import responses
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from integrations import selectors, services, tasks
from integrations.models import IntegrationAuditEvent, OutboundOperation, XeroConnection
from tests.factories import CONNECTION_ID, make_connection, make_organisation, token_response
from tests.integrations.conftest import xero_json

pytestmark = pytest.mark.django_db

CONNECTIONS_URL = "https://api.xero.com/connections"
REVOCATION_URL = "https://identity.xero.com/connect/revocation"
TOKEN_URL = "https://identity.xero.com/connect/token"


def actions(org) -> list[str]:
    return list(IntegrationAuditEvent.objects.filter(organisation=org).order_by("pk").values_list("action", flat=True))


# ---------------------------------------------------------------- the card


def test_manage_page_shows_the_connect_button_to_admins_when_not_connected(login_as, admin_a):
    body = login_as(admin_a).get(reverse("integrations:manage")).content.decode()
    assert "Not connected" in body and "Connect to Xero" in body
    assert 'class="xero-button"' in body and "<svg" in body
    assert "style=" not in body.split('id="xero-card"')[1]  # CSP: no inline styles


def test_manage_page_shows_state_but_no_buttons_when_user_is_accountant(login_as, accountant_a, org_a):
    make_connection(organisation=org_a, status="needs_reconnect")
    body = login_as(accountant_a).get(reverse("integrations:manage")).content.decode()
    assert "Needs reconnect" in body and "Connected to <strong>Maple Florists Ltd</strong>" in body
    assert "xero-button" not in body and reverse("integrations:xero_disconnect") not in body
    assert "Only an organisation admin can" in body


def test_manage_page_shows_connected_since_and_by_when_active(login_as, admin_a, org_a):
    connection = make_connection(organisation=org_a)
    XeroConnection.objects.filter(pk=connection.pk).update(connected_by=admin_a)
    body = login_as(admin_a).get(reverse("integrations:manage")).content.decode()
    assert "Connected to <strong>Maple Florists Ltd</strong> since" in body and "by admin@a.test" in body
    assert "Disconnect" in body and "Reconnect" not in body
    assert connection.access_token not in body and connection.refresh_token not in body


def test_disconnect_is_403_for_accountants_and_changes_nothing(login_as, accountant_a, org_a):
    make_connection(organisation=org_a)
    client = login_as(accountant_a)
    assert client.get(reverse("integrations:xero_disconnect")).status_code == 403
    assert client.post(reverse("integrations:xero_disconnect")).status_code == 403
    assert XeroConnection.objects.get(organisation=org_a).status == "active"


# ---------------------------------------------------------------- disconnect


@responses.activate
def test_disconnect_deletes_the_connection_then_revokes_then_clears_tokens_when_the_admin_confirms(
    login_as, admin_a, org_a
):
    connection = make_connection(organisation=org_a)
    refresh_token = connection.refresh_token
    client = login_as(admin_a)
    confirm = client.get(reverse("integrations:xero_disconnect")).content.decode()
    assert "Disconnect Xero?" in confirm and "Maple Florists Ltd" in confirm
    responses.delete(f"{CONNECTIONS_URL}/{CONNECTION_ID}", status=204)
    responses.post(REVOCATION_URL, status=200)
    response = client.post(reverse("integrations:xero_disconnect"), follow=True)
    assert "Disconnected from Maple Florists Ltd." in response.content.decode()
    assert [c.request.method + " " + c.request.url for c in responses.calls] == [
        f"DELETE {CONNECTIONS_URL}/{CONNECTION_ID}",
        f"POST {REVOCATION_URL}",
    ]
    assert parse_qs(responses.calls[1].request.body) == {"token": [refresh_token], "token_type_hint": ["refresh_token"]}
    connection.refresh_from_db()
    assert (connection.status, connection.disconnect_step) == ("disconnected", "")
    assert connection.access_token == "" and connection.refresh_token == ""
    assert connection.disconnected_by == admin_a
    assert actions(org_a) == ["disconnect_requested", "xero_connection_deleted", "token_revoked", "disconnected"]
    assert selectors.xero_sync_eligibility(org_a) == "while_disconnected"


@responses.activate
def test_disconnect_keeps_the_pending_step_and_finishes_later_when_xero_is_down(
    login_as, admin_a, org_a, enqueued, django_capture_on_commit_callbacks
):
    connection = make_connection(organisation=org_a)
    responses.delete(f"{CONNECTIONS_URL}/{CONNECTION_ID}", status=503)
    with django_capture_on_commit_callbacks(execute=True):
        response = login_as(admin_a).post(reverse("integrations:xero_disconnect"), follow=True)
    assert "finishes removing the connection in Xero shortly" in response.content.decode()
    connection.refresh_from_db()
    assert (connection.status, connection.disconnect_step) == ("disconnected", "delete_connection")
    assert connection.refresh_token != ""  # still needed to finish
    assert selectors.xero_sync_eligibility(org_a) == "while_disconnected"
    # The DELETE is an outbound operation: its failed attempt is recorded, and the engine retries it after its backoff.
    delete = OutboundOperation.objects.get(organisation=org_a, kind="disconnect_delete_connection")
    assert (delete.state, delete.subject_id) == ("pending", connection.pk)
    assert list(delete.outbound_attempts.values_list("action", "outcome", "http_status")) == [("send", "unknown", 503)]
    [(name, args, countdown)] = [(e.name, e.args, e.countdown) for e in enqueued]
    assert (name, args) == ("integrations.outbound.tasks.run_operation", (delete.pk,))
    assert 0 < countdown <= settings.XERO_RETRY_BASE_SECONDS
    # Xero is back: when the retry is due, it finishes every remaining step.
    responses.replace(responses.DELETE, f"{CONNECTIONS_URL}/{CONNECTION_ID}", status=404)  # already gone: fine
    responses.post(REVOCATION_URL, status=200)
    OutboundOperation.objects.filter(pk=delete.pk).update(next_attempt_at=timezone.now())  # the backoff has passed
    with django_capture_on_commit_callbacks(execute=True):
        enqueued.run_all(limit=1)
    with django_capture_on_commit_callbacks(execute=True):
        enqueued.run_all()  # the revocation, queued when the DELETE was confirmed
    connection.refresh_from_db()
    assert (connection.disconnect_step, connection.refresh_token) == ("", "")
    assert set(OutboundOperation.objects.filter(organisation=org_a).values_list("kind", "state")) == {
        ("disconnect_delete_connection", "done"),
        ("disconnect_revoke_token", "done"),
    }
    assert actions(org_a)[-3:] == ["xero_connection_deleted", "token_revoked", "disconnected"]
    assert IntegrationAuditEvent.objects.get(action="xero_connection_deleted").detail["already_gone"] is True


@responses.activate
def test_disconnect_is_safe_to_run_twice_when_a_retry_overlaps(login_as, admin_a, org_a):
    connection = make_connection(organisation=org_a)
    responses.delete(f"{CONNECTIONS_URL}/{CONNECTION_ID}", status=204)
    responses.post(REVOCATION_URL, status=200)
    services.xero_connection_disconnect(organisation=org_a, actor=admin_a)
    again = services.xero_connection_disconnect(organisation=org_a, actor=admin_a)
    assert not again.ok
    services.xero_connection_disconnect_continue(connection_id=connection.pk)
    assert len(responses.calls) == 2


@responses.activate
def test_disconnect_skips_revocation_when_the_same_xero_user_connects_another_organisation(admin_a, org_a):
    make_connection(organisation=org_a)
    make_connection(
        organisation=make_organisation(name="Sister Org"),
        tenant_id="e0da6937-de07-4a14-adee-37abfac298ce",
        connection_id="32587c85-a9b3-4306-ac30-b416e8f2c841",
    )  # same Xero user (factory default)
    responses.delete(f"{CONNECTIONS_URL}/{CONNECTION_ID}", status=204)
    services.xero_connection_disconnect(organisation=org_a, actor=admin_a)
    assert [c.request.method for c in responses.calls] == ["DELETE"]  # revoking would cut the sister org off
    assert "token_revoke_skipped" in actions(org_a)
    assert XeroConnection.objects.get(organisation=org_a).refresh_token == ""


@responses.activate
def test_disconnect_still_clears_everything_when_the_grant_is_already_dead(admin_a, org_a):
    make_connection(organisation=org_a, expires_in=0)
    responses.post(TOKEN_URL, json=xero_json("invalid_grant.json"), status=400)
    result = services.xero_connection_disconnect(organisation=org_a, actor=admin_a)
    assert result.ok
    connection = XeroConnection.objects.get(organisation=org_a)
    assert (connection.status, connection.disconnect_step, connection.refresh_token) == ("disconnected", "", "")


@responses.activate
def test_reconnect_starts_only_after_a_pending_disconnect_finished(login_as, admin_a, org_a):
    make_connection(organisation=org_a)
    responses.delete(f"{CONNECTIONS_URL}/{CONNECTION_ID}", body=requests.ConnectionError("down"))
    services.xero_connection_disconnect(organisation=org_a, actor=admin_a)
    client = login_as(admin_a)
    response = client.post(reverse("integrations:xero_connect"), follow=True)
    assert "still finishing the last disconnect" in response.content.decode()
    responses.replace(responses.DELETE, f"{CONNECTIONS_URL}/{CONNECTION_ID}", status=204)
    responses.post(REVOCATION_URL, status=200)
    assert client.post(reverse("integrations:xero_connect"))["Location"].startswith("https://login.xero.com/")


# ---------------------------------------------------------------- Xero-side disconnects


@responses.activate
def test_a_tenant_missing_from_connections_is_shown_emailed_and_bannered_when_checked(
    org_a, admin_a, accountant_a, enqueued, mailoutbox, login_as, django_capture_on_commit_callbacks
):
    connection = make_connection(organisation=org_a)
    responses.get(CONNECTIONS_URL, json=[])  # an empty list on a valid token: the connection is gone
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.xero_connection_verify_task.run(connection.pk) == "revoked_in_xero"
    connection.refresh_from_db()
    assert connection.status == "revoked_in_xero" and connection.refresh_token == ""
    enqueued.run_all()
    assert len(mailoutbox) == 1 and mailoutbox[0].to == ["admin@a.test"]
    assert "Xero was disconnected" in mailoutbox[0].subject
    page = login_as(accountant_a).get(reverse("integrations:manage")).content.decode()
    assert "Disconnected in Xero" in page and "was removed in Xero" in page
    assert "Xero was disconnected from Maple Florists Ltd in Xero" in page  # the banner
    assert selectors.xero_sync_eligibility(org_a) == "while_disconnected"


@responses.activate
def test_a_403_from_the_api_leads_to_the_check_that_marks_the_disconnect(org_a, enqueued):
    from integrations.xero.client import XeroClient
    from integrations.xero.exceptions import XeroTenantDisconnected

    connection = make_connection(organisation=org_a)
    responses.get(
        "https://api.xero.com/api.xro/2.0/Invoices", json=xero_json("authentication_unsuccessful_403.json"), status=403
    )
    responses.get(CONNECTIONS_URL, json=[{**xero_json("connections_several.json")[1]}])  # ours is not there
    with pytest.raises(XeroTenantDisconnected):
        XeroClient(connection.pk).get("/Invoices")
    enqueued.run_all()
    connection.refresh_from_db()
    assert connection.status == "revoked_in_xero"
    assert IntegrationAuditEvent.objects.get(action="revoked_in_xero").detail["tenants_still_connected_for_user"] == 1


@responses.activate
def test_the_check_keeps_the_connection_when_the_tenant_is_still_there(org_a):
    connection = make_connection(organisation=org_a)
    renamed = {**xero_json("connections_one.json")[0], "tenantName": "Maple & Co"}
    responses.get(CONNECTIONS_URL, json=[renamed])
    assert services.xero_connection_verify(connection_id=connection.pk) == "connected"
    connection.refresh_from_db()
    assert connection.status == "active" and connection.tenant_name == "Maple & Co"
    assert connection.last_verified_at is not None


# ---------------------------------------------------------------- keep-alive


@responses.activate
def test_keepalive_refreshes_an_idle_refresh_token_and_checks_the_tenant(org_a, enqueued):
    idle = make_connection(organisation=org_a, refresh_issued_days_ago=10)
    recent = make_connection(
        organisation=make_organisation(name="Busy Org"),
        tenant_id="e0da6937-de07-4a14-adee-37abfac298ce",
        connection_id="32587c85-a9b3-4306-ac30-b416e8f2c841",
    )
    make_connection(
        organisation=make_organisation(name="Gone Org"), status="disconnected", tenant_id="x", connection_id="y"
    )
    assert tasks.xero_keepalive_fanout_task.run() == 2
    assert sorted(e.args[0] for e in enqueued) == sorted([idle.pk, recent.pk])
    responses.post(TOKEN_URL, json=token_response(refresh_token="rt-kept-alive"))
    responses.get(CONNECTIONS_URL, json=xero_json("connections_several.json"))
    assert enqueued.run_all() == ["connected", "connected"]
    idle.refresh_from_db()
    recent_before = recent.refresh_token
    recent.refresh_from_db()
    assert idle.refresh_token == "rt-kept-alive"
    assert idle.refresh_token_issued_at > timezone.now() - dt.timedelta(minutes=1)
    assert recent.refresh_token == recent_before  # refreshed recently enough: left alone
    assert len([c for c in responses.calls if c.request.url == TOKEN_URL]) == 1
    assert "keepalive_refresh" in actions(org_a)


@responses.activate
def test_keepalive_turns_a_dead_grant_into_needs_reconnect_without_retrying(org_a, enqueued):
    connection = make_connection(organisation=org_a, refresh_issued_days_ago=59)
    responses.post(TOKEN_URL, json=xero_json("invalid_grant.json"), status=400)
    assert services.xero_connection_keepalive(connection_id=connection.pk) == "needs_reconnect"
    assert services.xero_connection_keepalive(connection_id=connection.pk) == "skipped"
    assert len(responses.calls) == 1


# ---------------------------------------------------------------- eligibility


def test_sync_eligibility_follows_the_connection_state(org_a):
    assert selectors.xero_sync_eligibility(org_a) == "before_connection"
    connection = make_connection(organisation=org_a)
    assert selectors.xero_sync_eligibility(org_a) == "eligible"
    for status, expected in (
        ("needs_reconnect", "eligible"),
        ("revoked_in_xero", "while_disconnected"),
        ("disconnected", "while_disconnected"),
        ("not_connected", "before_connection"),
    ):
        XeroConnection.objects.filter(pk=connection.pk).update(status=status)
        assert selectors.xero_sync_eligibility(org_a) == expected, status
    assert selectors.xero_connection_for(org_a).pk == connection.pk
    assert selectors.xero_connection_for(make_organisation(name="Never")) is None
