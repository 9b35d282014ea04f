"""The Xero client front door: headers, one forced refresh on TokenExpired, error mapping, rate-limit hook, logs."""

import json
import logging

import pytest
import requests
import responses

from integrations.xero.client import XeroClient, xero_request
from integrations.xero.exceptions import (
    XeroAuthError,
    XeroInsufficientScope,
    XeroNotFound,
    XeroRateLimited,
    XeroServerError,
    XeroTenantDisconnected,
    XeroTimeout,
    XeroValidationError,
)
from tests.factories import TENANT_ID, token_response
from tests.integrations.conftest import xero_json

pytestmark = pytest.mark.django_db

API = "https://api.xero.com/api.xro/2.0"
TOKEN_URL = "https://identity.xero.com/connect/token"
RATE_HEADERS = {
    "X-MinLimit-Remaining": "58",
    "X-DayLimit-Remaining": "4990",
    "X-AppMinLimit-Remaining": "9990",
    "Xero-Correlation-Id": "corr-123",
}


@responses.activate
def test_request_sends_bearer_tenant_and_idempotency_headers_and_reads_the_rate_headers(connection):
    responses.put(f"{API}/Invoices", json={"Invoices": []}, headers=RATE_HEADERS)
    response = XeroClient(connection.pk).put(
        "/Invoices", params={"summarizeErrors": "false"}, json={"Invoices": []}, idempotency_key="chunk-1-attempt"
    )
    sent = responses.calls[0].request
    assert sent.headers["Authorization"] == f"Bearer {connection.access_token}"
    assert sent.headers["xero-tenant-id"] == TENANT_ID
    assert sent.headers["Idempotency-Key"] == "chunk-1-attempt"
    assert sent.headers["Accept"] == "application/json"
    assert "summarizeErrors=false" in sent.url
    assert (response.status, response.body, response.correlation_id) == (200, {"Invoices": []}, "corr-123")
    assert (response.min_remaining, response.day_remaining, response.app_min_remaining) == (58, 4990, 9990)
    assert response.duration_ms >= 0


@responses.activate
def test_a_body_goes_as_utf8_json_and_an_answer_is_read_whatever_its_encoding(connection):
    """The body is encoded with orjson (UTF-8 as it is, not \\u escapes) and declared JSON; the answer is read with
    orjson, or by requests when it is not plain UTF-8 (a byte-order mark), and is None when it is not JSON at all."""
    names = {"Reference": "Zoë Łukasiewicz · 山田太郎 · Ελένη · محمد", "UnitAmount": 10.1234}
    responses.put(
        f"{API}/Invoices", body="\ufeff" + '{"Invoices": [{"Reference": "Ελένη"}]}', content_type="application/json"
    )
    responses.get(f"{API}/Organisation", body="<html>Not JSON</html>", content_type="text/html")
    response = XeroClient(connection.pk).put("/Invoices", json={"Invoices": [names]}, idempotency_key="k")
    sent = responses.calls[0].request
    assert sent.headers["Content-Type"] == "application/json"
    assert json.loads(sent.body) == {"Invoices": [names]} and "山田太郎".encode() in sent.body
    assert response.body == {"Invoices": [{"Reference": "Ελένη"}]}
    assert XeroClient(connection.pk).get("/Organisation").body is None


def test_idempotency_key_over_128_characters_is_refused_before_calling_xero(connection):
    with pytest.raises(ValueError):
        XeroClient(connection.pk).put("/Invoices", json={}, idempotency_key="k" * 129)


@responses.activate
def test_token_expired_401_forces_one_refresh_and_retries_once_with_the_new_token(connection):
    responses.get(f"{API}/Organisation", json=xero_json("token_expired_401.json"), status=401)
    responses.get(f"{API}/Organisation", json=xero_json("organisation.json"))
    fresh = token_response()
    responses.post(TOKEN_URL, json=fresh)
    body = XeroClient(connection.pk).organisation()
    assert body["Name"] == "Maple Florists Ltd"
    api_calls = [c for c in responses.calls if c.request.url.startswith(API)]
    assert [c.request.headers["Authorization"] for c in api_calls] == [
        f"Bearer {connection.access_token}",
        f"Bearer {fresh['access_token']}",
    ]
    assert len([c for c in responses.calls if c.request.url == TOKEN_URL]) == 1


@responses.activate
def test_a_second_token_expired_401_raises_instead_of_looping(connection):
    responses.get(f"{API}/Organisation", json=xero_json("token_expired_401.json"), status=401)
    responses.post(TOKEN_URL, json=token_response())
    with pytest.raises(XeroAuthError):
        xero_request(connection.pk, "GET", "/Organisation")
    assert len([c for c in responses.calls if c.request.url == TOKEN_URL]) == 1
    assert len([c for c in responses.calls if c.request.url.startswith(API)]) == 2


