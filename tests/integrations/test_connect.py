"""The Connect to Xero flow through the views: start, every callback rejection, binding, picking, switching."""

import datetime as dt
import hashlib
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from django.urls import reverse
from django.utils import timezone

from integrations.models import IntegrationAuditEvent, XeroConnection, XeroOAuthState, XeroPendingTenantChoice
from tests.factories import (
    AUTH_EVENT_ID,
    TENANT_ID,
    make_connection,
    make_membership,
    token_response,
)
from tests.integrations.conftest import xero_json

pytestmark = pytest.mark.django_db

TOKEN_URL = "https://identity.xero.com/connect/token"
CONNECTIONS_URL = "https://api.xero.com/connections"
ORGANISATION_URL = "https://api.xero.com/api.xro/2.0/Organisation"
CALLBACK = reverse("integrations:xero_callback")


def start(client) -> dict:
    response = client.post(reverse("integrations:xero_connect"))
    assert response.status_code == 302
    url = response["Location"]
    assert url.startswith("https://login.xero.com/identity/connect/authorize?")
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def mock_exchange(rsps, *, connections="connections_one.json", body=None, organisation=True):
    rsps.post(TOKEN_URL, json=body or token_response())
    rsps.get(CONNECTIONS_URL, json=xero_json(connections) if isinstance(connections, str) else connections)
    if organisation:
        rsps.get(ORGANISATION_URL, json=xero_json("organisation.json"))


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


def said(response, text: str) -> bool:
    return any(text in message for message in messages_of(response))


def follow_callback(client, **params):
    return client.get(CALLBACK, params, follow=True)


# ---------------------------------------------------------------- start


def test_connect_redirects_to_xero_with_state_pkce_and_granular_scopes_when_admin_posts(login_as, admin_a, org_a):
    params = start(login_as(admin_a))
    assert params["client_id"] == "test-client-id"
    assert params["redirect_uri"] == "http://testserver/integrations/xero/callback/"
    assert params["scope"] == (
        "offline_access openid profile email accounting.invoices accounting.contacts accounting.settings"
    )
    assert params["code_challenge_method"] == "S256" and len(params["code_challenge"]) == 43
    record = XeroOAuthState.objects.get()
    assert record.state_digest == hashlib.sha256(params["state"].encode()).hexdigest()
    assert record.organisation == org_a and record.user == admin_a
    assert params["state"] not in str(XeroOAuthState.objects.values_list())  # only its digest is stored
    assert record.expires_at - record.created_at == dt.timedelta(minutes=10)


def test_connect_sends_legacy_scopes_and_no_pkce_when_settings_say_so(login_as, admin_a, settings):
    settings.XERO_SCOPES = settings.XERO_LEGACY_SCOPES
    settings.XERO_USE_PKCE = False
    params = start(login_as(admin_a))
    assert "accounting.transactions" in params["scope"]
    assert "code_challenge" not in params
    assert XeroOAuthState.objects.get().code_verifier == ""


def test_connect_is_403_when_user_is_accountant(login_as, accountant_a):
    assert login_as(accountant_a).post(reverse("integrations:xero_connect")).status_code == 403
    assert not XeroOAuthState.objects.exists()


def test_connect_is_405_when_requested_with_get(login_as, admin_a):
    assert login_as(admin_a).get(reverse("integrations:xero_connect")).status_code == 405


def test_connect_is_refused_without_csrf_token_when_posted_from_elsewhere(admin_a):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_a)
    assert client.post(reverse("integrations:xero_connect")).status_code == 403


# ---------------------------------------------------------------- success


