"""Connecting an organisation to Xero: start the authorize round trip, handle the callback, and let the admin
choose the Xero organisation (or confirm a switch) when the consent was not a plain single match."""

import datetime as dt
import hashlib
import logging
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from integrations.audit import audit_event_record
from integrations.connections.states import connection_move
from integrations.models import (
    IntegrationAuditEvent,
    XeroConnection,
    XeroOAuthState,
    XeroPendingTenantChoice,
    XeroSignInState,
)
from integrations.registry import connection_event_emit
from integrations.selectors import (
    xero_connection_holding_tenant,
    xero_connection_ids_in_use,
    xero_tenant_ids_held_elsewhere,
    xero_user_has_live_connection,
)
from integrations.xero import client, oauth, tokens
from integrations.xero.exceptions import XeroError
from integrations.xero.timezones import xero_locale, xero_time_zone
from integrations.xero.types import TokenSet, XeroTenantConnection
from organisations.models import Organisation
from organisations.services import organisation_locale_from_xero

logger = logging.getLogger(__name__)
Outcome = IntegrationAuditEvent.Outcome
S = XeroConnection.Status

START_AGAIN = "Nothing was connected. Click Connect to Xero to start again."


@dataclass(frozen=True)
class ConnectOutcome:
    kind: Literal["connected", "choose", "cancelled", "refused", "failed", "invalid"]
    message: str
    pending_id: uuid.UUID | None = None


class ConnectBlocked(Exception):
    """The connection cannot start a new authorisation yet (a disconnect is still finishing)."""


def _digest(value: str) -> str:
    return hashlib.sha256((value or "").encode()).hexdigest()


def xero_connection_row(*, organisation: Organisation) -> XeroConnection:
    connection, _ = XeroConnection.objects.get_or_create(organisation=organisation)
    return connection


# ---------------------------------------------------------------- start


def xero_connect_start(*, organisation: Organisation, user: AbstractBaseUser, session_key: str) -> str:
    """Record a single-use state bound to this session, user and organisation; return Xero's authorize URL."""
    from integrations.services.connection import xero_connection_disconnect_continue

    connection = xero_connection_row(organisation=organisation)
    if connection.disconnect_step:
        connection = xero_connection_disconnect_continue(connection_id=connection.pk)
        if connection.disconnect_step:
            raise ConnectBlocked(
                "Coordinoter is still finishing the last disconnect in Xero. Try again in a few minutes."
            )
    purpose = (
        XeroOAuthState.Purpose.CONNECT if connection.status == S.NOT_CONNECTED else XeroOAuthState.Purpose.RECONNECT
    )
    state = oauth.state_new()
    verifier = oauth.code_verifier_new() if settings.XERO_USE_PKCE else ""
    now = timezone.now()
    XeroOAuthState.objects.create(
        state_digest=_digest(state),
        organisation=organisation,
        user=user,
        session_digest=_digest(session_key),
        code_verifier=verifier,
        purpose=purpose,
        created_at=now,
        expires_at=now + dt.timedelta(seconds=settings.XERO_OAUTH_STATE_TTL_SECONDS),
    )
    audit_event_record(
        organisation=organisation,
        actor=user,
        action="connect_started",
        detail={"purpose": purpose, "pkce": bool(verifier), "scopes": settings.XERO_SCOPES},
    )
    return oauth.authorization_url(state=state, code_verifier=verifier or None)


# ---------------------------------------------------------------- callback


def _state_consume(state: str) -> tuple[XeroOAuthState | None, str, str]:
    """Atomically mark the state used. Returns (record, verifier, refusal reason)."""
    if not state:
        return None, "", "missing_state"
    with transaction.atomic():
        record = XeroOAuthState.objects.select_for_update().filter(state_digest=_digest(state)).first()
        if record is None:
            return None, "", "unknown_state"
        if record.consumed_at is not None:
            return record, "", "state_already_used"
        verifier = record.code_verifier
        record.consumed_at = timezone.now()
        record.code_verifier = ""  # no longer needed: keep no secret longer than its use
        record.save(update_fields=["consumed_at", "code_verifier"])
    if record.expires_at <= record.consumed_at:
        return record, "", "state_expired"
    return record, verifier, ""


