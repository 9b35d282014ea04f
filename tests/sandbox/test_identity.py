"""Identity: authorize pages, token endpoint, refresh rotation, revocation, /connections, JWTs."""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.jwk import KeySet

from xero_sandbox.testing import (
    DEFAULT_SCOPE,
    SandboxError,
    complete_consent,
    decode_jwt_unverified,
    pkce_pair,
)

from .conftest import REDIRECT_URI


def query(url: str) -> dict:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def exchange(sandbox, code, verifier=None, auth=None, redirect_uri=REDIRECT_URI):
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    if verifier:
        data["code_verifier"] = verifier
    return requests.post(
        sandbox.token_endpoint, data=data, timeout=10, auth=auth or (sandbox.client_id, sandbox.client_secret)
    )


def refresh(sandbox, refresh_token):
    return requests.post(
        sandbox.token_endpoint,
        timeout=10,
        auth=(sandbox.client_id, sandbox.client_secret),
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
    )


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def test_oauth_round_trip_succeeds_when_client_is_authlib_with_pkce(sandbox):
    client = OAuth2Session(
        sandbox.client_id,
        sandbox.client_secret,
        scope=DEFAULT_SCOPE,
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
    )
    verifier = "v" * 20 + pkce_pair()[0]
    url, state = client.create_authorization_url(sandbox.authorize_endpoint, code_verifier=verifier)
    assert query(url)["code_challenge"] == create_s256_code_challenge(verifier)
    callback = complete_consent(url, tenants=["Koala"])
    params = query(callback)
    assert callback.startswith(REDIRECT_URI) and params["state"] == state and "code" in params
    token = client.fetch_token(sandbox.token_endpoint, authorization_response=callback, code_verifier=verifier)
    assert token["token_type"] == "Bearer" and token["expires_in"] == 1800
    assert {"access_token", "refresh_token", "id_token", "scope"} <= set(token)

    jwks = KeySet.import_key_set(requests.get(sandbox.url + "/.well-known/openid-configuration/jwks").json())
    claims = jwt.decode(token["access_token"], jwks).claims
    jwt.JWTClaimsRegistry(exp={"essential": True}).validate(claims)
    assert claims["iss"] == sandbox.url and claims["client_id"] == sandbox.client_id
    for name in ("authentication_event_id", "xero_userid", "sub", "exp", "iat", "scope", "jti"):
        assert name in claims
    assert claims["exp"] - claims["iat"] == 1800
    id_claims = jwt.decode(token["id_token"], jwks).claims
    assert id_claims["aud"] == sandbox.client_id and id_claims["email"] == "demo@sandbox.test"

    connections = client.get(sandbox.connections_url).json()
    assert [c["tenantName"] for c in connections] == ["Koala Coffee Roasters (AU)"]
    assert connections[0]["authEventId"] == claims["authentication_event_id"]
    assert set(connections[0]) == {
        "id",
        "authEventId",
        "tenantId",
        "tenantType",
        "tenantName",
        "createdDateUtc",
        "updatedDateUtc",
    }
    org = client.get(sandbox.api_url + "/Organisation", headers={"xero-tenant-id": connections[0]["tenantId"]})
    assert org.status_code == 200 and org.json()["Organisations"][0]["BaseCurrency"] == "AUD"


def test_discovery_lists_endpoints_when_fetched(sandbox):
    config = requests.get(sandbox.url + "/.well-known/openid-configuration").json()
    assert config["issuer"] == sandbox.url
    assert config["token_endpoint"] == sandbox.token_endpoint
    assert config["authorization_endpoint"] == sandbox.authorize_endpoint
    assert config["revocation_endpoint"] == sandbox.revocation_endpoint
    assert requests.get(config["jwks_uri"]).json()["keys"][0]["alg"] == "RS256"


def test_authorize_redirects_with_access_denied_when_user_cancels(sandbox):
    callback = complete_consent(sandbox.authorize_url(state="abc"), allow=False)
    assert callback.startswith(REDIRECT_URI)
    assert query(callback) == {"error": "access_denied", "state": "abc"}


