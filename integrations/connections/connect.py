"""Connecting an organisation to Xero: start the authorize round trip and handle the callback. A plain single match
is bound at once (bind.py); anything else becomes a choice for the admin (choose.py)."""

import datetime as dt
import hashlib
import logging

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from integrations.audit import audit_event_record
from integrations.connections.bind import xero_connection_row, xero_tenant_bind
from integrations.connections.disconnect import xero_connection_disconnect_continue
from integrations.connections.give_back import connect_grant_give_back, unchosen_tenants_disconnect
from integrations.connections.types import START_AGAIN, ConnectBlocked, ConnectOutcome
from integrations.models import (
    IntegrationAuditEvent,
    XeroConnection,
    XeroOAuthState,
    XeroPendingTenantChoice,
    XeroSignInState,
)
from integrations.selectors import xero_tenant_ids_held_elsewhere
from integrations.xero import client, oauth, tokens
from integrations.xero.errors import describe, unjudged
from integrations.xero.exceptions import XeroError
from integrations.xero.types import TokenSet, XeroTenantConnection
from organisations.models import Organisation

logger = logging.getLogger(__name__)
Outcome = IntegrationAuditEvent.Outcome
S = XeroConnection.Status


def state_digest(value: str) -> str:
    """What is stored of an OAuth state or a session key: its SHA-256, never the value."""
    return hashlib.sha256((value or "").encode()).hexdigest()


# ---------------------------------------------------------------- start


def xero_connect_start(*, organisation: Organisation, user: AbstractBaseUser, session_key: str) -> str:
    """Record a single-use state bound to this session, user and organisation; return Xero's authorize URL."""
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
        state_digest=state_digest(state),
        organisation=organisation,
        user=user,
        session_digest=state_digest(session_key),
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
        record = XeroOAuthState.objects.select_for_update().filter(state_digest=state_digest(state)).first()
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
                ("session", record.session_digest == state_digest(session_key)),
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
        if unjudged(exc):  # Xero did not answer: the code was never judged, so don't blame it
            return ConnectOutcome("failed", f"{describe(exc, doing='finish connecting')} {START_AGAIN}")
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
        connect_grant_give_back(
            organisation=organisation, actor=user, token_set=token_set, after="connections_unreadable"
        )
        return ConnectOutcome(
            "failed", f"Xero let you in, but Coordinoter couldn't read which organisation you chose. {START_AGAIN}"
        )

    consent, known = _connections_of_this_consent(every_connection, token_set, organisation=organisation)
    organisations = [c for c in consent if c.tenant_type == "ORGANISATION"]
    if not organisations:
        if known:
            unchosen_tenants_disconnect(
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
        connect_grant_give_back(
            organisation=organisation, actor=user, token_set=token_set, after="no_organisation_authorised"
        )
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
        return xero_tenant_bind(
            organisation=organisation, actor=user, token_set=token_set, chosen=organisations[0].as_json(), others=others
        )

    now = timezone.now()
    pending = XeroPendingTenantChoice.objects.create(
        organisation=organisation,
        user=user,
        session_digest=state_digest(session_key),
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
