"""Sign in with Xero: the id_token check, with Xero's keys found through its OpenID discovery document. Touches
no model.

Xero is an OpenID Connect provider (https://developer.xero.com/documentation/guides/oauth2/sign-in/): the issuer
publishes /.well-known/openid-configuration, whose jwks_uri lists the RS256 keys that sign id_tokens. The token is
checked with joserfc (the JOSE library Authlib's deprecated `authlib.jose` hands over to): signature (RS256 only),
iss, aud, exp, iat, nonce and at_hash, all required. The discovery document and the key set are cached
(XERO_OIDC_CACHE_SECONDS); a key id we don't know yet refetches the key set once, so a key rotation at Xero needs no
restart.
"""

import base64
import hashlib
import logging
from dataclasses import dataclass
from typing import Any

import requests
from django.conf import settings
from django.core.cache import cache
from joserfc import jwt
from joserfc.errors import InvalidClaimError, JoseError
from joserfc.jwk import KeySet
from joserfc.jws import extract_compact

from integrations.xero.exceptions import XeroError

logger = logging.getLogger(__name__)

_CACHE_PREFIX = "xero:oidc:"
_ALGORITHMS = ["RS256"]  # Xero signs with RS256 only; "none" and HMAC algorithms are never accepted


class IdTokenInvalid(XeroError):
    """The id_token failed a check (signature, issuer, audience, expiry, nonce, at_hash) or could not be checked."""

    def __init__(self, message: str, *, reason: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class XeroIdentityClaims:
    """Who signed in at Xero, from a checked id_token."""

    subject: str
    xero_user_id: str
    email: str
    given_name: str
    family_name: str

    @property
    def full_name(self) -> str:
        return f"{self.given_name} {self.family_name}".strip()


def _get_json(url: str) -> dict[str, Any]:
    try:
        response = requests.get(url, timeout=settings.XERO_HTTP_TIMEOUT_SECONDS, headers={"Accept": "application/json"})
    except requests.RequestException as exc:
        raise IdTokenInvalid(
            f"Xero's identity service did not answer ({type(exc).__name__}).", reason="unreachable"
        ) from None
    if response.status_code != 200:
        raise IdTokenInvalid(f"Xero's identity service answered HTTP {response.status_code}.", reason="unreachable")
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise IdTokenInvalid("Xero's identity service answered something that is not JSON.", reason="unreachable")
    return body


def discovery_document(*, refresh: bool = False) -> dict[str, Any]:
    """The issuer's /.well-known/openid-configuration, cached."""
    issuer = settings.XERO_OIDC_ISSUER.rstrip("/")
    key = _CACHE_PREFIX + "discovery:" + issuer
    document = None if refresh else cache.get(key)
    if document is None:
        document = _get_json(issuer + "/.well-known/openid-configuration")
        if str(document.get("issuer", "")).rstrip("/") != issuer or not document.get("jwks_uri"):
            # OpenID Connect Discovery 1.0, section 4.3: the issuer in the document must be the one we asked.
            raise IdTokenInvalid("Xero's discovery document names another issuer.", reason="discovery_mismatch")
        cache.set(key, document, timeout=settings.XERO_OIDC_CACHE_SECONDS)
    return document


def signing_keys(*, refresh: bool = False) -> dict[str, Any]:
    """The key set published at the discovery document's jwks_uri, cached."""
    jwks_uri = discovery_document(refresh=refresh)["jwks_uri"]
    key = _CACHE_PREFIX + "jwks:" + jwks_uri
    keys = None if refresh else cache.get(key)
    if keys is None:
        keys = _get_json(jwks_uri)
        if not isinstance(keys.get("keys"), list):
            raise IdTokenInvalid("Xero's key set has no keys.", reason="jwks_invalid")
        cache.set(key, keys, timeout=settings.XERO_OIDC_CACHE_SECONDS)
    return keys


def _kid(id_token: str) -> str:
    """The key id the token's header names, read before its signature is checked ("" when it cannot be read)."""
    try:
        return str(extract_compact(id_token.encode()).headers().get("kid", ""))
    except (JoseError, ValueError):
        return ""


def id_token_validate(*, id_token: str, nonce: str, access_token: str) -> XeroIdentityClaims:
    """Check the id_token Xero returned with this access token for the sign-in that sent `nonce`."""
    if not id_token:
        raise IdTokenInvalid("Xero returned no id_token (was the openid scope granted?).", reason="missing")
    if not nonce:
        raise IdTokenInvalid("No nonce was sent for this sign-in.", reason="nonce")
    keys = signing_keys()
    kid = _kid(id_token)
    if kid and kid not in {k.get("kid") for k in keys["keys"]}:
        keys = signing_keys(refresh=True)  # Xero may have rotated its keys since we cached them
    issuer = discovery_document()["issuer"]
    required = jwt.JWTClaimsRegistry(
        leeway=settings.XERO_OIDC_LEEWAY_SECONDS,
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": settings.XERO_CLIENT_ID},
        exp={"essential": True},
        iat={"essential": True},
        nonce={"essential": True, "value": nonce},
        at_hash={"essential": True, "value": _at_hash(access_token)},
    )
    try:
        claims = jwt.decode(id_token, KeySet.import_key_set(keys), algorithms=_ALGORITHMS).claims
        required.validate(claims)
        _audience_is_ours(claims)
    except JoseError as exc:
        reason = _reason(exc)
        logger.warning("xero.id_token.refused", extra={"event": "xero.id_token.refused", "reason": reason})
        raise IdTokenInvalid(f"Xero's id_token was refused ({reason}).", reason=reason) from None
    except ValueError:  # not a JWS at all, or a key that cannot be used
        logger.warning("xero.id_token.refused", extra={"event": "xero.id_token.refused", "reason": "malformed"})
        raise IdTokenInvalid("Xero's id_token could not be read.", reason="malformed") from None
    subject = str(claims.get("sub") or "")
    if not subject:
        raise IdTokenInvalid("Xero's id_token names no user.", reason="sub")
    return XeroIdentityClaims(
        subject=subject,
        xero_user_id=str(claims.get("xero_userid") or "").lower(),
        email=str(claims.get("email") or ""),
        given_name=str(claims.get("given_name") or ""),
        family_name=str(claims.get("family_name") or ""),
    )


def _at_hash(access_token: str) -> str:
    """OpenID Connect Core 1.0, 3.1.3.6: the left half of the access token's SHA-256 (RS256), base64url."""
    digest = hashlib.sha256(access_token.encode()).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode("ascii")


def _audience_is_ours(claims: dict[str, Any]) -> None:
    """OpenID Connect Core 1.0, 3.1.3.7: a token for several audiences names us as its authorized party."""
    audience = claims.get("aud")
    if isinstance(audience, list) and len(audience) > 1 and claims.get("azp") != settings.XERO_CLIENT_ID:
        raise InvalidClaimError("azp")


def _reason(exc: JoseError) -> str:
    """The claim a token failed on (iss, aud, exp, nonce, at_hash, ...; several, comma-separated, when missing), else
    joserfc's error code, for the log (the person signing in reads one message whatever the reason)."""
    claim = getattr(exc, "claim", "")
    if claim:
        return claim
    error = exc.error or type(exc).__name__
    return {"bad_signature": "signature"}.get(error, error)