@responses.activate
def test_callback_binds_the_one_organisation_when_the_consent_authorised_one(login_as, admin_a, org_a):
    client = login_as(admin_a)
    params = start(client)
    mock_exchange(responses)
    response = follow_callback(client, code="the-code", state=params["state"])
    assert response.redirect_chain[-1][0] == reverse("integrations:manage")
    assert "Connected to Maple Florists Ltd." in messages_of(response)
    body = response.content.decode()
    assert "Connected to <strong>Maple Florists Ltd</strong>" in body
    connection = XeroConnection.objects.get(organisation=org_a)
    assert connection.status == "active"
    assert (connection.tenant_id, connection.connection_id, connection.auth_event_id) == (
        TENANT_ID,
        "e1eede29-f875-4a5d-8470-17f6a29a88b1",
        AUTH_EVENT_ID,
    )
    assert (connection.tenant_short_code, connection.base_currency) == ("!mF3pq", "NZD")
    assert connection.connected_by == admin_a and connection.connected_at is not None
    assert connection.refresh_token.startswith("rt-")
    exchange = responses.calls[0].request
    assert exchange.headers["Authorization"].startswith("Basic ")  # client_secret_basic, as xero-node
    form = parse_qs(exchange.body)
    assert form["grant_type"] == ["authorization_code"] and form["code"] == ["the-code"]
    assert len(form["code_verifier"][0]) == 64
    assert responses.calls[2].request.headers["xero-tenant-id"] == TENANT_ID
    assert IntegrationAuditEvent.objects.filter(organisation=org_a, action="connected", actor=admin_a).exists()


@responses.activate
def test_callback_keeps_only_this_consents_tenants_when_the_user_has_older_connections(login_as, admin_a, org_a):
    client = login_as(admin_a)
    params = start(client)
    older = xero_json("connections_several.json")[2]  # another authEventId: an earlier consent
    mock_exchange(responses, connections=[xero_json("connections_one.json")[0], older])
    follow_callback(client, code="c", state=params["state"])
    assert XeroConnection.objects.get(organisation=org_a).tenant_name == "Maple Florists Ltd"
    assert not any(call.request.method == "DELETE" for call in responses.calls)  # older ones are not ours to drop


# ---------------------------------------------------------------- issue 14: connect never dead-ends

OTHER_TENANT_ID = "e0da6937-de07-4a14-adee-37abfac298ce"  # "Rose Garden Supplies" in connections_several.json


def _without_auth_event_ids(connections: list[dict]) -> list[dict]:
    return [{key: value for key, value in c.items() if key != "authEventId"} for c in connections]


@responses.activate
def test_callback_offers_the_grants_free_organisations_when_the_access_token_is_not_a_jwt(login_as, admin_a, org_a):
    client = login_as(admin_a)
    params = start(client)
    body = {**token_response(), "access_token": "opaque-not-a-jwt"}
    mock_exchange(responses, body=body, connections="connections_several.json", organisation=False)
    response = client.get(CALLBACK, {"code": "c", "state": params["state"]})
    pending = XeroPendingTenantChoice.objects.get()
    assert response["Location"] == reverse("integrations:xero_choose", args=[pending.pk])
    page = client.get(response["Location"]).content.decode()
    assert "Xero didn't tell Coordinoter which organisation you just chose" in page
    for name in ("Maple Florists Ltd", "Rose Garden Supplies", "An Earlier Consent Pty"):  # tenantName
        assert name in page
    assert "Nothing was connected" not in page
    responses.get(ORGANISATION_URL, json=xero_json("organisation.json"))
    responses.delete(f"{CONNECTIONS_URL}/32587c85-a9b3-4306-ac30-b416e8f2c841", status=204)
    responses.delete(f"{CONNECTIONS_URL}/9a6d3f3e-5f5e-4f0a-9a67-7d3cbb1d9a10", status=204)
    response = client.post(response["Location"], {"tenant_id": TENANT_ID}, follow=True)
    assert "Connected to Maple Florists Ltd." in messages_of(response)
    assert XeroConnection.objects.get(organisation=org_a).tenant_id == TENANT_ID