@pytest.mark.parametrize(
    "change,message",
    [
        ({"redirect_uri": "http://evil.example/cb"}, "Invalid redirect_uri"),
        ({"client_id": "someone-else"}, "unauthorized_client"),
        ({"scope": "openid accounting.nonsense"}, "Invalid scope for client"),
        ({"scope": "offline_access accounting.transactions"}, "Invalid scope for client"),
    ],
)
def test_authorize_shows_error_page_without_redirect_when_request_is_invalid(sandbox, change, message):
    url = sandbox.authorize_url()
    params = query(url) | change
    response = requests.get(sandbox.authorize_endpoint, params=params, allow_redirects=False)
    assert response.status_code == 400 and "Location" not in response.headers
    assert message in response.text


def test_legacy_scopes_are_accepted_when_scope_set_is_mixed(sandbox):
    sandbox.settings(scope_set="mixed")
    tokens = sandbox.connect("offline_access accounting.transactions accounting.settings")
    assert "accounting.transactions" in tokens["scope"]


def test_login_is_refused_when_password_is_wrong(sandbox):
    with pytest.raises(SandboxError, match="incorrect"):
        complete_consent(sandbox.authorize_url(), password="wrong")


def test_consent_requires_one_org_when_bulk_connect_is_disabled(sandbox):
    url = sandbox.authorize_url(acr_values="bulk_connect:false")
    with pytest.raises(SandboxError, match="only one"):
        complete_consent(url, tenants=["Koala", "Thames"])
    callback = complete_consent(url, tenants=["Thames"])
    assert "code" in query(callback)


def test_code_exchange_fails_when_pkce_verifier_is_wrong(sandbox):
    verifier, challenge = pkce_pair()
    code = query(complete_consent(sandbox.authorize_url(code_challenge=challenge)))["code"]
    assert exchange(sandbox, code).json() == {"error": "invalid_grant"}
    code = query(complete_consent(sandbox.authorize_url(code_challenge=challenge)))["code"]
    response = exchange(sandbox, code, verifier="x" * 50)
    assert response.status_code == 400 and response.json() == {"error": "invalid_grant"}
    code = query(complete_consent(sandbox.authorize_url(code_challenge=challenge)))["code"]
    assert exchange(sandbox, code, verifier=verifier).status_code == 200


def test_code_is_rejected_when_used_twice_or_after_five_minutes(sandbox):
    code = query(complete_consent(sandbox.authorize_url()))["code"]
    assert exchange(sandbox, code).status_code == 200
    assert exchange(sandbox, code).json() == {"error": "invalid_grant"}
    code = query(complete_consent(sandbox.authorize_url()))["code"]
    sandbox.advance_clock(301)
    assert exchange(sandbox, code).json() == {"error": "invalid_grant"}


def test_token_endpoint_rejects_client_when_secret_is_wrong(sandbox):
    code = query(complete_consent(sandbox.authorize_url()))["code"]
    response = exchange(sandbox, code, auth=(sandbox.client_id, "nope"))
    assert response.status_code == 400 and response.json() == {"error": "invalid_client"}


def test_token_endpoint_accepts_client_secret_post_when_sent_in_form(sandbox):
    code = query(complete_consent(sandbox.authorize_url()))["code"]
    response = requests.post(
        sandbox.token_endpoint,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "client_id": sandbox.client_id,
            "client_secret": sandbox.client_secret,
        },
    )
    assert response.status_code == 200


def test_token_response_omits_refresh_and_id_token_when_scopes_not_granted(sandbox):
    tokens = sandbox.connect("accounting.settings")
    assert "refresh_token" not in tokens and "id_token" not in tokens