def xero_connect_callback(
    *, organisation: Organisation, user: AbstractBaseUser, session_key: str, state: str, code: str, error: str = ""
) -> ConnectOutcome:
    record, verifier, refusal = _state_consume(state)
    if not refusal and record is not None:
        mismatches = [
            name
            for name, ok in (
                ("organisation", record.organisation_id == organisation.pk),
                ("user", record.user_id == user.pk),
                ("session", record.session_digest == _digest(session_key)),
            )
            if not ok
        ]
        if mismatches:
            refusal = "state_bound_to_another_" + "_and_".join(mismatches)
    if refusal:
        detail = {"reason": refusal}
        audit_event_record(
            organisation=organisation, actor=user, action="connect_refused", outcome=Outcome.REFUSED, detail=detail
        )
        if record is not None and record.organisation_id != organisation.pk:
            audit_event_record(
                organisation=record.organisation_id,
                actor=user,
                action="connect_refused",
                outcome=Outcome.REFUSED,
                detail={**detail, "used_from_organisation": organisation.pk},
            )
        return ConnectOutcome(
            "refused",
            "That Xero sign-in can't be used here: it expired, was already used, or "
            f"was started by someone else. {START_AGAIN}",
        )
    assert record is not None
    if error:
        # The user cancelled on Xero's consent screen (https://github.com/XeroAPI/xero-ruby-oauth2-app/issues/46).
        safe_error = "".join(ch for ch in error if ch.isalnum() or ch in "_-")[:50]
        cancelled = safe_error == "access_denied"
        audit_event_record(
            organisation=organisation,
            actor=user,
            action="connect_cancelled" if cancelled else "connect_failed",
            outcome=Outcome.REFUSED if cancelled else Outcome.FAILURE,
            detail={"error": safe_error},
        )
        if cancelled:
            return ConnectOutcome(
                "cancelled",
                "You cancelled on Xero's screen, so nothing was connected. "
                "Click Connect to Xero whenever you're ready.",
            )
        return ConnectOutcome("failed", f"Xero could not complete the connection ({safe_error}). {START_AGAIN}")
    if not code:
        audit_event_record(
            organisation=organisation,
            actor=user,
            action="connect_refused",
            outcome=Outcome.REFUSED,
            detail={"reason": "missing_code"},
        )
        return ConnectOutcome("refused", f"Xero sent no authorisation code. {START_AGAIN}")

    try:
        token_set = oauth.code_exchange(code=code, code_verifier=verifier or None)
    except XeroError as exc:
        error_code = getattr(exc, "error", type(exc).__name__)
        audit_event_record(
            organisation=organisation,
            actor=user,
            action="connect_failed",
            outcome=Outcome.FAILURE,
            detail={"reason": "code_exchange_failed", "error": error_code},
        )
        return ConnectOutcome(
            "failed",
            "Xero did not accept the sign-in when Coordinoter asked for access "
            f"(the code may have expired). {START_AGAIN}",
        )

    log_context = {"organisation_id": organisation.pk}
    try:
        every_connection = client.connections_list(access_token=token_set.access_token, log_context=log_context)
    except XeroError as exc:
        audit_event_record(
            organisation=organisation,
            actor=user,
            action="connect_failed",
            outcome=Outcome.FAILURE,
            detail={"reason": "connections_unreadable", "error": type(exc).__name__},
        )
        _grant_give_back(organisation=organisation, actor=user, token_set=token_set, after="connections_unreadable")
        return ConnectOutcome(
            "failed", f"Xero let you in, but Coordinoter couldn't read which organisation you chose. {START_AGAIN}"
        )

    consent, known = _connections_of_this_consent(every_connection, token_set, organisation=organisation)
    organisations = [c for c in consent if c.tenant_type == "ORGANISATION"]
    if not organisations:
        if known:
            _disconnect_unchosen(
                organisation=organisation,
                actor=user,
                access_token=token_set.access_token,
                items=[c.as_json() for c in consent],
            )
        audit_event_record(
            organisation=organisation,
            actor=user,
            action="connect_failed",
            outcome=Outcome.FAILURE,
            detail={"reason": "no_organisation_authorised", "tenants_seen": len(every_connection)},
        )
        _grant_give_back(organisation=organisation, actor=user, token_set=token_set, after="no_organisation_authorised")
        if not known and every_connection:
            return ConnectOutcome(
                "failed",
                "Every Xero organisation you have authorised is already connected to another Coordinoter "
                f"organisation. On Xero's screen, choose a different organisation. {START_AGAIN}",
            )
        return ConnectOutcome(
            "failed",
            "Xero didn't authorise any Xero organisation. On Xero's screen, choose "
            f"the organisation to connect. {START_AGAIN}",
        )

    connection = xero_connection_row(organisation=organisation)
    previous_tenant = connection.tenant_id
    if known and len(organisations) == 1 and previous_tenant in ("", organisations[0].tenant_id):
        others = [c.as_json() for c in consent if c.id != organisations[0].id]
        return _complete(
            organisation=organisation, actor=user, token_set=token_set, chosen=organisations[0].as_json(), others=others
        )

    now = timezone.now()
    pending = XeroPendingTenantChoice.objects.create(
        organisation=organisation,
        user=user,
        session_digest=_digest(session_key),
        auth_event_id=token_set.authentication_event_id,
        xero_user_id=token_set.xero_user_id,
        candidates=[c.as_json() for c in consent],
        previous_tenant_id=previous_tenant,
        previous_tenant_name=connection.tenant_name if previous_tenant else "",
        created_at=now,
        expires_at=now + dt.timedelta(seconds=settings.XERO_OAUTH_STATE_TTL_SECONDS),
    )
    tokens.pending_tokens_save(pending=pending, token_set=token_set)
    audit_event_record(
        organisation=organisation,
        actor=user,
        action="tenant_choice_required",
        detail={
            "tenants": [c.tenant_name for c in organisations],
            "previous_tenant_id": previous_tenant,
            "reason": (
                "consent_unknown"
                if not known
                else "several_organisations"
                if len(organisations) > 1
                else "different_organisation"
            ),
        },
    )
    return ConnectOutcome("choose", "Choose the Xero organisation to connect.", pending_id=pending.pk)