@responses.activate
def test_callback_offers_only_organisations_no_other_coordinoter_organisation_holds_when_auth_event_ids_lack(
    login_as, admin_a, org_a, org_b
):
    make_connection(organisation=org_b, tenant_id=OTHER_TENANT_ID, connection_id="32587c85-a9b3-4306-ac30-b416e8f2c841")
    client = login_as(admin_a)
    params = start(client)
    mock_exchange(
        responses,
        connections=_without_auth_event_ids(xero_json("connections_several.json")),
        organisation=False,
    )
    response = client.get(CALLBACK, {"code": "c", "state": params["state"]})
    pending = XeroPendingTenantChoice.objects.get(organisation=org_a)
    assert response["Location"] == reverse("integrations:xero_choose", args=[pending.pk])
    assert [c["tenant_name"] for c in pending.candidates] == ["Maple Florists Ltd", "An Earlier Consent Pty"]
    page = client.get(response["Location"]).content.decode()
    assert "Rose Garden Supplies" not in page


@responses.activate
def test_callback_offers_the_picker_even_for_one_organisation_when_xero_did_not_say_which_was_chosen(
    login_as, admin_a, org_a
):
    client = login_as(admin_a)
    params = start(client)
    mock_exchange(responses, connections=_without_auth_event_ids(xero_json("connections_one.json")))
    response = client.get(CALLBACK, {"code": "c", "state": params["state"]})
    pending = XeroPendingTenantChoice.objects.get()
    assert response["Location"] == reverse("integrations:xero_choose", args=[pending.pk])
    page = client.get(response["Location"]).content.decode()
    assert 'value="70784a63-d24b-46a9-a4db-0e70a274b056" checked' in page
    response = client.post(response["Location"], {"tenant_id": TENANT_ID}, follow=True)
    assert "Connected to Maple Florists Ltd." in messages_of(response)


# ---------------------------------------------------------------- rejections: nothing stored


def assert_nothing_connected(org) -> None:
    connection = XeroConnection.objects.filter(organisation=org).first()
    assert connection is None or (connection.status == "not_connected" and connection.refresh_token == "")


@responses.activate
def test_callback_refuses_and_stores_nothing_when_state_is_unknown(login_as, admin_a, org_a):
    client = login_as(admin_a)
    start(client)
    response = follow_callback(client, code="c", state="forged-state")
    assert said(response, "can't be used here")
    assert len(responses.calls) == 0  # never exchanged the code
    assert_nothing_connected(org_a)
    assert IntegrationAuditEvent.objects.filter(action="connect_refused", detail__reason="unknown_state").exists()


@responses.activate
def test_callback_refuses_when_state_is_missing(login_as, admin_a, org_a):
    client = login_as(admin_a)
    start(client)
    response = follow_callback(client, code="c")
    assert said(response, "can't be used here")
    assert len(responses.calls) == 0


@responses.activate
def test_callback_refuses_a_replayed_state_when_it_was_already_used(login_as, admin_a, org_a):
    client = login_as(admin_a)
    params = start(client)
    mock_exchange(responses)
    follow_callback(client, code="c", state=params["state"])
    calls = len(responses.calls)
    response = follow_callback(client, code="c", state=params["state"])
    assert said(response, "can't be used here")
    assert len(responses.calls) == calls
    assert IntegrationAuditEvent.objects.filter(detail__reason="state_already_used").exists()


@responses.activate
def test_callback_refuses_when_state_expired(login_as, admin_a, org_a):
    client = login_as(admin_a)
    params = start(client)
    XeroOAuthState.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    response = follow_callback(client, code="c", state=params["state"])
    assert said(response, "can't be used here")
    assert len(responses.calls) == 0
    assert_nothing_connected(org_a)


