"""The token store: the only code that writes token fields, and the only code that refreshes.

Refresh discipline (https://developer.xero.com/faq/oauth2, xero-facts 1.3 and pitfall 1):
- refresh XERO_REFRESH_AHEAD_SECONDS before the 30-minute access token expires;
- lock the connection row (select_for_update), re-check after the lock (another worker may have refreshed
  while we waited), call the token endpoint, and save the rotated refresh token in the same transaction;
- the lock is held only around the token endpoint, never around any other Xero call;
- invalid_grant means the grant is dead: the connection becomes needs_reconnect, the admins are emailed, and
  nothing retries;
- a refresh whose answer was lost (timeout, 5xx) keeps the old refresh token: Xero accepts it again for 30
  minutes and answers with the newest token of the chain, so the next attempt simply recovers.
"""

import datetime as dt
import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from integrations.audit import audit_event_record
from integrations.connections.states import connection_move
from integrations.fields import encrypted_with_primary_key
from integrations.models import (
    IntegrationAuditEvent,
    XeroConnection,
    XeroOAuthState,
    XeroPendingTenantChoice,
    XeroSignInState,
)
from integrations.registry import XeroReport, connection_event_emit, xero_report
from integrations.usage import record as usage_record
from integrations.xero import oauth
from integrations.xero.exceptions import (
    XeroError,
    XeroNeedsReconnect,
    XeroNotConnected,
    XeroOAuthError,
)
from integrations.xero.types import AccessGrant, TokenSet
from organisations.models import TotpDevice

logger = logging.getLogger(__name__)

NEEDS_RECONNECT_REASON = "Xero no longer accepts Coordinoter's access (it expired or was revoked)."
_TOKEN_FIELDS = ["access_token", "refresh_token", "access_token_expires_at"]


def access_token_get(
    *,
    connection_id: int,
    force_refresh: bool = False,
    rejected_token: str = "",
    for_disconnect: bool = False,
    loaded: XeroConnection | None = None,
) -> AccessGrant:
    """A usable access token for the connection, refreshed first when it is close to expiry.

    rejected_token: the token Xero just answered 401 TokenExpired to; refresh unless someone already did.
    for_disconnect: the disconnect steps may use the tokens of a connection that is no longer active.
    loaded: the connection's row as the caller read it a moment ago, tokens included (one query fewer per call);
    a refresh still reads and locks the row itself.
    """
    if loaded is not None and loaded.pk == connection_id and "access_token" in loaded.__dict__:
        connection = loaded
    else:
        connection = XeroConnection.objects.get(pk=connection_id)
    _check_usable(connection, for_disconnect=for_disconnect)
    if not force_refresh and not rejected_token and _is_fresh(connection):
        return _grant(connection)
    return _refresh(connection_id, force=force_refresh, rejected_token=rejected_token, for_disconnect=for_disconnect)


def refresh_token_for_revoke(*, connection_id: int) -> str:
    """The stored refresh token, read only by the disconnect's revocation step (never put in an operation's payload
    or anywhere else)."""
    connection = XeroConnection.objects.get(pk=connection_id)
    _check_usable(connection, for_disconnect=True)
    return connection.refresh_token


def _refresh(connection_id: int, *, force: bool, rejected_token: str, for_disconnect: bool) -> AccessGrant:
    failure: XeroError | None = None
    with transaction.atomic():
        connection = XeroConnection.objects.select_for_update().get(pk=connection_id)
        _check_usable(connection, for_disconnect=for_disconnect)
        # Re-check after the lock: whoever held it may have refreshed already.
        if rejected_token and connection.access_token != rejected_token and not _is_expired(connection):
            _log("xero.token.refresh_skipped", connection, why="already refreshed by another worker")
            return _grant(connection)
        if not force and not rejected_token and _is_fresh(connection):
            _log("xero.token.refresh_skipped", connection, why="already refreshed by another worker")
            return _grant(connection)
        try:
            token_set = oauth.token_refresh(refresh_token=connection.refresh_token)
        except XeroOAuthError as exc:
            if exc.error != "invalid_grant":
                _record_error(connection, f"Token refresh refused by Xero ({exc.error}).")
                failure = exc
            else:
                failure = _grant_dead(connection)
        except XeroError as exc:
            # Outcome unknown: keep the current refresh token, which Xero accepts again inside its grace window.
            _record_error(connection, f"Token refresh failed: {type(exc).__name__}.")
            _log("xero.token.refresh_failed", connection, error=type(exc).__name__, level=logging.WARNING)
            failure = exc
        else:
            _store(connection, token_set)
            now = timezone.now()
            connection.last_refreshed_at = now
            connection.last_error = ""
            connection.save(
                update_fields=[
                    *_TOKEN_FIELDS,
                    "refresh_token_issued_at",
                    "last_refreshed_at",
                    "scopes",
                    "last_error",
                    "updated_at",
                ]
            )
            _log("xero.token.refreshed", connection)
            return _grant(connection)
    usage_record.xero_refresh_failure_recorded(organisation_id=connection.organisation_id)  # counted for /metrics
    raise failure