def _connections_of_this_consent(
    connections: list[XeroTenantConnection], token_set: TokenSet, *, organisation: Organisation | None
) -> tuple[list[XeroTenantConnection], bool]:
    """The tenants authorised in this consent, and whether we know that for sure.

    Never simply the first one (https://github.com/XeroAPI/xero-node/issues/474): the access token's
    authentication_event_id equals the authEventId of each connection made in the same consent. When the access
    token is not a JWT, or /connections carries no authEventId, this consent can't be told apart from the grant's
    earlier ones: then every connection of this grant that no other Coordinoter organisation holds is a candidate,
    and the person chooses (never a dead end)."""
    event = token_set.authentication_event_id
    if event and any(c.auth_event_id for c in connections):
        return [c for c in connections if c.auth_event_id == event], True
    held = xero_tenant_ids_held_elsewhere(organisation, tenant_ids=[c.tenant_id for c in connections])
    return [c for c in connections if c.tenant_id not in held], False


# ---------------------------------------------------------------- choosing among several (or confirming a switch)


def xero_tenant_choose(
    *,
    organisation: Organisation,
    user: AbstractBaseUser,
    session_key: str,
    pending_id: uuid.UUID,
    tenant_id: str,
    confirm_switch: bool,
) -> ConnectOutcome:
    with transaction.atomic():
        pending = (
            XeroPendingTenantChoice.objects.select_for_update().filter(organisation=organisation, pk=pending_id).first()
        )
        refusal = _pending_refusal(pending, user=user, session_key=session_key)
        if refusal:
            audit_event_record(
                organisation=organisation,
                actor=user,
                action="tenant_choice_refused",
                outcome=Outcome.REFUSED,
                detail={"reason": refusal},
            )
            return ConnectOutcome(
                "refused", f"That choice is no longer open (it expired or was already made). {START_AGAIN}"
            )
        chosen = next(
            (
                c
                for c in pending.candidates
                if c["tenant_type"] == "ORGANISATION" and c["tenant_id"] == (tenant_id or "").lower()
            ),
            None,
        )
        if chosen is None:
            return ConnectOutcome("invalid", "Choose one of the Xero organisations listed.", pending_id=pending.pk)
        if pending.previous_tenant_id and chosen["tenant_id"] != pending.previous_tenant_id and not confirm_switch:
            return ConnectOutcome(
                "invalid",
                f"“{chosen['tenant_name']}” is not the Xero organisation this account used before "
                f"(“{pending.previous_tenant_name}”). Tick the box to confirm the switch.",
                pending_id=pending.pk,
            )
        pending.consumed_at = timezone.now()
        pending.save(update_fields=["consumed_at"])
        token_set = tokens.pending_tokens_take(pending=pending)
        others = [c for c in pending.candidates if c["id"] != chosen["id"]]
    return _complete(organisation=organisation, actor=user, token_set=token_set, chosen=chosen, others=others)