def test_refresh_rotates_and_old_token_works_only_within_grace_when_reused(sandbox, tokens):
    first = tokens["refresh_token"]
    rotated = refresh(sandbox, first)
    assert rotated.status_code == 200
    second = rotated.json()["refresh_token"]
    assert second != first
    claims = decode_jwt_unverified(rotated.json()["access_token"])
    assert claims["authentication_event_id"] == decode_jwt_unverified(tokens["access_token"])["authentication_event_id"]
    # The response was "lost": the old token still works, as often as needed, for 30 minutes.
    sandbox.advance_clock(29 * 60)
    for _ in range(2):
        again = refresh(sandbox, first)
        assert again.status_code == 200 and again.json()["refresh_token"] == second
    sandbox.advance_clock(2 * 60)
    expired = refresh(sandbox, first)
    assert expired.status_code == 400 and expired.json() == {"error": "invalid_grant"}
    third = refresh(sandbox, second)
    assert third.status_code == 200 and third.json()["refresh_token"] not in (first, second)


def test_refresh_fails_when_token_unused_for_sixty_days(sandbox, tokens):
    sandbox.advance_clock(60 * 86400 + 5)
    assert refresh(sandbox, tokens["refresh_token"]).json() == {"error": "invalid_grant"}


def test_revocation_removes_all_connections_when_refresh_token_revoked(sandbox, tokens):
    response = requests.post(
        sandbox.revocation_endpoint,
        auth=(sandbox.client_id, sandbox.client_secret),
        data={"token": tokens["refresh_token"]},
    )
    assert response.status_code == 200
    assert requests.get(sandbox.connections_url, headers=bearer(tokens["access_token"])).json() == []
    assert refresh(sandbox, tokens["refresh_token"]).json() == {"error": "invalid_grant"}
    tenant = tokens["connections"][0]["tenantId"]
    api = requests.get(
        sandbox.api_url + "/Invoices", headers=bearer(tokens["access_token"]) | {"xero-tenant-id": tenant}
    )
    assert api.status_code == 403 and api.json()["Detail"] == "AuthenticationUnsuccessful"


def test_connections_filter_by_auth_event_when_two_consents_happened(sandbox):
    first = sandbox.connect(tenants=["Koala"])
    second = sandbox.connect(tenants=["Thames"])
    event = decode_jwt_unverified(second["access_token"])["authentication_event_id"]
    everything = requests.get(sandbox.connections_url, headers=bearer(second["access_token"])).json()
    assert len(everything) == 2
    filtered = requests.get(
        sandbox.connections_url, params={"authEventId": event}, headers=bearer(second["access_token"])
    ).json()
    assert [c["tenantName"] for c in filtered] == ["Thames Bicycle Works (UK)"]
    assert first["connections"][0]["authEventId"] != event


def test_connection_updated_date_changes_when_tenant_reconnected(sandbox):
    first = sandbox.connect(tenants=["Koala"])["connections"][0]
    sandbox.advance_clock(10)
    again = sandbox.connect(tenants=["Koala"])["connections"][0]
    assert again["createdDateUtc"] == first["createdDateUtc"]
    assert again["updatedDateUtc"] > first["updatedDateUtc"]


def test_delete_connection_gives_403_when_tenant_id_is_used(sandbox, tokens):
    connection = tokens["connections"][0]
    headers = bearer(tokens["access_token"])
    wrong = requests.delete(f"{sandbox.connections_url}/{connection['tenantId']}", headers=headers)
    assert wrong.status_code == 403
    assert requests.delete(f"{sandbox.connections_url}/{connection['id']}", headers=headers).status_code == 204
    assert requests.delete(f"{sandbox.connections_url}/{connection['id']}", headers=headers).status_code == 404
    remaining = requests.get(sandbox.connections_url, headers=headers).json()
    assert connection["id"] not in [c["id"] for c in remaining]
    api = requests.get(sandbox.api_url + "/Invoices", headers=headers | {"xero-tenant-id": connection["tenantId"]})
    assert api.status_code == 403


