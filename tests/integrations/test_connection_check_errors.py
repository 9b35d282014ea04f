"""The connection check (GET /connections) decides from the one classifier's verdict: what it waits and what it
reports, for each way Xero can fail it."""

import pytest
import responses

from integrations.models import XeroConnection
from integrations.services import connection as connection_services

pytestmark = pytest.mark.django_db

CONNECTIONS_URL = "https://api.xero.com/connections"
TOKEN_URL = "https://identity.xero.com/connect/token"


def verify(connection) -> str:
    return connection_services.xero_connection_verify(connection_id=connection.pk)


@responses.activate
def test_check_comes_back_after_the_classifiers_wait_when_xero_answers_429_concurrent(connection, settings, enqueued):
    """A concurrency 429 clears when a call in flight ends: about a second, not the 60 a missing Retry-After gives."""
    responses.get(CONNECTIONS_URL, status=429, headers={"X-Rate-Limit-Problem": "concurrent"})
    assert verify(connection) == "rate_limited"
    [again] = enqueued
    assert again.name == "integrations.xero_connection_verify" and again.args == (connection.pk,)
    assert again.countdown == pytest.approx(settings.XERO_RATE_MINUTE_SECONDS / 60 + connection.pk % 7)


@responses.activate
def test_check_comes_back_after_retry_after_when_xero_answers_429_minute(connection, enqueued):
    responses.get(CONNECTIONS_URL, status=429, headers={"Retry-After": "17", "X-Rate-Limit-Problem": "minute"})
    assert verify(connection) == "rate_limited"
    [again] = enqueued
    assert again.countdown == 17 + connection.pk % 7


@responses.activate
@pytest.mark.parametrize("status", [401, 403, 500, 503])
def test_check_reports_an_error_and_marks_nothing_when_xero_refuses_or_fails(connection, status, enqueued):
    responses.get(CONNECTIONS_URL, status=status, json={"Title": "x", "Detail": "AuthenticationUnsuccessful"})
    assert verify(connection) == "error"
    assert XeroConnection.objects.get(pk=connection.pk).status == XeroConnection.Status.ACTIVE
    assert [task.name for task in enqueued] == []


@responses.activate
def test_check_reports_needs_reconnect_when_the_grant_is_dead(connection, enqueued):
    XeroConnection.objects.filter(pk=connection.pk).update(access_token_expires_at=None)
    responses.post(TOKEN_URL, json={"error": "invalid_grant"}, status=400)
    assert verify(connection) == "needs_reconnect"
    assert XeroConnection.objects.get(pk=connection.pk).status == XeroConnection.Status.NEEDS_RECONNECT