@responses.activate
def test_callback_refuses_cross_organisation_use_when_the_user_switched_organisation_mid_flow(
    login_as, admin_a, org_a, org_b
):
    make_membership(user=admin_a, organisation=org_b, role="admin")
    client = login_as(admin_a)
    params = start(client)  # started for Org A
    client.post(reverse("organisations:switch"), {"organisation": org_b.pk})
    response = follow_callback(client, code="c", state=params["state"])
    assert said(response, "can't be used here")
    assert len(responses.calls) == 0
    assert_nothing_connected(org_a)
    assert_nothing_connected(org_b)
    refused = IntegrationAuditEvent.objects.filter(action="connect_refused")
    assert {e.organisation_id for e in refused} == {org_a.pk, org_b.pk}  # the targeted org sees it too
    # Single use: going back to Org A does not revive it.
    client.post(reverse("organisations:switch"), {"organisation": org_a.pk})
    assert said(follow_callback(client, code="c", state=params["state"]), "can't be used here")


@responses.activate
def test_callback_refuses_when_another_user_presents_the_state(client, admin_a, admin_b, org_a, org_b, login_as):
    params = start(login_as(admin_a))
    client.logout()
    response = follow_callback(login_as(admin_b), code="c", state=params["state"])
    assert said(response, "can't be used here")
    assert len(responses.calls) == 0
    assert_nothing_connected(org_b)


@responses.activate
def test_callback_refuses_when_the_state_comes_back_in_another_session(admin_a, org_a):
    from django.test import Client

    first, second = Client(), Client()
    first.force_login(admin_a)
    second.force_login(admin_a)
    params = start(first)
    response = second.get(CALLBACK, {"code": "c", "state": params["state"]}, follow=True)
    assert said(response, "can't be used here")
    assert len(responses.calls) == 0
    assert_nothing_connected(org_a)


@responses.activate
def test_callback_shows_a_friendly_message_when_the_user_cancelled_at_xero(login_as, admin_a, org_a):
    client = login_as(admin_a)
    params = start(client)
    response = follow_callback(client, error="access_denied", state=params["state"])
    assert messages_of(response) == [
        "You cancelled on Xero's screen, so nothing was connected. Click Connect to Xero whenever you're ready."
    ]
    assert len(responses.calls) == 0
    assert_nothing_connected(org_a)
    assert IntegrationAuditEvent.objects.filter(action="connect_cancelled").exists()


@responses.activate
def test_callback_refuses_when_xero_sent_no_code(login_as, admin_a, org_a):
    client = login_as(admin_a)
    params = start(client)
    response = follow_callback(client, state=params["state"])
    assert said(response, "no authorisation code")
    assert_nothing_connected(org_a)


@responses.activate
def test_callback_stores_nothing_when_the_code_exchange_fails(login_as, admin_a, org_a):
    client = login_as(admin_a)
    params = start(client)
    responses.post(TOKEN_URL, json=xero_json("invalid_grant.json"), status=400)
    response = follow_callback(client, code="expired-code", state=params["state"])
    assert said(response, "did not accept the sign-in")
    assert_nothing_connected(org_a)
    event = IntegrationAuditEvent.objects.get(action="connect_failed")
    assert event.detail == {"reason": "code_exchange_failed", "error": "invalid_grant"}


@responses.activate
def test_callback_stores_nothing_when_the_token_endpoint_is_down(login_as, admin_a, org_a):
    client = login_as(admin_a)
    params = start(client)
    responses.post(TOKEN_URL, body="upstream unavailable", status=503)
    response = follow_callback(client, code="c", state=params["state"])
    # An outage, as the classifier says (Retry), not a refusal of the sign-in: the code was never judged.
    assert said(response, "couldn't reach Xero just now") and not said(response, "did not accept the sign-in")
    assert said(response, "Click Connect to Xero to start again")
    assert_nothing_connected(org_a)


@responses.activate
def test_callback_stores_nothing_and_says_xero_did_not_answer_when_the_code_exchange_times_out(
    login_as, admin_a, org_a
):
    client = login_as(admin_a)
    params = start(client)
    responses.post(TOKEN_URL, body=requests.ConnectionError("connection reset"))
    response = follow_callback(client, code="c", state=params["state"])
    assert said(response, "couldn't reach Xero just now") and not said(response, "the code may have expired")
    assert_nothing_connected(org_a)