def _pending_refusal(pending: XeroPendingTenantChoice | None, *, user: AbstractBaseUser, session_key: str) -> str:
    if pending is None:
        return "unknown_choice"
    if pending.consumed_at is not None:
        return "choice_already_made"
    if pending.expires_at <= timezone.now():
        return "choice_expired"
    if pending.user_id != user.pk or pending.session_digest != _digest(session_key):
        return "choice_bound_to_another_user_or_session"
    return ""


def xero_tenant_choice_cancel(
    *, organisation: Organisation, user: AbstractBaseUser, session_key: str, pending_id: uuid.UUID
) -> ConnectOutcome:
    pending = XeroPendingTenantChoice.objects.filter(organisation=organisation, pk=pending_id).first()
    refusal = _pending_refusal(pending, user=user, session_key=session_key)
    if refusal:
        return ConnectOutcome("refused", "That choice is no longer open.")
    _pending_abandon(pending_id=pending.pk, actor=user, action="connect_cancelled")
    return ConnectOutcome(
        "cancelled",
        "Cancelled: nothing was connected, and the organisations you authorised were disconnected in Xero again.",
    )


def xero_pending_choice_expire(*, pending_id: uuid.UUID) -> None:
    """Housekeeping: an abandoned choice leaves nothing authorised in Xero."""
    if XeroPendingTenantChoice.objects.filter(pk=pending_id, organisation__isnull=True).exists():
        from integrations.signin.services import xero_signup_choice_expire  # it builds on this module

        xero_signup_choice_expire(pending_id=pending_id)  # a sign-up's choice: no organisation to audit on
        return
    _pending_abandon(pending_id=pending_id, actor=None, action="tenant_choice_expired")


def _pending_abandon(*, pending_id: uuid.UUID, actor: AbstractBaseUser | None, action: str) -> None:
    try:
        access_token = tokens.pending_access_token(pending_id=pending_id)
    except XeroError:
        access_token = ""
    with transaction.atomic():
        pending = XeroPendingTenantChoice.objects.select_for_update().filter(pk=pending_id).first()
        if pending is None or pending.consumed_at is not None:
            return
        pending.consumed_at = timezone.now()
        pending.save(update_fields=["consumed_at"])
        token_set = tokens.pending_tokens_take(pending=pending)
    organisation = pending.organisation
    audit_event_record(
        organisation=organisation,
        actor=actor,
        action=action,
        detail={"tenants": [c["tenant_name"] for c in pending.candidates]},
    )
    if access_token:
        _disconnect_unchosen(
            organisation=organisation, actor=actor, access_token=access_token, items=pending.candidates
        )
    _grant_give_back(organisation=organisation, actor=actor, token_set=token_set, after=action)


