"""The id_token check of Sign in with Xero (integrations/xero/openid.py): keys found through the issuer's discovery
document, then signature, iss, aud, exp, nonce and at_hash, each refused on its own."""

import base64
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import responses

from integrations.xero import openid
from integrations.xero.openid import IdTokenInvalid
from tests.integrations.oidc import XERO_KEY, at_hash, mock_provider, public_jwk, rsa_key, sign_id_token

ROOT = Path(__file__).resolve().parents[2]
ACCESS_TOKEN = "the-access-token-issued-with-it"
NONCE = "n-0S6_WzA2Mj"
ROGUE_KEY = rsa_key("XERO-KEY-1")  # same key id, another key: a forged signature


@pytest.fixture
def issuer(settings):
    """A fresh issuer per test, so nothing cached by another test is used; its discovery document and keys."""
    base = f"https://identity-{uuid.uuid4().hex[:8]}.xero.test"
    settings.XERO_OIDC_ISSUER = base
    settings.XERO_CLIENT_ID = "test-client-id"
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        mock_provider(rsps, base)
        yield base, rsps


def id_token(issuer_url: str, *, key=XERO_KEY, **overrides) -> str:
    claims = {"nonce": NONCE, **overrides}
    return sign_id_token(issuer=issuer_url, audience="test-client-id", access_token=ACCESS_TOKEN, key=key, **claims)


def check(token: str, *, nonce: str = NONCE, access_token: str = ACCESS_TOKEN):
    return openid.id_token_validate(id_token=token, nonce=nonce, access_token=access_token)


def test_id_token_is_accepted_when_every_check_passes(issuer):
    base, rsps = issuer
    claims = check(id_token(base))
    assert claims.xero_user_id == "7f1c2d3e-aaaa-4bbb-8ccc-000000000001"
    assert (claims.email, claims.full_name) == ("Zoë.Łukasz@example.com", "Zoë Łukasz")
    check(id_token(base))  # the discovery document and the keys are cached
    assert [c.request.url.rsplit("/", 1)[-1] for c in rsps.calls] == ["openid-configuration", "jwks"]


def test_id_token_is_refused_when_the_signature_is_wrong(issuer):
    base, _ = issuer
    with pytest.raises(IdTokenInvalid) as refused:
        check(id_token(base, key=ROGUE_KEY))
    assert refused.value.reason == "signature"


def test_id_token_is_refused_when_the_issuer_is_another(issuer):
    base, _ = issuer
    with pytest.raises(IdTokenInvalid) as refused:
        check(id_token(base, iss="https://identity.evil.test"))
    assert refused.value.reason == "iss"


def test_id_token_is_refused_when_the_audience_is_another_app(issuer):
    base, _ = issuer
    with pytest.raises(IdTokenInvalid) as refused:
        check(id_token(base, aud="someone-elses-client-id"))
    assert refused.value.reason == "aud"


def test_id_token_is_refused_when_it_expired(issuer):
    base, _ = issuer
    past = int(time.time()) - 3600
    with pytest.raises(IdTokenInvalid) as refused:
        check(id_token(base, exp=past, iat=past - 300, nbf=past - 300))
    assert refused.value.reason == "exp"


def test_id_token_is_refused_when_the_nonce_differs(issuer):
    base, _ = issuer
    with pytest.raises(IdTokenInvalid) as refused:
        check(id_token(base, nonce="a-nonce-from-another-sign-in"))
    assert refused.value.reason == "nonce"


def test_id_token_is_refused_when_it_carries_no_nonce(issuer):
    base, _ = issuer
    with pytest.raises(IdTokenInvalid) as refused:
        check(id_token(base, nonce=None))
    assert refused.value.reason == "nonce"


def test_id_token_is_refused_when_at_hash_belongs_to_another_access_token(issuer):
    base, _ = issuer
    with pytest.raises(IdTokenInvalid) as refused:
        check(id_token(base, at_hash=at_hash("another-access-token")))
    assert refused.value.reason == "at_hash"


def test_id_token_is_refused_when_at_hash_is_missing(issuer):
    base, _ = issuer
    with pytest.raises(IdTokenInvalid) as refused:
        check(id_token(base, at_hash=None))
    assert refused.value.reason == "at_hash"


def test_id_token_for_several_audiences_is_accepted_only_when_we_are_its_authorized_party(issuer):
    base, _ = issuer
    audiences = ["test-client-id", "another-client-id"]
    with pytest.raises(IdTokenInvalid) as refused:
        check(id_token(base, aud=audiences))
    assert refused.value.reason == "azp"
    with pytest.raises(IdTokenInvalid) as refused:
        check(id_token(base, aud=audiences, azp="another-client-id"))
    assert refused.value.reason == "azp"
    assert check(id_token(base, aud=audiences, azp="test-client-id")).subject


def test_id_token_is_refused_when_it_has_no_issue_time(issuer):
    base, _ = issuer
    with pytest.raises(IdTokenInvalid) as refused:
        check(id_token(base, iat=None))
    assert refused.value.reason == "iat"


def test_id_token_is_refused_when_it_is_unsigned(issuer):
    base, _ = issuer
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none"}).encode()).rstrip(b"=").decode()
    body = base64.urlsafe_b64encode(json.dumps({"iss": base, "sub": "x"}).encode()).rstrip(b"=").decode()
    with pytest.raises(IdTokenInvalid):
        check(f"{header}.{body}.")


def test_id_token_is_refused_when_the_discovery_document_names_another_issuer(settings):
    settings.XERO_OIDC_ISSUER = "https://identity-mismatch.xero.test"
    with responses.RequestsMock() as rsps:
        rsps.get(
            "https://identity-mismatch.xero.test/.well-known/openid-configuration",
            json={"issuer": "https://evil.test", "jwks_uri": "https://evil.test/jwks"},
        )
        with pytest.raises(IdTokenInvalid) as refused:
            check(id_token("https://evil.test"))
    assert refused.value.reason == "discovery_mismatch"


def test_id_token_keys_are_fetched_again_when_xero_rotated_its_key(issuer):
    base, rsps = issuer
    check(id_token(base))
    rotated = rsa_key("XERO-KEY-2")
    rsps.replace(
        responses.GET,
        f"{base}/.well-known/openid-configuration/jwks",
        json={"keys": [public_jwk(XERO_KEY), public_jwk(rotated)]},
    )
    assert check(id_token(base, key=rotated)).subject


def test_the_check_imports_without_a_deprecation_warning_on_stderr():
    """Every worker and web process imports it: Authlib's own JOSE module (deprecated, gone in Authlib 2.0) printed
    an AuthlibDeprecationWarning at each start, whatever the warning filters said. The check uses joserfc."""
    code = "import django; django.setup(); import integrations.xero.openid; import tests.integrations.oidc"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "coordinoter.settings", "DJANGO_DEBUG": "true"}
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "authlib.jose" not in done.stderr and "DeprecationWarning" not in done.stderr
