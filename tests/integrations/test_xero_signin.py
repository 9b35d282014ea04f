"""Sign up, sign in and link with Xero through the views, Xero mocked with `responses`: what each creates, the
refusals (an email that belongs to an account, an unlinked Xero user, a bad id_token, a replayed state) and the
throttle."""

from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from django.contrib.auth import get_user_model
from django.urls import reverse

from integrations.models import IntegrationAuditEvent, XeroConnection, XeroPendingTenantChoice
from integrations.signin.models import XeroIdentity, XeroSignInState
from organisations.identity import canonical_email
from organisations.models import Membership, Organisation
from organisations.throttle import Gate, throttle_locked, throttle_record
from tests.factories import AUTH_EVENT_ID, TENANT_ID, XERO_USER_ID, fake_jwt, make_user
from tests.integrations.conftest import xero_json
from tests.integrations.oidc import mock_provider, rsa_key, sign_id_token

pytestmark = pytest.mark.django_db

ISSUER = "https://identity.xero.com"
TOKEN_URL = "https://identity.xero.com/connect/token"
REVOCATION_URL = "https://identity.xero.com/connect/revocation"
CONNECTIONS_URL = "https://api.xero.com/connections"
ORGANISATION_URL = "https://api.xero.com/api.xro/2.0/Organisation"
CALLBACK = reverse("xero_signin:callback")
EMAIL = "Zoë.Łukasz@example.com"


@pytest.fixture(autouse=True)
def oidc_settings(settings):
    settings.XERO_OIDC_ISSUER = ISSUER
    settings.XERO_SIGNIN_REDIRECT_URI = "http://testserver/accounts/xero/callback/"


def start(client, name: str) -> dict:
    response = client.post(reverse(f"xero_signin:{name}"))
    assert response.status_code == 302
    url = response["Location"]
    assert url.startswith("https://login.xero.com/identity/connect/authorize?")
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def mock_token(rsps, params: dict, *, with_refresh: bool, key=None, **claims) -> str:
    access_token = fake_jwt(authentication_event_id=AUTH_EVENT_ID, xero_userid=XERO_USER_ID)
    body = {
        "access_token": access_token,
        "expires_in": 1800,
        "token_type": "Bearer",
        "scope": params["scope"],
        "id_token": sign_id_token(
            issuer=ISSUER,
            audience="test-client-id",
            nonce=params["nonce"],
            access_token=access_token,
            xero_userid=XERO_USER_ID.upper(),
            **({"key": key} if key else {}),
            **claims,
        ),
    }
    if with_refresh:
        body["refresh_token"] = "rt-sign-up"
    rsps.post(TOKEN_URL, json=body)
    mock_provider(rsps, ISSUER)
    return access_token


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


# ---------------------------------------------------------------- start


def test_sign_up_asks_for_identity_and_accounting_scopes_with_a_nonce_in_one_consent(client):
    params = start(client, "sign_up")
    assert params["scope"].split() == [
        "offline_access",
        "openid",
        "profile",
        "email",
        "accounting.invoices",
        "accounting.contacts",
        "accounting.settings",
    ]
    assert params["redirect_uri"] == "http://testserver/accounts/xero/callback/"
    assert len(params["nonce"]) >= 32 and params["code_challenge_method"] == "S256"
    record = XeroSignInState.objects.get()
    assert record.intent == "sign_up" and record.nonce == params["nonce"] and record.user is None


def test_sign_in_asks_only_for_the_identity_when_a_person_signs_in(client):
    assert start(client, "sign_in")["scope"] == "openid profile email"


# ---------------------------------------------------------------- sign up