# ---------------------------------------------------------------- binding


def _complete(
    *,
    organisation: Organisation,
    actor: AbstractBaseUser,
    token_set: TokenSet,
    chosen: dict[str, Any],
    others: list[dict[str, Any]],
) -> ConnectOutcome:
    name = chosen["tenant_name"]
    holder = xero_connection_holding_tenant(organisation, tenant_id=chosen["tenant_id"])
    if holder is not None:
        audit_event_record(
            organisation=organisation,
            actor=actor,
            action="tenant_refused",
            outcome=Outcome.REFUSED,
            detail={"reason": "bound_to_another_organisation", "tenant_id": chosen["tenant_id"], "tenant_name": name},
        )
        _disconnect_unchosen(
            organisation=organisation, actor=actor, access_token=token_set.access_token, items=[chosen, *others]
        )
        _grant_give_back(organisation=organisation, actor=actor, token_set=token_set, after="tenant_refused")
        return ConnectOutcome(
            "refused",
            f"The Xero organisation “{name}” is already connected to another Coordinoter organisation. "
            "A Xero organisation can feed only one Coordinoter organisation: disconnect it there first, "
            "or connect a different Xero organisation.",
        )

    details = _organisation_details(
        organisation=organisation, access_token=token_set.access_token, tenant_id=chosen["tenant_id"]
    )
    now = timezone.now()
    try:
        with transaction.atomic():
            connection = XeroConnection.objects.select_for_update().get(organisation=organisation)
            if connection.disconnect_step:
                raise ConnectBlocked("still disconnecting")
            was_bound = connection.is_bound
            old_tenant, old_connection_id = connection.tenant_id, connection.connection_id
            old_tenant_name = connection.tenant_name
            if not old_tenant:
                action = "connected"
            elif old_tenant != chosen["tenant_id"]:
                action = "tenant_switched"
            else:
                action = "reconnected"
            moved = connection_move(connection, S.ACTIVE, at=now)
            connection.tenant_id = chosen["tenant_id"]
            connection.tenant_name = details.get("Name") or name
            connection.tenant_type = chosen["tenant_type"]
            connection.tenant_short_code = details.get("ShortCode") or ""
            connection.base_currency = details.get("BaseCurrency") or ""
            connection.connection_id = chosen["id"]
            connection.auth_event_id = token_set.authentication_event_id or chosen.get("auth_event_id", "")
            connection.xero_user_id = token_set.xero_user_id
            if not (was_bound and action == "reconnected"):
                # A reconnect of the same organisation keeps "connected since"; anything else starts afresh.
                connection.connected_at = now
                connection.connected_by = actor
            connection.disconnected_at = None
            connection.disconnected_by = None
            connection.needs_reconnect_reason = ""
            connection.reconnect_requested_at = None
            connection.reconnect_requested_reason = ""
            connection.last_error = ""
            connection.last_verified_at = now
            connection.save(
                update_fields=[
                    *moved,
                    "tenant_id",
                    "tenant_name",
                    "tenant_type",
                    "tenant_short_code",
                    "base_currency",
                    "connection_id",
                    "auth_event_id",
                    "xero_user_id",
                    "connected_at",
                    "connected_by",
                    "disconnected_at",
                    "disconnected_by",
                    "needs_reconnect_reason",
                    "reconnect_requested_at",
                    "reconnect_requested_reason",
                    "last_error",
                    "last_verified_at",
                    "updated_at",
                ]
            )
            organisation_locale_fill(organisation_id=organisation.pk, details=details)
            # The previous grant's tokens are dropped, not revoked: revoking would remove every connection of that
            # Xero user to our app, which for the same user includes the one just made (xero-facts 1.5).
            tokens.connection_tokens_save(connection=connection, token_set=token_set)
            audit_event_record(
                organisation=organisation,
                actor=actor,
                action=action,
                detail={
                    "tenant_id": connection.tenant_id,
                    "tenant_name": connection.tenant_name,
                    "connection_id": connection.connection_id,
                    "scopes": connection.scopes,
                    "previous_tenant_id": old_tenant if action == "tenant_switched" else "",
                },
            )
            connection_event_emit(organisation_id=organisation.pk, event=action)
    except (IntegrityError, ConnectBlocked) as exc:
        reason = "bound_to_another_organisation" if isinstance(exc, IntegrityError) else "still_disconnecting"
        audit_event_record(
            organisation=organisation,
            actor=actor,
            action="tenant_refused",
            outcome=Outcome.REFUSED,
            detail={"reason": reason, "tenant_id": chosen["tenant_id"], "tenant_name": name},
        )
        _disconnect_unchosen(
            organisation=organisation, actor=actor, access_token=token_set.access_token, items=[chosen, *others]
        )
        _grant_give_back(organisation=organisation, actor=actor, token_set=token_set, after="tenant_refused")
        if reason == "still_disconnecting":
            return ConnectOutcome(
                "failed", "Coordinoter is still finishing the last disconnect in Xero. Try again in a few minutes."
            )
        return ConnectOutcome(
            "refused",
            f"The Xero organisation “{name}” was just connected to another "
            "Coordinoter organisation, so it can't be connected here.",
        )

    leftovers = list(others)
    if action == "tenant_switched" and old_connection_id and old_connection_id != chosen["id"]:
        # Confirmed switch: the old organisation must not stay authorised by accident. Visible (and deletable)
        # only if the same Xero user made both consents; otherwise Xero answers 404 and we move on.
        leftovers.append(
            {
                "id": old_connection_id,
                "tenant_id": old_tenant,
                "tenant_name": old_tenant_name,
                "tenant_type": "ORGANISATION",
            }
        )
    _disconnect_unchosen(organisation=organisation, actor=actor, access_token=token_set.access_token, items=leftovers)
    verb = {"connected": "Connected", "reconnected": "Reconnected", "tenant_switched": "Switched and connected"}
    return ConnectOutcome("connected", f"{verb[action]} to {connection.tenant_name}.")


