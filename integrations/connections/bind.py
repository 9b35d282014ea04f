"""Binding a chosen Xero organisation to a Coordinoter organisation: the one function every path ends in (Connect's
callback, the choice among several or a confirmed switch, and sign-up with Xero), with the refusals it can meet
(the tenant feeds another organisation, a disconnect is still finishing)."""

import logging
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from integrations.audit import audit_event_record
from integrations.connections.give_back import connect_grant_give_back, unchosen_tenants_disconnect
from integrations.connections.states import connection_move
from integrations.connections.types import ConnectBlocked, ConnectOutcome
from integrations.models import IntegrationAuditEvent, XeroConnection
from integrations.registry import connection_event_emit
from integrations.selectors import xero_connection_holding_tenant
from integrations.xero import client, tokens
from integrations.xero.exceptions import XeroError
from integrations.xero.timezones import xero_locale, xero_time_zone
from integrations.xero.types import TokenSet
from organisations.models import Organisation
from organisations.services import organisation_locale_from_xero

logger = logging.getLogger(__name__)
Outcome = IntegrationAuditEvent.Outcome
S = XeroConnection.Status


def xero_connection_row(*, organisation: Organisation) -> XeroConnection:
    connection, _ = XeroConnection.objects.get_or_create(organisation=organisation)
    return connection


def xero_tenant_bind(
    *,
    organisation: Organisation,
    actor: AbstractBaseUser,
    token_set: TokenSet,
    chosen: dict[str, Any],
    others: list[dict[str, Any]],
) -> ConnectOutcome:
    """Bind the chosen Xero organisation (a candidate as stored: id, tenant_id, tenant_name, tenant_type) to the
    organisation and keep the grant's tokens; disconnect in Xero the consent's `others` (and, on a confirmed switch,
    the old organisation). Refused, it leaves nothing of this consent authorised."""
    xero_connection_row(organisation=organisation)
    name = chosen["tenant_name"]
    holder = xero_connection_holding_tenant(organisation, tenant_id=chosen["tenant_id"])
    if holder is not None:
        _tenant_refused(
            organisation=organisation,
            actor=actor,
            token_set=token_set,
            items=[chosen, *others],
            reason="bound_to_another_organisation",
        )
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
        _tenant_refused(
            organisation=organisation, actor=actor, token_set=token_set, items=[chosen, *others], reason=reason
        )
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
    unchosen_tenants_disconnect(
        organisation=organisation, actor=actor, access_token=token_set.access_token, items=leftovers
    )
    verb = {"connected": "Connected", "reconnected": "Reconnected", "tenant_switched": "Switched and connected"}
    return ConnectOutcome("connected", f"{verb[action]} to {connection.tenant_name}.")


def _tenant_refused(
    *,
    organisation: Organisation,
    actor: AbstractBaseUser,
    token_set: TokenSet,
    items: list[dict[str, Any]],
    reason: str,
) -> None:
    """The chosen tenant cannot be bound here: audit why, and leave nothing of this consent authorised."""
    chosen = items[0]
    audit_event_record(
        organisation=organisation,
        actor=actor,
        action="tenant_refused",
        outcome=Outcome.REFUSED,
        detail={"reason": reason, "tenant_id": chosen["tenant_id"], "tenant_name": chosen["tenant_name"]},
    )
    unchosen_tenants_disconnect(
        organisation=organisation, actor=actor, access_token=token_set.access_token, items=items
    )
    connect_grant_give_back(organisation=organisation, actor=actor, token_set=token_set, after="tenant_refused")


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
