"""Choosing the Xero organisation when the consent was not a plain single match (several organisations, a consent
Xero did not identify, or a switch to confirm), cancelling that choice, and its expiry. An abandoned choice leaves
nothing authorised in Xero."""

import uuid

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from integrations.audit import audit_event_record
from integrations.connections.bind import xero_tenant_bind
from integrations.connections.connect import state_digest
from integrations.connections.give_back import connect_grant_give_back, unchosen_tenants_disconnect
from integrations.connections.types import START_AGAIN, ConnectOutcome
from integrations.models import IntegrationAuditEvent, XeroPendingTenantChoice
from integrations.xero import tokens
from integrations.xero.exceptions import XeroError
from organisations.models import Organisation

Outcome = IntegrationAuditEvent.Outcome


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
    return xero_tenant_bind(organisation=organisation, actor=user, token_set=token_set, chosen=chosen, others=others)


def _pending_refusal(pending: XeroPendingTenantChoice | None, *, user: AbstractBaseUser, session_key: str) -> str:
    if pending is None:
        return "unknown_choice"
    if pending.consumed_at is not None:
        return "choice_already_made"
    if pending.expires_at <= timezone.now():
        return "choice_expired"
    if pending.user_id != user.pk or pending.session_digest != state_digest(session_key):
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
        unchosen_tenants_disconnect(
            organisation=organisation, actor=actor, access_token=access_token, items=pending.candidates
        )
    connect_grant_give_back(organisation=organisation, actor=actor, token_set=token_set, after=action)