def organisation_locale_fill(*, organisation_id: int, details: dict[str, Any]) -> bool:
    """The organisation's time zone and locale from Xero's Organisation (`Timezone`, Xero's own zone names, and
    `CountryCode`), unless an admin chose them in Settings."""
    country = details.get("CountryCode") or ""
    return organisation_locale_from_xero(
        organisation_id=organisation_id,
        time_zone=xero_time_zone(timezone_name=details.get("Timezone") or "", country_code=country),
        locale=xero_locale(country_code=country),
    )


def _organisation_details(*, organisation: Organisation, access_token: str, tenant_id: str) -> dict[str, Any]:
    """GET /Organisation for the short code and base currency (accounting.settings). Best effort: the connection
    works without them, and the daily check fills them in later."""
    try:
        return client.organisation_get(
            access_token=access_token,
            tenant_id=tenant_id,
            log_context={"organisation_id": organisation.pk, "tenant_id": tenant_id},
        )
    except XeroError as exc:
        logger.warning(
            "xero.connect.organisation_unreadable",
            extra={
                "event": "xero.connect.organisation_unreadable",
                "organisation_id": organisation.pk,
                "tenant_id": tenant_id,
                "error": type(exc).__name__,
            },
        )
        return {}


def _disconnect_unchosen(
    *, organisation: Organisation, actor: AbstractBaseUser | None, access_token: str, items: list[dict[str, Any]]
) -> None:
    """Disconnect in Xero the tenants this consent authorised but we don't keep, so nothing stays authorised by
    accident; never one that some organisation's connection relies on (the same Xero user may have connected it
    for another Coordinoter organisation: same connection id)."""
    if not items:
        return
    in_use = xero_connection_ids_in_use(None, connection_ids=[item["id"] for item in items])
    for item in items:
        detail = {"tenant_id": item["tenant_id"], "tenant_name": item["tenant_name"]}
        if item["id"] in in_use:
            audit_event_record(
                organisation=organisation,
                actor=actor,
                action="unchosen_tenant_kept",
                detail={**detail, "reason": "used_by_a_coordinoter_connection"},
            )
            continue
        try:
            deleted = client.connection_delete(
                access_token=access_token, connection_id=item["id"], log_context={"organisation_id": organisation.pk}
            )
        except XeroError as exc:
            audit_event_record(
                organisation=organisation,
                actor=actor,
                action="unchosen_tenant_disconnected",
                outcome=Outcome.FAILURE,
                detail={**detail, "error": type(exc).__name__},
            )
            continue
        audit_event_record(
            organisation=organisation,
            actor=actor,
            action="unchosen_tenant_disconnected",
            detail={**detail, "already_gone": not deleted},
        )