@responses.activate
def test_a_write_retried_after_token_expired_resends_the_same_request_with_only_the_token_changed(connection):
    # The refresh-and-retry is one path for every verb: the retry carries the caller's query, body and
    # Idempotency-Key unchanged (a write resent under another key could be applied twice).
    responses.put(f"{API}/Invoices", json=xero_json("token_expired_401.json"), status=401)
    responses.put(f"{API}/Invoices", json={"Invoices": []})
    fresh = token_response()
    responses.post(TOKEN_URL, json=fresh)
    XeroClient(connection.pk).put(
        "/Invoices", params={"summarizeErrors": "false", "unitdp": "4"}, json={"Invoices": []}, idempotency_key="k-1"
    )
    first, retry = (c.request for c in responses.calls if c.request.url.startswith(API))
    assert (first.method, first.url, first.body, first.headers["Idempotency-Key"]) == (
        retry.method,
        retry.url,
        retry.body,
        retry.headers["Idempotency-Key"],
    )
    assert retry.headers["xero-tenant-id"] == first.headers["xero-tenant-id"] == TENANT_ID
    assert (first.headers["Authorization"], retry.headers["Authorization"]) == (
        f"Bearer {connection.access_token}",
        f"Bearer {fresh['access_token']}",
    )


@responses.activate
def test_a_401_other_than_token_expired_raises_without_refreshing_when_xero_refuses_the_token(connection):
    responses.get(f"{API}/Organisation", json={"Detail": "AuthorizationUnsuccessful"}, status=401)
    with pytest.raises(XeroAuthError):
        xero_request(connection.pk, "GET", "/Organisation")
    assert [c.request.url for c in responses.calls if c.request.url == TOKEN_URL] == []
    assert len(responses.calls) == 1


@responses.activate
def test_403_authentication_unsuccessful_raises_tenant_disconnected_and_queues_a_connection_check(connection, enqueued):
    responses.get(
        f"{API}/Invoices",
        json=xero_json("authentication_unsuccessful_403.json"),
        status=403,
        headers={"Xero-Correlation-Id": "corr-403"},
    )
    with pytest.raises(XeroTenantDisconnected) as caught:
        XeroClient(connection.pk).get("/Invoices")
    assert caught.value.correlation_id == "corr-403" and caught.value.status == 403
    assert [(e.name, e.args) for e in enqueued] == [("integrations.xero_connection_verify", (connection.pk,))]


@responses.activate
def test_429_raises_rate_limited_with_retry_after_and_the_problem(connection):
    responses.put(f"{API}/Invoices", status=429, headers={"Retry-After": "37", "X-Rate-Limit-Problem": "minute"})
    with pytest.raises(XeroRateLimited) as caught:
        XeroClient(connection.pk).put("/Invoices", json={"Invoices": []})
    assert (caught.value.retry_after, caught.value.problem) == (37, "minute")


@responses.activate
def test_5xx_raises_server_error(connection):
    responses.get(f"{API}/Invoices", status=503, body="Service Unavailable")
    with pytest.raises(XeroServerError) as caught:
        XeroClient(connection.pk).get("/Invoices")
    assert caught.value.status == 503 and not caught.value.keyed


@responses.activate
def test_a_server_error_says_whether_the_request_carried_an_idempotency_key(connection):
    responses.put(f"{API}/Invoices", status=500, json={"Message": "An error occurred"})
    with pytest.raises(XeroServerError) as caught:
        XeroClient(connection.pk).put("/Invoices", json={"Invoices": []}, idempotency_key="k-1")
    assert (caught.value.status, caught.value.keyed) == (500, True)


@responses.activate
def test_400_validation_exception_carries_xeros_elements(connection):
    responses.put(f"{API}/Invoices", json=xero_json("validation_error_400.json"), status=400)
    with pytest.raises(XeroValidationError) as caught:
        XeroClient(connection.pk).put("/Invoices", json={"Invoices": [{}]})
    assert caught.value.elements[0]["ValidationErrors"] == [{"Message": "Invoice # must be unique."}]
    assert caught.value.error_number == 10


@responses.activate
def test_404_raises_not_found_and_insufficient_scope_is_its_own_error(connection):
    responses.get(f"{API}/Contacts/COORD-1", status=404, json={"Title": "NotFound"})
    with pytest.raises(XeroNotFound):
        XeroClient(connection.pk).get("/Contacts/COORD-1")
    responses.get(
        f"{API}/Payments",
        status=401,
        json={"Detail": "AuthorizationUnsuccessful"},
        headers={"WWW-Authenticate": 'Bearer error="insufficient_scope"'},
    )
    with pytest.raises(XeroInsufficientScope):
        XeroClient(connection.pk).get("/Payments")


@responses.activate
def test_a_timeout_on_a_write_is_outcome_unknown_but_not_on_a_read(connection):
    responses.put(f"{API}/Invoices", body=requests.ReadTimeout("read timed out"))
    with pytest.raises(XeroTimeout) as write:
        XeroClient(connection.pk).put("/Invoices", json={"Invoices": []})
    assert write.value.outcome_unknown is True
    responses.get(f"{API}/Invoices", body=requests.ReadTimeout("read timed out"))
    with pytest.raises(XeroTimeout) as read:
        XeroClient(connection.pk).get("/Invoices")
    assert read.value.outcome_unknown is False
    responses.post(f"{API}/Invoices", body=requests.ConnectTimeout("connect timed out"))
    with pytest.raises(XeroTimeout) as never_sent:
        XeroClient(connection.pk).post("/Invoices", json={"Invoices": []})
    assert never_sent.value.outcome_unknown is False