@responses.activate
def test_callback_stores_nothing_when_connections_cannot_be_read(login_as, admin_a, org_a):
    client = login_as(admin_a)
    params = start(client)
    responses.post(TOKEN_URL, json=token_response())
    responses.get(CONNECTIONS_URL, status=500)
    response = follow_callback(client, code="c", state=params["state"])
    assert said(response, "couldn't read which organisation")
    assert_nothing_connected(org_a)


@responses.activate
def test_callback_is_403_when_user_is_accountant(login_as, accountant_a):
    assert login_as(accountant_a).get(CALLBACK, {"code": "c", "state": "s"}).status_code == 403


# ---------------------------------------------------------------- several organisations, bound elsewhere, switching


@responses.activate
def test_callback_shows_a_picker_and_disconnects_the_unchosen_when_several_were_authorised(login_as, admin_a, org_a):
    client = login_as(admin_a)
    params = start(client)
    mock_exchange(responses, connections="connections_several.json", organisation=False)
    response = client.get(CALLBACK, {"code": "c", "state": params["state"]})
    pending = XeroPendingTenantChoice.objects.get()
    assert response["Location"] == reverse("integrations:xero_choose", args=[pending.pk])
    assert not XeroConnection.objects.filter(organisation=org_a, status="active").exists()
    assert "refresh_token" not in str(dict(client.session))  # tokens wait server-side, encrypted
    page = client.get(response["Location"]).content.decode()
    assert "Maple Florists Ltd" in page and "Rose Garden Supplies" in page
    assert "An Earlier Consent Pty" not in page  # not part of this consent

    responses.get(
        "https://api.xero.com/api.xro/2.0/Organisation",
        json={"Organisations": [{"Name": "Rose Garden Supplies", "ShortCode": "!rG1", "BaseCurrency": "AUD"}]},
    )
    responses.delete(f"{CONNECTIONS_URL}/e1eede29-f875-4a5d-8470-17f6a29a88b1", status=204)
    response = client.post(
        reverse("integrations:xero_choose", args=[pending.pk]),
        {"tenant_id": "e0da6937-de07-4a14-adee-37abfac298ce"},
        follow=True,
    )
    assert "Connected to Rose Garden Supplies." in messages_of(response)
    connection = XeroConnection.objects.get(organisation=org_a)
    assert connection.tenant_name == "Rose Garden Supplies" and connection.connection_id.startswith("32587c85")
    deletes = [c.request.url for c in responses.calls if c.request.method == "DELETE"]
    assert deletes == [f"{CONNECTIONS_URL}/e1eede29-f875-4a5d-8470-17f6a29a88b1"]
    pending.refresh_from_db()
    assert pending.consumed_at is not None and pending.refresh_token == ""  # nothing left behind


@responses.activate
def test_picker_is_404_when_the_choice_belongs_to_another_organisation(login_as, admin_a, admin_b, org_a, client):
    a = login_as(admin_a)
    params = start(a)
    mock_exchange(responses, connections="connections_several.json", organisation=False)
    a.get(CALLBACK, {"code": "c", "state": params["state"]})
    pending = XeroPendingTenantChoice.objects.get()
    client.logout()
    b = login_as(admin_b)
    assert b.get(reverse("integrations:xero_choose", args=[pending.pk])).status_code == 404
    assert b.post(reverse("integrations:xero_choose", args=[pending.pk]), {"tenant_id": TENANT_ID}).status_code == 404