@responses.activate
def test_sign_up_creates_user_organisation_admin_and_connection_when_one_organisation_was_chosen(client):
    params = start(client, "sign_up")
    mock_token(responses, params, with_refresh=True)
    responses.get(CONNECTIONS_URL, json=xero_json("connections_one.json"))
    responses.get(ORGANISATION_URL, json=xero_json("organisation.json"))
    response = client.get(CALLBACK, {"code": "c", "state": params["state"]}, follow=True)
    assert "Welcome to Coordinoter. Maple Florists Ltd is connected to Xero." in messages_of(response)
    user = get_user_model().objects.get(email=EMAIL)
    assert (user.first_name, user.last_name, user.has_usable_password()) == ("Zoë", "Łukasz", False)
    assert XeroIdentity.objects.get(user=user).xero_user_id == XERO_USER_ID
    organisation = Organisation.objects.get(name="Maple Florists Ltd")
    assert Membership.objects.get(user=user, organisation=organisation).role == "admin"
    connection = XeroConnection.objects.get(organisation=organisation)
    assert (connection.status, connection.tenant_id, connection.connected_by) == ("active", TENANT_ID, user)
    assert connection.refresh_token == "rt-sign-up"
    assert response.wsgi_request.user == user  # signed in
    assert IntegrationAuditEvent.objects.filter(organisation=organisation, action="signed_up_with_xero").exists()
    assert IntegrationAuditEvent.objects.filter(organisation=organisation, action="connected").exists()


@responses.activate
def test_sign_up_names_the_organisation_apart_when_its_xero_name_is_taken(client):
    Organisation.objects.create(name="Maple Florists Ltd")
    params = start(client, "sign_up")
    mock_token(responses, params, with_refresh=True)
    responses.get(CONNECTIONS_URL, json=xero_json("connections_one.json"))
    responses.get(ORGANISATION_URL, json=xero_json("organisation.json"))
    client.get(CALLBACK, {"code": "c", "state": params["state"]})
    user = get_user_model().objects.get(email=EMAIL)
    assert Membership.objects.get(user=user).organisation.name == "Maple Florists Ltd (2)"


@responses.activate
def test_sign_up_lets_the_person_choose_when_several_organisations_were_authorised(client):
    params = start(client, "sign_up")
    mock_token(responses, params, with_refresh=True)
    responses.get(CONNECTIONS_URL, json=xero_json("connections_several.json"))
    response = client.get(CALLBACK, {"code": "c", "state": params["state"]})
    pending = XeroPendingTenantChoice.objects.get()
    assert pending.organisation is None and pending.refresh_token == "rt-sign-up"
    assert response["Location"] == reverse("xero_signin:choose", args=[pending.pk])
    page = client.get(response["Location"]).content.decode()
    assert "Maple Florists Ltd" in page and "Rose Garden Supplies" in page and "An Earlier Consent Pty" not in page
    responses.get(
        ORGANISATION_URL,
        json={"Organisations": [{"Name": "Rose Garden Supplies", "ShortCode": "!rG1", "BaseCurrency": "AUD"}]},
    )
    responses.delete(f"{CONNECTIONS_URL}/e1eede29-f875-4a5d-8470-17f6a29a88b1", status=204)
    response = client.post(response["Location"], {"tenant_id": "e0da6937-de07-4a14-adee-37abfac298ce"}, follow=True)
    assert any("Rose Garden Supplies is connected to Xero" in m for m in messages_of(response))
    assert XeroConnection.objects.get(organisation__name="Rose Garden Supplies").status == "active"


@responses.activate
def test_sign_up_choice_is_404_for_another_user(client, admin_a):
    params = start(client, "sign_up")
    mock_token(responses, params, with_refresh=True)
    responses.get(CONNECTIONS_URL, json=xero_json("connections_several.json"))
    response = client.get(CALLBACK, {"code": "c", "state": params["state"]})
    client.force_login(admin_a)
    assert client.get(response["Location"]).status_code == 404
    assert client.post(response["Location"], {"tenant_id": TENANT_ID}).status_code == 404