class RecordingLimiter:
    def __init__(self, refuse: bool = False):
        self.refuse = refuse
        self.log = []

    def acquire(self, *, tenant_id, priority="customer"):
        if self.refuse:
            raise XeroRateLimited("full", retry_after=12, problem="minute", status=None)
        self.log.append(("acquire", tenant_id))
        self.priorities = [*getattr(self, "priorities", []), priority]
        return "ticket-1"

    def release(self, *, tenant_id, ticket):
        self.log.append(("release", tenant_id, ticket))

    def observe(self, *, tenant_id, response):
        self.log.append(("observe", tenant_id, response.min_remaining))


@responses.activate
def test_rate_limiter_hook_is_asked_before_the_call_and_sees_the_answer(connection):
    responses.get(f"{API}/Invoices", json={}, headers=RATE_HEADERS)
    limiter = RecordingLimiter()
    XeroClient(connection.pk, rate_limiter=limiter).get("/Invoices")
    assert limiter.log == [("acquire", TENANT_ID), ("release", TENANT_ID, "ticket-1"), ("observe", TENANT_ID, 58)]


@responses.activate
def test_the_callers_priority_reaches_the_limiter_and_the_usage_row_when_it_names_one(connection):
    from integrations.usage.models import XeroApiUsage
    from integrations.xero.ratelimit import Priority

    responses.get(f"{API}/Invoices", json={}, headers=RATE_HEADERS)
    limiter = RecordingLimiter()
    XeroClient(connection.pk, rate_limiter=limiter, priority=Priority.RECONCILE).get("/Invoices")
    XeroClient(connection.pk, rate_limiter=limiter).get("/Invoices")
    assert limiter.priorities == [Priority.RECONCILE, Priority.CUSTOMER]
    row = XeroApiUsage.objects.get(organisation_id=connection.organisation_id)
    assert (row.calls, row.reconcile_calls, row.webhook_calls, row.health_calls) == (2, 1, 0, 0)


@responses.activate
def test_a_refusing_rate_limiter_stops_the_call_before_it_reaches_xero(connection):
    with pytest.raises(XeroRateLimited) as caught:
        XeroClient(connection.pk, rate_limiter=RecordingLimiter(refuse=True)).get("/Invoices")
    assert caught.value.retry_after == 12
    assert len(responses.calls) == 0


@responses.activate
def test_every_call_is_logged_with_tenant_and_correlation_id_and_never_the_token(connection, caplog):
    responses.get(f"{API}/Organisation", json=xero_json("organisation.json"), headers=RATE_HEADERS)
    with caplog.at_level(logging.INFO, logger="integrations.xero"):
        XeroClient(connection.pk).get("/Organisation")
    record = next(r for r in caplog.records if r.getMessage() == "xero.http.request")
    assert (record.tenant_id, record.correlation_id, record.status, record.path) == (
        TENANT_ID,
        "corr-123",
        200,
        "/api.xro/2.0/Organisation",
    )
    assert record.organisation_id == connection.organisation_id
    everything = " ".join(str(r.__dict__) for r in caplog.records)
    assert connection.access_token not in everything and connection.refresh_token not in everything


@responses.activate
def test_error_messages_never_contain_the_token(connection):
    responses.get(f"{API}/Invoices", json={"Detail": "nope"}, status=401)
    with pytest.raises(XeroAuthError) as caught:
        XeroClient(connection.pk).get("/Invoices")
    assert connection.access_token not in str(caught.value) and connection.access_token not in repr(caught.value)


@responses.activate
def test_a_netrc_entry_for_xeros_host_does_not_replace_our_bearer_token(connection, tmp_path, monkeypatch):
    """requests, trusting the environment, takes ~/.netrc's login for a host and sends it as Basic auth over the
    Authorization header we set: every call would go out with the wrong credentials (and the netrc password to Xero)."""
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine api.xero.com login someone password not-for-xero\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    responses.get(f"{API}/Organisation", json={"Organisations": []})
    XeroClient(connection.pk).get("/Organisation")
    assert responses.calls[0].request.headers["Authorization"] == f"Bearer {connection.access_token}"


def test_the_proxy_the_environment_names_is_used_unless_no_proxy_names_xeros_host(monkeypatch):
    from integrations.xero import client

    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    client._environment.cache_clear()
    assert client._environment("https://api.xero.com")[0].get("https") == "http://proxy.internal:3128"
    monkeypatch.setenv("NO_PROXY", "api.xero.com")
    client._environment.cache_clear()
    assert "https" not in client._environment("https://api.xero.com")[0]
    client._environment.cache_clear()