@responses.activate
def test_picker_cancel_disconnects_every_authorised_organisation_when_the_admin_backs_out(login_as, admin_a, org_a):
    client = login_as(admin_a)
    params = start(client)
    mock_exchange(responses, connections="connections_several.json", organisation=False)
    client.get(CALLBACK, {"code": "c", "state": params["state"]})
    pending = XeroPendingTenantChoice.objects.get()
    responses.delete(f"{CONNECTIONS_URL}/e1eede29-f875-4a5d-8470-17f6a29a88b1", status=204)
    responses.delete(f"{CONNECTIONS_URL}/32587c85-a9b3-4306-ac30-b416e8f2c841", status=204)
    response = client.post(reverse("integrations:xero_choose", args=[pending.pk]), {"cancel": "1"}, follow=True)
    assert said(response, "nothing was connected")
    assert len([c for c in responses.calls if c.request.method == "DELETE"]) == 2
    assert_nothing_connected(org_a)


@responses.activate
def test_callback_refuses_a_xero_organisation_bound_to_another_coordinoter_organisation(
    login_as, admin_a, org_a, org_b
):
    make_connection(
        organisation=org_b, connection_id="11111111-2222-4333-8444-555555555555", xero_user_id="another-xero-user"
    )
    client = login_as(admin_a)
    params = start(client)
    mock_exchange(responses, organisation=False)
    responses.delete(f"{CONNECTIONS_URL}/e1eede29-f875-4a5d-8470-17f6a29a88b1", status=204)
    response = follow_callback(client, code="c", state=params["state"])
    assert said(response, "already connected to another Coordinoter organisation")
    assert_nothing_connected(org_a)
    # This consent's own connection (another Xero user's) is removed, so nothing stays authorised by accident.
    assert [c.request.method for c in responses.calls].count("DELETE") == 1
    assert XeroConnection.objects.get(organisation=org_b).status == "active"


@responses.activate
def test_callback_never_deletes_a_connection_another_organisation_relies_on_when_refusing(
    login_as, admin_a, org_a, org_b
):
    make_connection(organisation=org_b)  # same Xero user, so the same connection id
    client = login_as(admin_a)
    params = start(client)
    mock_exchange(responses, organisation=False)
    follow_callback(client, code="c", state=params["state"])
    assert not any(c.request.method == "DELETE" for c in responses.calls)
    assert IntegrationAuditEvent.objects.filter(organisation=org_a, action="unchosen_tenant_kept").exists()


@responses.activate
def test_reconnect_to_a_different_xero_organisation_needs_explicit_confirmation(login_as, admin_a, org_a):
    make_connection(
        organisation=org_a,
        status="needs_reconnect",
        tenant_id="b1f4c8e2-1c1f-4a4e-9e55-8f6a5c1d2e33",
        tenant_name="Old Books Ltd",
        connection_id="9a6d3f3e-5f5e-4f0a-9a67-7d3cbb1d9a10",
    )
    client = login_as(admin_a)
    params = start(client)
    mock_exchange(responses, organisation=False)
    response = client.get(CALLBACK, {"code": "c", "state": params["state"]})
    pending = XeroPendingTenantChoice.objects.get()
    assert response["Location"] == reverse("integrations:xero_choose", args=[pending.pk])
    assert XeroConnection.objects.get(organisation=org_a).tenant_name == "Old Books Ltd"  # never switched silently

    url = reverse("integrations:xero_choose", args=[pending.pk])
    unconfirmed = client.post(url, {"tenant_id": TENANT_ID})
    assert unconfirmed.status_code == 422
    assert "Tick the box to confirm the switch" in unconfirmed.content.decode()
    assert XeroConnection.objects.get(organisation=org_a).tenant_name == "Old Books Ltd"

    responses.get(ORGANISATION_URL, json=xero_json("organisation.json"))
    responses.delete(f"{CONNECTIONS_URL}/9a6d3f3e-5f5e-4f0a-9a67-7d3cbb1d9a10", status=404)
    response = client.post(url, {"tenant_id": TENANT_ID, "confirm_switch": "yes"}, follow=True)
    assert "Switched and connected to Maple Florists Ltd." in messages_of(response)
    connection = XeroConnection.objects.get(organisation=org_a)
    assert (connection.status, connection.tenant_id) == ("active", TENANT_ID)
    assert IntegrationAuditEvent.objects.filter(
        action="tenant_switched", detail__previous_tenant_id="b1f4c8e2-1c1f-4a4e-9e55-8f6a5c1d2e33"
    )