def _grant_give_back(
    *, organisation: Organisation, actor: AbstractBaseUser | None, token_set: TokenSet, after: str
) -> None:
    """A connect that failed after the code exchange: revoke the grant it obtained, so nothing stays authorised at
    Xero by accident (the tenants of this consent were disconnected first where they were known). Not when the same
    Xero user's grant feeds a live connection, here or in another organisation: revoking removes every connection
    of that user to our app (xero-facts 1.5), so only this consent's connections go. Never raises; audited."""
    if not token_set.refresh_token:
        return
    if not token_set.xero_user_id or xero_user_has_live_connection(xero_user_id=token_set.xero_user_id):
        reason = "same_xero_user_has_a_live_connection" if token_set.xero_user_id else "xero_user_unknown"
        audit_event_record(
            organisation=organisation,
            actor=actor,
            action="grant_revoke_skipped",
            detail={"after": after, "reason": reason},
        )
        return
    try:
        oauth.token_revoke(refresh_token=token_set.refresh_token)
    except XeroError as exc:
        audit_event_record(
            organisation=organisation,
            actor=actor,
            action="grant_revoked",
            outcome=Outcome.FAILURE,
            detail={"after": after, "error": type(exc).__name__},
        )
        return
    audit_event_record(organisation=organisation, actor=actor, action="grant_revoked", detail={"after": after})


def xero_oauth_states_purge(*, older_than: dt.timedelta = dt.timedelta(days=1)) -> int:
    """Forget OAuth states and tenant choices a while after they expired (they hold no secret by then)."""
    cutoff = timezone.now() - older_than
    states, _ = XeroOAuthState.objects.filter(expires_at__lt=cutoff).delete()
    sign_ins, _ = XeroSignInState.objects.filter(expires_at__lt=cutoff).delete()
    choices, _ = XeroPendingTenantChoice.objects.filter(expires_at__lt=cutoff, consumed_at__isnull=False).delete()
    return states + sign_ins + choices


# ---------------------------------------------------------------- for sign-up with Xero (integrations/signin)


def xero_consent_organisations(
    *, connections: list[XeroTenantConnection], token_set: TokenSet, organisation: Organisation | None
) -> tuple[list[XeroTenantConnection], list[XeroTenantConnection], bool]:
    """(this consent's connections, the ORGANISATION ones no other Coordinoter organisation holds, whether Xero said
    which ones this consent made): the same rule Connect uses, for a sign-up that has no organisation yet."""
    consent, known = _connections_of_this_consent(connections, token_set, organisation=organisation)
    held = xero_tenant_ids_held_elsewhere(organisation, tenant_ids=[c.tenant_id for c in consent])
    free = [c for c in consent if c.tenant_type == "ORGANISATION" and c.tenant_id not in held]
    return consent, free, known


def xero_tenant_bind(
    *,
    organisation: Organisation,
    actor: AbstractBaseUser,
    token_set: TokenSet,
    chosen: dict[str, Any],
    others: list[dict[str, Any]],
) -> ConnectOutcome:
    """Bind a chosen Xero organisation to a (new) Coordinoter organisation exactly as Connect does."""
    xero_connection_row(organisation=organisation)
    return _complete(organisation=organisation, actor=actor, token_set=token_set, chosen=chosen, others=others)
