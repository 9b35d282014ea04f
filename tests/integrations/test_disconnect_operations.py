"""The disconnect's Xero calls are outbound operations (integrations/connections/disconnect.py): attempts recorded,
the engine's bounded retries ending in needs_attention shown to support with a retry, a lost answer looked up, and a
refusal given up so the tokens are still erased. Xero is mocked with `responses`."""

import datetime as dt

import pytest
import requests
import responses
from django.urls import reverse
from django.utils import timezone

from integrations import services, tasks
from integrations.models import IntegrationAuditEvent, OutboundOperation, XeroConnection
from integrations.outbound import engine
from tests.factories import CONNECTION_ID, make_connection

pytestmark = pytest.mark.django_db

CONNECTIONS_URL = "https://api.xero.com/connections"
DELETE_URL = f"{CONNECTIONS_URL}/{CONNECTION_ID}"
REVOCATION_URL = "https://identity.xero.com/connect/revocation"


def operation(org, kind="disconnect_delete_connection") -> OutboundOperation:
    return OutboundOperation.objects.get(organisation=org, kind=kind)


def actions(org) -> list[tuple[str, str]]:
    events = IntegrationAuditEvent.objects.filter(organisation=org).order_by("pk")
    return list(events.values_list("action", "outcome"))


@pytest.fixture
def one_try(settings):
    settings.OUTBOUND_MAX_SENDS = 1  # the first failure already stops in needs_attention


@responses.activate
def test_support_sees_a_disconnect_step_needing_attention_and_its_retry_finishes_it_when_xero_is_back(
    one_try, login_as, support_user, admin_a, org_a
):
    connection = make_connection(organisation=org_a)
    responses.delete(DELETE_URL, status=503)
    services.xero_connection_disconnect(organisation=org_a, actor=admin_a)
    delete = operation(org_a)
    assert delete.state == "needs_attention" and "did not answer" in delete.last_error
    client = login_as(support_user)
    page = client.get(reverse("integrations:support_organisation", args=[org_a.pk])).content.decode()
    assert "Disconnect in Xero" in page and "Needs attention" in page and "Retry disconnect" in page
    assert "send: outcome unknown (no answer) (503)" in page
    connection.refresh_from_db()
    assert connection.disconnect_step == "delete_connection" and "needs attention" in connection.last_error

    responses.replace(responses.DELETE, DELETE_URL, status=204)
    responses.post(REVOCATION_URL, status=200)
    client.post(reverse("integrations:support_xero_disconnect", args=[org_a.pk]))
    delete.refresh_from_db()
    assert delete.state == "done" and delete.outbound_attempts.count() == 2
    connection.refresh_from_db()
    assert (connection.disconnect_step, connection.refresh_token, connection.last_error) == ("", "", "")
    assert actions(org_a) == [
        ("disconnect_requested", "success"),
        ("disconnect_step_delete_connection", "failure"),
        ("xero_connection_deleted", "success"),
        ("token_revoked", "success"),
        ("disconnected", "success"),
    ]
    assert IntegrationAuditEvent.objects.get(action="token_revoked").actor == support_user


@responses.activate
def test_housekeeping_leaves_a_step_needing_attention_alone_when_it_runs_in_the_background(one_try, admin_a, org_a):
    make_connection(organisation=org_a)
    delete = responses.delete(DELETE_URL, body=requests.ConnectionError("Xero is unreachable"))
    services.xero_connection_disconnect(organisation=org_a, actor=admin_a)
    assert operation(org_a).state == "needs_attention"
    assert tasks.xero_housekeeping_task.run()["disconnects"] == 1
    assert delete.call_count == 1  # bounded: only a person starts it again
    assert operation(org_a).state == "needs_attention"


