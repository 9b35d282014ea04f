"""An OpenID provider for unit tests: an RS256 key, its discovery document and key set mocked with `responses`,
and id_tokens signed like Xero's (at_hash, nonce, xero_userid)."""

import base64
import hashlib
import time
import warnings

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from authlib.jose import JsonWebKey, JsonWebToken


def rsa_key(kid: str):
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return JsonWebKey.import_key(pem, {"kid": kid, "use": "sig", "alg": "RS256", "kty": "RSA"})


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
        json={"keys": [k.as_dict(is_private=False) for k in (keys or (XERO_KEY,))]},
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
    header = {"alg": "RS256", "kid": key.as_dict()["kid"], "typ": "JWT"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return JsonWebToken(["RS256"]).encode(header, claims, key).decode()