@responses.activate
def test_sign_up_refuses_and_creates_nothing_when_the_email_belongs_to_an_account(client):
    owner = make_user(email="zoë.łukasz@EXAMPLE.com")  # the same address, folded differently
    params = start(client, "sign_up")
    mock_token(responses, params, with_refresh=True)
    responses.get(CONNECTIONS_URL, json=xero_json("connections_one.json"))
    responses.delete(f"{CONNECTIONS_URL}/e1eede29-f875-4a5d-8470-17f6a29a88b1", status=204)
    responses.post(REVOCATION_URL, status=200)
    response = client.get(CALLBACK, {"code": "c", "state": params["state"]}, follow=True)
    assert any("An account with this email address already exists" in m for m in messages_of(response))
    assert not response.wsgi_request.user.is_authenticated
    assert get_user_model().objects.count() == 1 and not XeroIdentity.objects.exists()
    assert not Organisation.objects.exists() and not XeroConnection.objects.exists()
    assert not XeroIdentity.objects.filter(user=owner).exists()
    methods = [(c.request.method, c.request.url) for c in responses.calls]
    assert ("DELETE", f"{CONNECTIONS_URL}/e1eede29-f875-4a5d-8470-17f6a29a88b1") in methods  # nothing left behind
    assert ("POST", REVOCATION_URL) in methods


# ---------------------------------------------------------------- sign in


def _linked_user():
    user = make_user(email="linked@example.com")
    XeroIdentity.objects.create(user=user, xero_user_id=XERO_USER_ID, subject="s", linked_at="2026-11-01T00:00Z")
    return user


@responses.activate
def test_sign_in_signs_in_the_user_linked_to_the_xero_user_even_when_xero_reports_another_email(client):
    user = _linked_user()
    params = start(client, "sign_in")
    mock_token(responses, params, with_refresh=False)
    response = client.get(CALLBACK, {"code": "c", "state": params["state"]}, follow=True)
    assert response.wsgi_request.user == user
    assert "Signed in with Xero." in messages_of(response)
    assert XeroIdentity.objects.get(user=user).last_sign_in_at is not None


@responses.activate
def test_sign_in_refuses_when_no_account_is_linked_even_if_the_email_matches_one(client):
    make_user(email=EMAIL)
    params = start(client, "sign_in")
    mock_token(responses, params, with_refresh=False)
    response = client.get(CALLBACK, {"code": "c", "state": params["state"]}, follow=True)
    assert not response.wsgi_request.user.is_authenticated
    assert any("isn't linked to your Coordinoter account yet" in m for m in messages_of(response))


@responses.activate
def test_sign_in_is_refused_when_the_id_token_is_signed_by_another_key(client):
    _linked_user()
    params = start(client, "sign_in")
    mock_token(responses, params, with_refresh=False, key=rsa_key("XERO-KEY-1"))
    response = client.get(CALLBACK, {"code": "c", "state": params["state"]}, follow=True)
    assert not response.wsgi_request.user.is_authenticated
    assert any("could not verify who signed in at Xero" in m for m in messages_of(response))


@responses.activate
@pytest.mark.parametrize(
    ("answer", "said"),
    [
        ({"body": requests.ConnectionError("connection reset")}, "couldn't reach Xero just now"),
        ({"status": 503}, "couldn't reach Xero just now"),
        ({"status": 400, "json": {"error": "invalid_grant"}}, "the code may have expired"),
    ],
    ids=["unanswered", "503", "invalid_grant"],
)
def test_sign_in_blames_the_code_only_when_xero_refused_it_when_the_code_exchange_fails(client, answer, said):
    """An outage is not the code's fault: Xero never judged it (the one classifier's Retry), so the person reads that
    Xero did not answer, as Connect says; a refusal (invalid_grant) still says the code may have expired."""
    _linked_user()
    params = start(client, "sign_in")
    responses.post(TOKEN_URL, **answer)
    response = client.get(CALLBACK, {"code": "c", "state": params["state"]}, follow=True)
    assert not response.wsgi_request.user.is_authenticated
    assert any(said in m for m in messages_of(response)), messages_of(response)


