"""An OpenID provider for unit tests: an RS256 key, its discovery document and key set mocked with `responses`,
and id_tokens signed like Xero's (at_hash, nonce, xero_userid)."""

import base64
import hashlib
import time

from joserfc import jwt
from joserfc.jwk import RSAKey


def rsa_key(kid: str) -> RSAKey:
    return RSAKey.generate_key(2048, {"kid": kid, "use": "sig", "alg": "RS256"})


def public_jwk(key: RSAKey) -> dict:
    return key.as_dict(private=False)


XERO_KEY = rsa_key("XERO-KEY-1")


def at_hash(value: str) -> str:
    digest = hashlib.sha256(value.encode()).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()


def mock_provider(rsps, issuer: str, *keys) -> None:
    rsps.get(
        f"{issuer}/.well-known/openid-configuration",
        json={"issuer": issuer, "jwks_uri": f"{issuer}/.well-known/openid-configuration/jwks"},
    )
    rsps.get(
        f"{issuer}/.well-known/openid-configuration/jwks",
        json={"keys": [public_jwk(k) for k in (keys or (XERO_KEY,))]},
    )


def sign_id_token(
    *, issuer: str, audience: str, nonce: str | None, access_token: str, key=XERO_KEY, **overrides
) -> str:
    now = int(time.time())
    claims = {
        "iss": issuer,
        "aud": audience,
        "exp": now + 300,
        "nbf": now,
        "iat": now,
        "nonce": nonce,
        "at_hash": at_hash(access_token),
        "sub": "a3a4dbafh3495a808ed7a7b964388f53",
        "xero_userid": "7F1C2D3E-AAAA-4BBB-8CCC-000000000001",
        "email": "Zoë.Łukasz@example.com",
        "given_name": "Zoë",
        "family_name": "Łukasz",
    }
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode({"alg": "RS256", "kid": key.kid, "typ": "JWT"}, claims, key)