def test_api_answers_401_token_expired_when_access_token_expired(sandbox, tokens, au_tenant):
    headers = bearer(tokens["access_token"]) | {"xero-tenant-id": au_tenant}
    assert requests.get(sandbox.api_url + "/Invoices", headers=headers).status_code == 200
    assert sandbox.expire_tokens(tenant_id=au_tenant) >= 1
    response = requests.get(sandbox.api_url + "/Invoices", headers=headers)
    assert response.status_code == 401
    assert response.json()["Detail"].startswith("TokenExpired")
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    fresh = refresh(sandbox, tokens["refresh_token"]).json()["access_token"]
    sandbox.advance_clock(1801)
    response = requests.get(sandbox.api_url + "/Invoices", headers=bearer(fresh) | {"xero-tenant-id": au_tenant})
    assert response.status_code == 401 and "TokenExpired" in response.json()["Detail"]


def test_api_answers_403_when_tenant_header_missing_or_wrong(sandbox, tokens):
    headers = bearer(tokens["access_token"])
    for tenant in (None, "00000000-0000-0000-0000-000000000000", "garbage"):
        extra = {"xero-tenant-id": tenant} if tenant else {}
        response = requests.get(sandbox.api_url + "/Invoices", headers=headers | extra)
        assert response.status_code == 403
        assert response.json()["Title"] == "Forbidden" and response.json()["Detail"] == "AuthenticationUnsuccessful"


def test_api_answers_401_when_token_missing_or_forged(sandbox, au_tenant):
    assert requests.get(sandbox.api_url + "/Invoices", headers={"xero-tenant-id": au_tenant}).status_code == 401
    forged = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."
    response = requests.get(sandbox.api_url + "/Invoices", headers=bearer(forged) | {"xero-tenant-id": au_tenant})
    assert response.status_code == 401


def test_api_refuses_call_when_scope_not_granted(sandbox, au_tenant):
    tokens = sandbox.connect("offline_access accounting.settings")
    headers = bearer(tokens["access_token"]) | {"xero-tenant-id": au_tenant}
    assert requests.get(sandbox.api_url + "/Accounts", headers=headers).status_code == 200
    response = requests.get(sandbox.api_url + "/Invoices", headers=headers)
    assert response.status_code == 401 and "insufficient_scope" in response.headers["WWW-Authenticate"]


def test_userinfo_returns_profile_when_openid_granted(sandbox, tokens):
    info = requests.get(sandbox.url + "/connect/userinfo", headers=bearer(tokens["access_token"])).json()
    assert info["email"] == "demo@sandbox.test" and info["given_name"] == "Demo" and "xero_userid" in info


def test_pkce_challenge_is_s256_of_verifier_when_generated_by_helper():
    verifier, challenge = pkce_pair()
    digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    assert challenge == digest and 43 <= len(verifier) <= 128


def test_bulk_connect_gives_each_tenant_its_own_user_and_working_tokens_when_asked_for_many(sandbox):
    tenants = [t["tenantId"] for t in sandbox.tenants()]
    issued = sandbox.admin("POST", "/bulk-connect", {"count": 2})
    assert [i["tenantId"] for i in issued] == tenants[:2]
    assert len({i["refresh_token"] for i in issued}) == 2
    for item in issued:
        bearer = {"Authorization": f"Bearer {item['access_token']}"}
        listed = requests.get(sandbox.connections_url, headers=bearer, timeout=10).json()
        assert [c["tenantId"] for c in listed] == [item["tenantId"]]  # one user per tenant: /connections stays small
        answer = requests.get(
            sandbox.api_url + "/Organisation", headers={**bearer, "xero-tenant-id": item["tenantId"]}, timeout=10
        )
        assert answer.status_code == 200
    refreshed = requests.post(
        sandbox.token_endpoint,
        data={"grant_type": "refresh_token", "refresh_token": issued[0]["refresh_token"]},
        auth=(sandbox.client_id, sandbox.client_secret),
        timeout=10,
    )
    assert refreshed.status_code == 200 and refreshed.json()["refresh_token"] != issued[0]["refresh_token"]


def test_bulk_connect_refuses_an_unknown_tenant_when_named(sandbox):
    with pytest.raises(SandboxError, match="404"):
        sandbox.admin("POST", "/bulk-connect", {"tenants": ["not-a-tenant"]})