@responses.activate
def test_sign_in_is_refused_when_the_nonce_belongs_to_another_round_trip(client):
    _linked_user()
    params = start(client, "sign_in")
    mock_token(responses, {**params, "nonce": "another-round-trip"}, with_refresh=False)
    response = client.get(CALLBACK, {"code": "c", "state": params["state"]}, follow=True)
    assert not response.wsgi_request.user.is_authenticated


@responses.activate
def test_sign_in_refuses_a_replayed_state_when_it_was_already_used(client):
    user = _linked_user()
    params = start(client, "sign_in")
    mock_token(responses, params, with_refresh=False)
    client.get(CALLBACK, {"code": "c", "state": params["state"]})
    client.logout()
    response = client.get(CALLBACK, {"code": "c", "state": params["state"]}, follow=True)
    assert response.wsgi_request.user != user


def test_sign_in_refuses_a_state_started_in_another_browser_session(client):
    from django.test import Client

    params = start(Client(), "sign_in")
    response = client.get(CALLBACK, {"code": "c", "state": params["state"]}, follow=True)
    assert any("started elsewhere" in m for m in messages_of(response))


@responses.activate
def test_sign_in_is_refused_while_the_xero_gate_is_locked_for_that_email(client):
    _linked_user()
    for _ in range(5):
        throttle_record(gate=Gate.XERO, identity=canonical_email(EMAIL), address="203.0.113.9")
    params = start(client, "sign_in")
    mock_token(responses, params, with_refresh=False)
    response = client.get(CALLBACK, {"code": "c", "state": params["state"]}, follow=True)
    assert not response.wsgi_request.user.is_authenticated
    assert any("Too many sign-in attempts" in m for m in messages_of(response))


@responses.activate
def test_sign_in_failures_count_against_the_email_and_the_client_address(client):
    make_user(email="someone@example.com")
    for _ in range(5):
        params = start(client, "sign_in")
        responses.reset()
        mock_token(responses, params, with_refresh=False)
        client.get(CALLBACK, {"code": "c", "state": params["state"]}, REMOTE_ADDR="198.51.100.7")
    assert throttle_locked(gate=Gate.XERO, identity=canonical_email(EMAIL), address=None)


# ---------------------------------------------------------------- link and unlink


@responses.activate
def test_link_links_the_signed_in_user_to_their_xero_login(client):
    user = make_user(email="password.person@example.com")
    client.force_login(user)
    params = start(client, "link")
    assert params["scope"] == "openid profile email"
    mock_token(responses, params, with_refresh=False)
    response = client.get(CALLBACK, {"code": "c", "state": params["state"]}, follow=True)
    assert "Xero linked: you can now sign in with Xero." in messages_of(response)
    link = XeroIdentity.objects.get(user=user)
    assert (link.xero_user_id, link.email_at_link) == (XERO_USER_ID, EMAIL)


@responses.activate
def test_link_is_refused_when_the_xero_login_is_linked_to_another_account(client):
    _linked_user()
    user = make_user(email="second@example.com")
    client.force_login(user)
    params = start(client, "link")
    mock_token(responses, params, with_refresh=False)
    response = client.get(CALLBACK, {"code": "c", "state": params["state"]}, follow=True)
    assert "This Xero login is already linked to another Coordinoter account." in messages_of(response)
    assert not XeroIdentity.objects.filter(user=user).exists()


@responses.activate
def test_link_is_refused_when_another_user_returns_with_the_state(client, admin_a, accountant_a):
    client.force_login(admin_a)
    params = start(client, "link")
    client.force_login(accountant_a)
    mock_token(responses, params, with_refresh=False)
    client.get(CALLBACK, {"code": "c", "state": params["state"]})
    assert not XeroIdentity.objects.exists()