def _grant_dead(connection: XeroConnection) -> XeroNeedsReconnect:
    """invalid_grant: the refresh token is invalid, expired, revoked or reused after the grace window."""
    _log("xero.token.invalid_grant", connection, level=logging.WARNING)
    _clear(connection)
    fields = [*_TOKEN_FIELDS, "refresh_token_issued_at", "updated_at"]
    if connection.is_usable:
        fields += connection_move(connection, XeroConnection.Status.NEEDS_RECONNECT)
        connection.needs_reconnect_reason = NEEDS_RECONNECT_REASON
        fields.append("needs_reconnect_reason")
        connection.save(update_fields=fields)
        audit_event_record(
            organisation=connection.organisation_id,
            action="needs_reconnect",
            outcome=IntegrationAuditEvent.Outcome.FAILURE,
            detail={"reason": "invalid_grant", "tenant_id": connection.tenant_id},
        )
        # Reported, not queued here: a service emails the admins once this commits (the front door imports no task).
        xero_report(XeroReport.GRANT_DEAD, connection_id=connection.pk)
        connection_event_emit(organisation_id=connection.organisation_id, event="needs_reconnect")
    else:
        connection.save(update_fields=fields)
    return XeroNeedsReconnect("Xero refused the refresh token (invalid_grant): an admin must reconnect.")


def _check_usable(connection: XeroConnection, *, for_disconnect: bool) -> None:
    if for_disconnect:
        if not connection.has_tokens:
            raise XeroNotConnected("This connection holds no tokens.")
        return
    if connection.is_usable and connection.has_tokens:
        return
    if connection.disconnect_step:
        raise XeroNotConnected("This organisation is disconnecting from Xero.")
    if connection.status == XeroConnection.Status.NEEDS_RECONNECT:
        raise XeroNeedsReconnect("This organisation's Xero connection needs an admin to reconnect.")
    raise XeroNotConnected("This organisation is not connected to Xero.")


def _is_fresh(connection: XeroConnection) -> bool:
    expires_at = connection.access_token_expires_at
    if not connection.access_token or expires_at is None:
        return False
    return expires_at - timezone.now() > dt.timedelta(seconds=settings.XERO_REFRESH_AHEAD_SECONDS)


def _is_expired(connection: XeroConnection) -> bool:
    expires_at = connection.access_token_expires_at
    return not connection.access_token or expires_at is None or expires_at <= timezone.now()


def _grant(connection: XeroConnection) -> AccessGrant:
    return AccessGrant(
        access_token=connection.access_token,
        connection_id=connection.pk,
        organisation_id=connection.organisation_id,
        tenant_id=connection.tenant_id,
        expires_at=connection.access_token_expires_at,
    )


def _store(target: XeroConnection | XeroPendingTenantChoice, token_set: TokenSet) -> None:
    target.access_token = token_set.access_token
    target.refresh_token = token_set.refresh_token
    target.access_token_expires_at = token_set.expires_at
    if token_set.scopes:
        target.scopes = " ".join(token_set.scopes)
    if isinstance(target, XeroConnection):
        target.refresh_token_issued_at = timezone.now()


def _clear(target: XeroConnection | XeroPendingTenantChoice) -> None:
    target.access_token = ""
    target.refresh_token = ""
    target.access_token_expires_at = None
    if isinstance(target, XeroConnection):
        target.refresh_token_issued_at = None


def _record_error(connection: XeroConnection, message: str) -> None:
    connection.last_error = message[:500]
    connection.last_error_at = timezone.now()
    connection.save(update_fields=["last_error", "last_error_at", "updated_at"])


def _log(event: str, connection: XeroConnection, *, level: int = logging.INFO, **extra) -> None:
    logger.log(
        level,
        event,
        extra={
            "event": event,
            "organisation_id": connection.organisation_id,
            "tenant_id": connection.tenant_id,
            **extra,
        },
    )