@responses.activate
def test_reconnect_of_the_same_organisation_keeps_connected_since_when_it_needed_a_reconnect(login_as, admin_a, org_a):
    before = make_connection(organisation=org_a, status="needs_reconnect")
    client = login_as(admin_a)
    params = start(client)
    assert XeroOAuthState.objects.get().purpose == "reconnect"
    mock_exchange(responses)
    response = follow_callback(client, code="c", state=params["state"])
    assert "Reconnected to Maple Florists Ltd." in messages_of(response)
    after = XeroConnection.objects.get(organisation=org_a)
    assert after.status == "active" and after.connected_at == before.connected_at
    assert after.refresh_token != before.refresh_token and after.needs_reconnect_reason == ""


@responses.activate
def test_picker_refuses_a_second_choice_when_the_first_was_made(login_as, admin_a, org_a):
    client = login_as(admin_a)
    params = start(client)
    mock_exchange(responses, connections="connections_several.json")
    client.get(CALLBACK, {"code": "c", "state": params["state"]})
    pending = XeroPendingTenantChoice.objects.get()
    responses.delete(f"{CONNECTIONS_URL}/32587c85-a9b3-4306-ac30-b416e8f2c841", status=204)
    url = reverse("integrations:xero_choose", args=[pending.pk])
    client.post(url, {"tenant_id": TENANT_ID})
    again = client.post(url, {"tenant_id": "e0da6937-de07-4a14-adee-37abfac298ce"}, follow=True)
    assert said(again, "no longer open")
    assert XeroConnection.objects.get(organisation=org_a).tenant_id == TENANT_ID


@responses.activate
def test_picker_is_403_when_user_is_accountant(login_as, admin_a, accountant_a, org_a, client):
    a = login_as(admin_a)
    params = start(a)
    mock_exchange(responses, connections="connections_several.json", organisation=False)
    a.get(CALLBACK, {"code": "c", "state": params["state"]})
    pending = XeroPendingTenantChoice.objects.get()
    client.logout()
    accountant = login_as(accountant_a)
    url = reverse("integrations:xero_choose", args=[pending.pk])
    assert accountant.get(url).status_code == 403
    assert accountant.post(url, {"tenant_id": TENANT_ID}).status_code == 403
    assert XeroPendingTenantChoice.objects.get().consumed_at is None


# ------------------------------------------- issue 13, finding 10: a failed connect gives back what it got

REVOCATION_URL = "https://identity.xero.com/connect/revocation"


def revoked_tokens() -> list[str]:
    return [
        parse_qs(call.request.body).get("token", [""])[0]
        for call in responses.calls
        if call.request.url == REVOCATION_URL
    ]


@responses.activate
def test_failed_connect_revokes_the_grant_when_no_organisation_could_be_matched(login_as, admin_a, org_a):
    client = login_as(admin_a)
    params = start(client)
    # The access token names another consent than the connections listed: nothing of this consent matches.
    responses.post(TOKEN_URL, json=token_response(refresh_token="rt-unmatched", auth_event_id="other-consent"))
    responses.get(CONNECTIONS_URL, json=xero_json("connections_one.json"))
    responses.post(REVOCATION_URL, status=200)
    response = follow_callback(client, code="c", state=params["state"])
    assert said(response, "didn't authorise any Xero organisation")
    assert_nothing_connected(org_a)
    assert revoked_tokens() == ["rt-unmatched"]
    event = IntegrationAuditEvent.objects.get(organisation=org_a, action="grant_revoked")
    assert event.outcome == "success" and event.detail["after"] == "no_organisation_authorised"