@responses.activate
def test_a_lost_delete_is_looked_up_in_connections_when_the_key_window_has_passed(admin_a, org_a, settings):
    connection = make_connection(organisation=org_a)
    delete = responses.delete(DELETE_URL, body=requests.ConnectionError("connection reset"))
    services.xero_connection_disconnect(organisation=org_a, actor=admin_a)
    pending = operation(org_a)
    long_ago = timezone.now() - dt.timedelta(seconds=settings.XERO_IDEMPOTENCY_WINDOW_SECONDS + 60)
    OutboundOperation.objects.filter(pk=pending.pk).update(key_first_sent_at=long_ago, next_attempt_at=timezone.now())
    listed = responses.get(CONNECTIONS_URL, json=[])  # ours is gone: the DELETE had reached Xero
    assert engine.operation_run(operation_id=pending.pk).state == "done"
    assert (delete.call_count, listed.call_count) == (1, 1)
    attempts = pending.outbound_attempts.order_by("pk").values_list("action", "outcome")
    assert list(attempts) == [("send", "unknown"), ("lookup", "confirmed")]
    connection.refresh_from_db()
    assert connection.disconnect_step == "revoke_token"  # the next step, queued for the engine's task
    assert operation(org_a, "disconnect_revoke_token").state == "pending"


@responses.activate
def test_a_revocation_xero_refuses_is_given_up_and_the_tokens_are_still_erased(admin_a, org_a):
    make_connection(organisation=org_a)
    responses.delete(DELETE_URL, status=404)  # already gone: confirmed
    responses.post(REVOCATION_URL, json={"error": "unsupported_token_type"}, status=400)
    result = services.xero_connection_disconnect(organisation=org_a, actor=admin_a)
    assert result.ok and result.message == "Disconnected from Maple Florists Ltd."
    assert operation(org_a).state == "done"
    assert operation(org_a, "disconnect_revoke_token").state == "refused"
    connection = XeroConnection.objects.get(organisation=org_a)
    assert (connection.disconnect_step, connection.refresh_token, connection.access_token) == ("", "", "")
    revoked = IntegrationAuditEvent.objects.get(action="token_revoked")
    assert revoked.outcome == "failure" and revoked.detail["gave_up"] is True
    assert IntegrationAuditEvent.objects.get(action="xero_connection_deleted").detail["already_gone"] is True


@responses.activate
def test_disconnect_operations_hold_no_token_when_read_back(admin_a, org_a):
    connection = make_connection(organisation=org_a)
    secrets = {connection.access_token, connection.refresh_token}
    responses.delete(DELETE_URL, status=204)
    responses.post(REVOCATION_URL, status=500)  # leaves the revocation pending, with its error recorded
    services.xero_connection_disconnect(organisation=org_a, actor=admin_a)
    revoke = operation(org_a, "disconnect_revoke_token")
    assert revoke.state == "pending" and revoke.last_error
    stored = [
        str(row)
        for op in OutboundOperation.objects.filter(organisation=org_a)
        for row in (op.payload, op.last_error, op.last_answer, *op.outbound_attempts.values_list("detail", flat=True))
    ]
    assert not [text for text in stored for secret in secrets if secret in text]
    assert operation(org_a).payload == {"connection_id": CONNECTION_ID}


@responses.activate
def test_a_dead_grant_ends_the_delete_as_refused_and_the_steps_move_on_when_the_token_cannot_be_refreshed(
    admin_a, org_a
):
    make_connection(organisation=org_a, expires_in=0)
    responses.post("https://identity.xero.com/connect/token", json={"error": "invalid_grant"}, status=400)
    services.xero_connection_disconnect(organisation=org_a, actor=admin_a)
    delete = operation(org_a)
    assert delete.state == "refused"  # no reconnect revives this grant: the engine does not wait for one
    assert list(delete.outbound_attempts.values_list("action", "outcome")) == [("send", "refused")]
    assert not OutboundOperation.objects.filter(organisation=org_a, kind="disconnect_revoke_token").exists()
    connection = XeroConnection.objects.get(organisation=org_a)
    assert (connection.status, connection.disconnect_step, connection.refresh_token) == ("disconnected", "", "")
    gave_up = IntegrationAuditEvent.objects.get(action="xero_connection_deleted")
    assert gave_up.outcome == "failure" and gave_up.detail["gave_up"] is True