# ---------------------------------------------------------------- writes for the connect and disconnect services


def connection_tokens_save(*, connection: XeroConnection, token_set: TokenSet) -> None:
    """Store a fresh token set on a connection the caller has locked inside its transaction."""
    _store(connection, token_set)
    connection.last_refreshed_at = timezone.now()
    connection.save(
        update_fields=[*_TOKEN_FIELDS, "refresh_token_issued_at", "last_refreshed_at", "scopes", "updated_at"]
    )


def connection_tokens_clear(*, connection: XeroConnection) -> None:
    _clear(connection)
    connection.save(update_fields=[*_TOKEN_FIELDS, "refresh_token_issued_at", "updated_at"])


def pending_tokens_save(*, pending: XeroPendingTenantChoice, token_set: TokenSet) -> None:
    _store(pending, token_set)
    pending.save(update_fields=[*_TOKEN_FIELDS, "scopes"])


def pending_tokens_take(*, pending: XeroPendingTenantChoice) -> TokenSet:
    """Read the pending token set and erase it from the row (the caller holds the row lock)."""
    token_set = pending_token_set(pending=pending)
    _clear(pending)
    pending.save(update_fields=_TOKEN_FIELDS)
    return token_set


def pending_token_set(*, pending: XeroPendingTenantChoice) -> TokenSet:
    return TokenSet(
        access_token=pending.access_token,
        refresh_token=pending.refresh_token,
        expires_at=pending.access_token_expires_at or timezone.now(),
        scopes=tuple(pending.scopes.split()),
        authentication_event_id=pending.auth_event_id,
        xero_user_id=pending.xero_user_id,
    )


def pending_access_token(*, pending_id) -> str:
    """A usable access token for a pending choice being cleaned up, refreshed under the row lock if needed."""
    with transaction.atomic():
        pending = XeroPendingTenantChoice.objects.select_for_update().get(pk=pending_id)
        if not pending.refresh_token:
            return ""
        expires_at = pending.access_token_expires_at
        if pending.access_token and expires_at and expires_at - timezone.now() > dt.timedelta(seconds=60):
            return pending.access_token
        token_set = oauth.token_refresh(refresh_token=pending.refresh_token)
        pending_tokens_save(pending=pending, token_set=token_set)
        return token_set.access_token


def pending_tokens_clear(*, pending: XeroPendingTenantChoice) -> None:
    _clear(pending)
    pending.save(update_fields=_TOKEN_FIELDS)


# ---------------------------------------------------------------- key rotation


def token_keys_rotate() -> dict[str, int]:
    """Re-encrypt every encrypted value under the first TOKEN_ENCRYPTION_KEYS key. Each row is locked while
    it is rewritten, so a concurrent refresh is never overwritten by an older token."""
    counts: dict[str, int] = {}
    targets = [
        (XeroConnection, ["access_token", "refresh_token"]),
        (XeroPendingTenantChoice, ["access_token", "refresh_token"]),
        (XeroOAuthState, ["code_verifier"]),
        (XeroSignInState, ["code_verifier"]),
        (TotpDevice, ["secret"]),  # the staff second factor (organisations.mfa): same keys, same rotation
    ]
    for model, fields in targets:
        rewritten = 0
        for pk in model.objects.values_list("pk", flat=True).iterator():
            with transaction.atomic():
                row = model.objects.select_for_update().filter(pk=pk).first()
                if row is None:
                    continue
                raw = _raw_ciphertexts(model, pk, fields)
                if all(encrypted_with_primary_key(value) for value in raw):
                    continue
                row.save(update_fields=fields)  # decrypted with any key on load, encrypted with the first on save
                rewritten += 1
        counts[model._meta.label] = rewritten
    logger.info(
        "xero.token.keys_rotated",
        extra={"event": "xero.token.keys_rotated", **{k.replace(".", "_"): v for k, v in counts.items()}},
    )
    return counts


def _raw_ciphertexts(model, pk, fields: list[str]) -> list[str]:
    from django.db import connection as db

    table = model._meta.db_table
    columns = ", ".join(db.ops.quote_name(model._meta.get_field(f).column) for f in fields)
    with db.cursor() as cursor:
        pk_column = db.ops.quote_name(model._meta.pk.column)  # TotpDevice's key is user_id
        cursor.execute(f"SELECT {columns} FROM {db.ops.quote_name(table)} WHERE {pk_column} = %s", [pk])  # noqa: S608
        row = cursor.fetchone()
    return [value or "" for value in (row or [])]