def test_unlink_removes_the_link_when_the_user_has_a_password(client):
    user = _linked_user()
    client.force_login(user)
    response = client.post(reverse("xero_signin:unlink"), follow=True)
    assert "Xero unlinked" in messages_of(response)[0]
    assert not XeroIdentity.objects.exists()


def test_unlink_is_refused_when_xero_is_the_only_way_the_user_signs_in(client):
    user = _linked_user()
    user.set_unusable_password()
    user.save(update_fields=["password"])
    client.force_login(user)
    response = client.post(reverse("xero_signin:unlink"), follow=True)
    assert "can't be unlinked yet" in messages_of(response)[0]
    assert XeroIdentity.objects.filter(user=user).exists()


def test_unlink_needs_a_csrf_token(admin_a):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_a)
    assert client.post(reverse("xero_signin:unlink")).status_code == 403


def test_account_page_offers_to_link_when_the_user_is_not_linked(client, admin_a):
    client.force_login(admin_a)
    body = client.get(reverse("xero_signin:account")).content.decode()
    assert 'id="xero-link"' in body and "Sign in with Xero" in body


# ---------------------------------------------------------------- housekeeping


@responses.activate
def test_housekeeping_gives_back_an_abandoned_sign_up_choice_when_it_expired(client):
    from django.utils import timezone

    from integrations.tasks import xero_housekeeping_task

    params = start(client, "sign_up")
    mock_token(responses, params, with_refresh=True)
    responses.get(CONNECTIONS_URL, json=xero_json("connections_several.json"))
    client.get(CALLBACK, {"code": "c", "state": params["state"]})
    pending = XeroPendingTenantChoice.objects.get()
    XeroPendingTenantChoice.objects.filter(pk=pending.pk).update(expires_at=timezone.now())
    for connection_id in ("e1eede29-f875-4a5d-8470-17f6a29a88b1", "32587c85-a9b3-4306-ac30-b416e8f2c841"):
        responses.delete(f"{CONNECTIONS_URL}/{connection_id}", status=204)
    responses.post(REVOCATION_URL, status=200)
    result = xero_housekeeping_task.run()
    assert result["choices_expired"] == 1
    pending.refresh_from_db()
    assert pending.consumed_at is not None and pending.refresh_token == ""
    deleted = {c.request.url.rsplit("/", 1)[-1] for c in responses.calls if c.request.method == "DELETE"}
    assert deleted == {"e1eede29-f875-4a5d-8470-17f6a29a88b1", "32587c85-a9b3-4306-ac30-b416e8f2c841"}
    assert any(c.request.url == REVOCATION_URL for c in responses.calls)
    assert not Organisation.objects.exists()


def test_old_sign_in_states_are_purged_a_day_after_they_expired(client):
    import datetime as dt

    from django.utils import timezone

    from integrations.connections.connect import xero_oauth_states_purge

    start(client, "sign_in")
    XeroSignInState.objects.update(expires_at=timezone.now() - dt.timedelta(days=2))
    start(client, "sign_in")
    assert xero_oauth_states_purge() == 1
    assert XeroSignInState.objects.count() == 1


@responses.activate
def test_sign_up_is_refused_when_the_xero_login_belongs_to_a_deactivated_account(client):
    user = _linked_user()
    user.is_active = False
    user.save(update_fields=["is_active"])
    params = start(client, "sign_up")
    mock_token(responses, params, with_refresh=True)
    responses.get(CONNECTIONS_URL, json=xero_json("connections_one.json"))
    responses.delete(f"{CONNECTIONS_URL}/e1eede29-f875-4a5d-8470-17f6a29a88b1", status=204)
    responses.post(REVOCATION_URL, status=200)
    response = client.get(CALLBACK, {"code": "c", "state": params["state"]}, follow=True)
    assert response.status_code == 200 and not response.wsgi_request.user.is_authenticated
    assert any("belongs to a Coordinoter account that was closed" in m for m in messages_of(response))
    assert get_user_model().objects.count() == 1 and not Organisation.objects.exists()
