"""Sign in / sign up with Xero, as the sandbox serves it: the discovery document and its JWKS, id_tokens signed RS256
with at_hash and nonce, and new Xero logins and organisations made from the sandbox's own pages."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from html import escape
from urllib.parse import parse_qs, urlencode, urlsplit

import requests
from joserfc import jwt
from joserfc.jwk import KeySet

from .conftest import REDIRECT_URI

IDENTITY = "openid profile email"
SIGN_UP_SCOPE = "offline_access openid profile email accounting.invoices accounting.contacts accounting.settings"


def authorize(sandbox, http: requests.Session, scope: str, nonce: str) -> requests.Response:
    params = {
        "response_type": "code",
        "client_id": sandbox.client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": scope,
        "state": secrets.token_urlsafe(8),
        "nonce": nonce,
    }
    return http.get(sandbox.authorize_endpoint + "?" + urlencode(params), allow_redirects=False, timeout=10)


def request_id(html: str) -> str:
    return re.search(r'name="request_id" value="([^"]+)"', html).group(1)


def allow(sandbox, http: requests.Session, html: str, tenant_names: list[str]) -> dict:
    ids = [re.search(rf'value="([^"]+)" data-name="{re.escape(escape(name))}"', html).group(1) for name in tenant_names]
    response = http.post(
        sandbox.url + "/identity/connect/authorize",
        data={"request_id": request_id(html), "step": "consent", "action": "allow", "tenant": ids},
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 302, response.text[:300]
    return {k: v[0] for k, v in parse_qs(urlsplit(response.headers["Location"]).query).items()}


def exchange(sandbox, code: str) -> dict:
    response = requests.post(
        sandbox.token_endpoint,
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI},
        auth=(sandbox.client_id, sandbox.client_secret),
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()


def keys_from_discovery(sandbox) -> tuple[dict, KeySet]:
    config = requests.get(sandbox.url + "/.well-known/openid-configuration", timeout=10).json()
    return config, KeySet.import_key_set(requests.get(config["jwks_uri"], timeout=10).json())


def sign_up(sandbox, http: requests.Session, *, email: str, organisation: str, nonce: str, scope: str = SIGN_UP_SCOPE):
    login = authorize(sandbox, http, scope, nonce)
    assert 'id="create-account"' in login.text
    link = re.search(r'href="(/identity/signup\?[^"]+)"', login.text).group(1).replace("&amp;", "&")
    form = http.get(sandbox.url + link, timeout=10)
    assert form.status_code == 200 and 'id="signup-form"' in form.text
    return http.post(
        sandbox.url + "/identity/signup",
        data={
            "request_id": request_id(form.text),
            "first_name": "Zoë",
            "last_name": "Łukasz",
            "email": email,
            "password": "a-sandbox-password",
            "organisation": organisation,
            "country": "GB",
        },
        allow_redirects=False,
        timeout=10,
    )


def test_discovery_document_names_the_issuer_its_jwks_and_the_openid_scopes(sandbox):
    config, keys = keys_from_discovery(sandbox)
    assert config["issuer"] == sandbox.url
    assert config["jwks_uri"] == sandbox.url + "/.well-known/openid-configuration/jwks"
    assert {"openid", "profile", "email"} <= set(config["scopes_supported"])
    assert config["id_token_signing_alg_values_supported"] == ["RS256"]
    assert all(key.alg == "RS256" for key in keys.keys)


def test_id_token_is_signed_rs256_and_carries_nonce_and_at_hash_when_openid_was_asked(sandbox):
    http = requests.Session()
    page = authorize(sandbox, http, IDENTITY, nonce="n-123")
    logged_in = http.post(
        sandbox.url + "/identity/connect/authorize",
        data={
            "request_id": request_id(page.text),
            "step": "login",
            "email": "demo@sandbox.test",
            "password": "sandbox",
        },
        timeout=10,
    )
    params = allow(sandbox, http, logged_in.text, [])
    tokens = exchange(sandbox, params["code"])
    assert "refresh_token" not in tokens  # the identity scopes only: nothing lasting
    config, keys = keys_from_discovery(sandbox)
    token = jwt.decode(tokens["id_token"], keys)
    assert token.header["alg"] == "RS256"
    claims = token.claims
    digest = hashlib.sha256(tokens["access_token"].encode()).digest()
    assert claims["at_hash"] == base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()
    assert (claims["nonce"], claims["iss"], claims["aud"]) == ("n-123", config["issuer"], sandbox.client_id)
    assert claims["email"] == "demo@sandbox.test" and claims["xero_userid"]


def test_create_an_account_makes_a_xero_login_and_an_organisation_that_the_consent_offers(sandbox):
    http = requests.Session()
    consent = sign_up(sandbox, http, email="new.owner@example.com", organisation="Straße & Søn Ltd", nonce="n-1")
    assert consent.status_code == 200 and "Allow access" in consent.text
    assert "Straße &amp; Søn Ltd" in consent.text
    params = allow(sandbox, http, consent.text, ["Straße & Søn Ltd"])
    tokens = exchange(sandbox, params["code"])
    _, keys = keys_from_discovery(sandbox)
    claims = jwt.decode(tokens["id_token"], keys).claims
    assert (claims["email"], claims["given_name"], claims["nonce"]) == ("new.owner@example.com", "Zoë", "n-1")
    connections = requests.get(
        sandbox.connections_url, headers={"Authorization": f"Bearer {tokens['access_token']}"}, timeout=10
    ).json()
    assert [c["tenantName"] for c in connections] == ["Straße & Søn Ltd"]
    organisation = requests.get(
        sandbox.api_url + "/Organisation",
        headers={"Authorization": f"Bearer {tokens['access_token']}", "xero-tenant-id": connections[0]["tenantId"]},
        timeout=10,
    ).json()["Organisations"][0]
    assert (organisation["Name"], organisation["CountryCode"], organisation["BaseCurrency"]) == (
        "Straße & Søn Ltd",
        "GB",
        "GBP",
    )


def test_create_an_account_is_refused_when_a_xero_login_has_that_email(sandbox):
    response = sign_up(sandbox, requests.Session(), email="DEMO@sandbox.test", organisation="Dup Ltd", nonce="n")
    assert response.status_code == 400 and "already uses this email" in response.text
    assert "Dup Ltd" not in [t["name"] for t in sandbox.tenants()]


def test_add_an_organisation_after_login_offers_it_on_the_consent_screen(sandbox):
    http = requests.Session()
    page = authorize(sandbox, http, SIGN_UP_SCOPE, nonce="n")
    consent = http.post(
        sandbox.url + "/identity/connect/authorize",
        data={
            "request_id": request_id(page.text),
            "step": "login",
            "email": "solo@sandbox.test",
            "password": "sandbox",
        },
        timeout=10,
    )
    link = re.search(r'href="(/identity/organisations/new\?[^"]+)"', consent.text).group(1).replace("&amp;", "&")
    form = http.get(sandbox.url + link, timeout=10)
    consent = http.post(
        sandbox.url + "/identity/organisations/new",
        data={"request_id": request_id(form.text), "organisation": "Kiwi Kayaks 株式会社", "country": "AU"},
        timeout=10,
    )
    assert "Kiwi Kayaks 株式会社" in consent.text and "Koala Coffee Roasters (AU)" in consent.text
    params = allow(sandbox, http, consent.text, ["Kiwi Kayaks 株式会社"])
    tokens = exchange(sandbox, params["code"])
    connections = requests.get(
        sandbox.connections_url, headers={"Authorization": f"Bearer {tokens['access_token']}"}, timeout=10
    ).json()
    assert [c["tenantName"] for c in connections] == ["Kiwi Kayaks 株式会社"]


def test_add_an_organisation_needs_a_xero_login(sandbox):
    response = requests.post(sandbox.url + "/identity/organisations/new", data={"organisation": "X"}, timeout=10)
    assert response.status_code == 401
