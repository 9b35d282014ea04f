"""Xero's OAuth2 authorization-code flow through Authlib. Touches no model.

Every URL, the client credentials, the redirect URI and the scopes come from settings, defaulting to the
real Xero (https://developer.xero.com/documentation/guides/oauth2/auth-flow).
"""

import base64
import binascii
import datetime as dt
import json
import logging
import secrets
from typing import TYPE_CHECKING, Any

import requests
from django.conf import settings

from integrations.xero.exceptions import XeroOAuthError, XeroServerError, XeroTimeout
from integrations.xero.types import TokenSet

if TYPE_CHECKING:
    from authlib.integrations.requests_client import OAuth2Session

# authlib (with joserfc and cryptography's x509) is imported where it is used, not with this module: it costs every
# Celery worker about 90 ms of CPU at start-up, and a worker uses it only when a token is refreshed.

logger = logging.getLogger(__name__)


def state_new() -> str:
    return secrets.token_urlsafe(32)


def code_verifier_new() -> str:
    # RFC 7636: 43-128 characters from [A-Za-z0-9-._~]; Xero checks the same range.
    from authlib.common.security import generate_token

    return generate_token(64)


def _session(*, scope: str | None = None, redirect_uri: str | None = None) -> "OAuth2Session":
    from authlib.integrations.requests_client import OAuth2Session

    return OAuth2Session(
        client_id=settings.XERO_CLIENT_ID,
        client_secret=settings.XERO_CLIENT_SECRET,
        token_endpoint_auth_method="client_secret_basic",  # HTTP Basic, as xero-node does
        revocation_endpoint_auth_method="client_secret_basic",
        redirect_uri=redirect_uri or settings.XERO_REDIRECT_URI,
        scope=scope,
        code_challenge_method="S256" if settings.XERO_USE_PKCE else None,
    )


def authorization_url(
    *,
    state: str,
    code_verifier: str | None,
    scope: str | None = None,
    redirect_uri: str | None = None,
    nonce: str | None = None,
) -> str:
    """Xero's authorize URL. Connect uses the defaults (XERO_SCOPES, XERO_REDIRECT_URI); Sign in with Xero passes
    its own scope, its own redirect URI and a nonce that the id_token must carry back."""
    session = _session(scope=scope or settings.XERO_SCOPES, redirect_uri=redirect_uri)
    extra = {"nonce": nonce} if nonce else {}
    url, _ = session.create_authorization_url(
        settings.XERO_AUTHORIZE_URL,
        state=state,
        code_verifier=code_verifier if settings.XERO_USE_PKCE else None,
        **extra,
    )
    return url


def nonce_new() -> str:
    return secrets.token_urlsafe(32)


def code_exchange(*, code: str, code_verifier: str | None, redirect_uri: str | None = None) -> TokenSet:
    extra: dict[str, Any] = {}
    if settings.XERO_USE_PKCE and code_verifier:
        extra["code_verifier"] = code_verifier
    return _token_call(
        "code_exchange",
        lambda session: session.fetch_token(
            settings.XERO_TOKEN_URL,
            grant_type="authorization_code",
            code=code,
            redirect_uri=redirect_uri or settings.XERO_REDIRECT_URI,
            timeout=settings.XERO_HTTP_TIMEOUT_SECONDS,
            **extra,
        ),
        redirect_uri=redirect_uri,
    )


def token_refresh(*, refresh_token: str) -> TokenSet:
    return _token_call(
        "refresh",
        lambda session: session.refresh_token(
            settings.XERO_TOKEN_URL,
            refresh_token=refresh_token,
            timeout=settings.XERO_HTTP_TIMEOUT_SECONDS,
        ),
        previous_refresh_token=refresh_token,
    )


def token_revoke(*, refresh_token: str) -> None:
    """Revoke a refresh token. Xero then removes every connection of that user to this app
    (https://developer.xero.com/documentation/guides/oauth2/auth-flow/#revoking-tokens)."""
    session = _session()
    try:
        response = session.revoke_token(
            settings.XERO_REVOCATION_URL,
            token=refresh_token,
            token_type_hint="refresh_token",
            timeout=settings.XERO_HTTP_TIMEOUT_SECONDS,
        )
    except requests.RequestException as exc:
        raise XeroTimeout(
            f"Xero's revocation endpoint did not answer ({type(exc).__name__}).", outcome_unknown=True
        ) from None
    if response.status_code >= 500:
        raise XeroServerError(
            f"Xero's revocation endpoint answered HTTP {response.status_code}.", status=response.status_code
        )
    if response.status_code >= 400:
        error = _json_error(response)
        raise XeroOAuthError(
            f"Xero refused the revocation ({error or response.status_code}).",
            error=error or "http_error",
            status=response.status_code,
        )


def access_token_claims(access_token: str) -> dict[str, Any]:
    """The access token's JWT payload, read without verifying the signature: it came to us directly from the
    token endpoint over TLS, and we read only routing facts from it (authentication_event_id, xero_userid).
    Returns {} when the token is not a JWT."""
    parts = access_token.split(".")
    if len(parts) != 3:
        return {}
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return {}
    return claims if isinstance(claims, dict) else {}


def _json_error(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    return str(body.get("error", "")) if isinstance(body, dict) else ""


def _token_call(operation: str, call, *, previous_refresh_token: str = "", redirect_uri: str | None = None) -> TokenSet:
    from authlib.integrations.base_client.errors import OAuthError

    session = _session(redirect_uri=redirect_uri)
    try:
        token = call(session)
    except OAuthError as exc:
        error = str(exc.error or "oauth_error")
        logger.info(
            "xero.token.%s_refused", operation, extra={"event": f"xero.token.{operation}_refused", "oauth_error": error}
        )
        raise XeroOAuthError(
            f"Xero's token endpoint refused the {operation.replace('_', ' ')} ({error}).",
            error=error,
            description=str(exc.description or "")[:200],
        ) from None
    except requests.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        raise XeroServerError(f"Xero's token endpoint answered HTTP {status}.", status=status) from None
    except requests.RequestException as exc:
        # The request may have reached Xero: a refresh may have rotated the token. The old refresh token stays
        # usable for 30 minutes (https://developer.xero.com/faq/oauth2), so the caller simply retries.
        raise XeroTimeout(
            f"Xero's token endpoint did not answer ({type(exc).__name__}).", outcome_unknown=True
        ) from None
    except ValueError:
        raise XeroServerError("Xero's token endpoint answered something that is not a token.") from None
    access_token = token.get("access_token") or ""
    if not access_token:
        raise XeroServerError("Xero's token endpoint answered without an access token.")
    expires_in = int(token.get("expires_in") or 1800)
    claims = access_token_claims(access_token)
    scope = token.get("scope") or ""
    scopes = tuple(scope.split()) if isinstance(scope, str) else tuple(scope)
    return TokenSet(
        access_token=access_token,
        # Xero always rotates; keep the old one if an answer ever lacks it (authlib does the same).
        refresh_token=token.get("refresh_token") or previous_refresh_token,
        expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=expires_in),
        scopes=scopes,
        authentication_event_id=str(claims.get("authentication_event_id") or "").lower(),
        xero_user_id=str(claims.get("xero_userid") or "").lower(),
        id_token=str(token.get("id_token") or ""),
    )