@responses.activate
def test_failed_connect_revokes_the_grant_when_connections_cannot_be_read(login_as, admin_a, org_a):
    client = login_as(admin_a)
    params = start(client)
    responses.post(TOKEN_URL, json=token_response(refresh_token="rt-blind"))
    responses.get(CONNECTIONS_URL, status=500)
    responses.post(REVOCATION_URL, status=200)
    follow_callback(client, code="c", state=params["state"])
    assert revoked_tokens() == ["rt-blind"]
    assert IntegrationAuditEvent.objects.get(action="grant_revoked").detail["after"] == "connections_unreadable"


@responses.activate
def test_refused_connect_disconnects_and_revokes_when_the_tenant_belongs_to_another_organisation(
    login_as, admin_a, org_a, org_b
):
    make_connection(
        organisation=org_b, connection_id="11111111-2222-4333-8444-555555555555", xero_user_id="another-xero-user"
    )
    client = login_as(admin_a)
    params = start(client)
    mock_exchange(responses, organisation=False, body=token_response(refresh_token="rt-refused"))
    responses.delete(f"{CONNECTIONS_URL}/e1eede29-f875-4a5d-8470-17f6a29a88b1", status=204)
    responses.post(REVOCATION_URL, status=200)
    follow_callback(client, code="c", state=params["state"])
    assert revoked_tokens() == ["rt-refused"]
    actions = list(IntegrationAuditEvent.objects.filter(organisation=org_a).values_list("action", flat=True))
    assert "unchosen_tenant_disconnected" in actions and "grant_revoked" in actions


@responses.activate
def test_failed_connect_keeps_the_grant_when_the_same_xero_user_feeds_a_live_connection(
    login_as, admin_a, org_a, org_b
):
    # Revoking would remove every connection of this Xero user to our app, org B's included (xero-facts 1.5).
    make_connection(organisation=org_b)
    client = login_as(admin_a)
    params = start(client)
    responses.post(TOKEN_URL, json=token_response())
    responses.get(CONNECTIONS_URL, status=500)
    follow_callback(client, code="c", state=params["state"])
    assert revoked_tokens() == []
    event = IntegrationAuditEvent.objects.get(organisation=org_a, action="grant_revoke_skipped")
    assert event.detail == {"after": "connections_unreadable", "reason": "same_xero_user_has_a_live_connection"}
    assert XeroConnection.objects.get(organisation=org_b).status == "active"


@responses.activate
def test_failed_connect_audits_a_failed_revocation_when_xero_is_down(login_as, admin_a, org_a):
    client = login_as(admin_a)
    params = start(client)
    responses.post(TOKEN_URL, json=token_response())
    responses.get(CONNECTIONS_URL, status=500)
    responses.post(REVOCATION_URL, status=503)
    response = follow_callback(client, code="c", state=params["state"])
    assert response.status_code == 200 and said(response, "couldn't read which organisation")
    event = IntegrationAuditEvent.objects.get(action="grant_revoked")
    assert event.outcome == "failure" and event.detail["error"] == "XeroServerError"


@responses.activate
def test_cancelled_choice_disconnects_and_revokes_when_the_admin_backs_out(login_as, admin_a, org_a):
    client = login_as(admin_a)
    params = start(client)
    mock_exchange(
        responses, connections="connections_several.json", organisation=False, body=token_response(refresh_token="rt-x")
    )
    client.get(CALLBACK, {"code": "c", "state": params["state"]})
    pending = XeroPendingTenantChoice.objects.get()
    responses.delete(f"{CONNECTIONS_URL}/e1eede29-f875-4a5d-8470-17f6a29a88b1", status=204)
    responses.delete(f"{CONNECTIONS_URL}/32587c85-a9b3-4306-ac30-b416e8f2c841", status=204)
    responses.post(REVOCATION_URL, status=200)
    client.post(reverse("integrations:xero_choose", args=[pending.pk]), {"cancel": "1"})
    assert revoked_tokens() == ["rt-x"]
    assert IntegrationAuditEvent.objects.get(action="grant_revoked").detail == {"after": "connect_cancelled"}
    pending.refresh_from_db()
    assert not pending.refresh_token
