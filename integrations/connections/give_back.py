"""Leaving nothing authorised at Xero by accident: after a connect, a sign-up or a sign-in that keeps less than the
consent granted, disconnect the tenants we do not keep and revoke the grant, unless something we rely on shares it.

The two steps are shared by Connect (integrations/connections/) and Sign in with Xero (integrations/signin/); each
reports what happened its own way (Connect audits on the organisation, sign-in logs: it has no organisation yet).
Neither raises.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from integrations.audit import audit_event_record
from integrations.models import IntegrationAuditEvent
from integrations.selectors import xero_connection_ids_in_use, xero_user_has_live_connection
from integrations.xero import client, oauth
from integrations.xero.exceptions import XeroError
from integrations.xero.types import TokenSet
from organisations.models import Organisation

Outcome = IntegrationAuditEvent.Outcome


@dataclass(frozen=True)
class TenantGiveBack:
    """What became of one tenant of the consent: kept (a Coordinoter connection uses it), deleted in Xero (or
    already gone), or not deleted because Xero refused (`error`, the exception's class name)."""

    item: dict[str, Any]
    kept: bool = False
    already_gone: bool = False
    error: str = ""


@dataclass(frozen=True)
class GrantGiveBack:
    """What became of the grant: `revoked`, or `skipped` with a reason, or `error` (the exception's class name).
    No refresh token (the identity scopes only): nothing lasting was granted, so neither revoked nor skipped."""

    revoked: bool = False
    skipped: str = ""
    error: str = ""


def consent_tenants_disconnect(
    *, access_token: str, items: list[dict[str, Any]], log_context: dict[str, Any] | None = None
) -> list[TenantGiveBack]:
    """DELETE /connections/{id} for each item ({"id", "tenant_id", "tenant_name", ...}), never one that some
    organisation's connection relies on (the same Xero user may have connected it for another Coordinoter
    organisation: same connection id)."""
    if not items:
        return []
    in_use = xero_connection_ids_in_use(None, connection_ids=[item["id"] for item in items])
    results = []
    for item in items:
        if item["id"] in in_use:
            results.append(TenantGiveBack(item=item, kept=True))
            continue
        try:
            deleted = client.connection_delete(
                access_token=access_token, connection_id=item["id"], log_context=log_context
            )
        except XeroError as exc:
            results.append(TenantGiveBack(item=item, error=type(exc).__name__))
            continue
        results.append(TenantGiveBack(item=item, already_gone=not deleted))
    return results


def grant_revoke(*, token_set: TokenSet) -> GrantGiveBack:
    """Revoke the grant, unless the same Xero user's grant feeds a live connection, here or in another organisation:
    revoking removes every connection of that user to our app (xero-facts 1.5)."""
    if not token_set.refresh_token:
        return GrantGiveBack()
    if not token_set.xero_user_id or xero_user_has_live_connection(xero_user_id=token_set.xero_user_id):
        reason = "same_xero_user_has_a_live_connection" if token_set.xero_user_id else "xero_user_unknown"
        return GrantGiveBack(skipped=reason)
    try:
        oauth.token_revoke(refresh_token=token_set.refresh_token)
    except XeroError as exc:
        return GrantGiveBack(error=type(exc).__name__)
    return GrantGiveBack(revoked=True)


# ---------------------------------------------------------------- Connect's reporting: audited on the organisation


def unchosen_tenants_disconnect(
    *, organisation: Organisation, actor: AbstractBaseUser | None, access_token: str, items: list[dict[str, Any]]
) -> None:
    """Disconnect in Xero the tenants this consent authorised but we don't keep; audit each."""
    results = consent_tenants_disconnect(
        access_token=access_token, items=items, log_context={"organisation_id": organisation.pk}
    )
    for result in results:
        detail = {"tenant_id": result.item["tenant_id"], "tenant_name": result.item["tenant_name"]}
        action, outcome = "unchosen_tenant_disconnected", Outcome.SUCCESS
        if result.kept:
            action, detail = "unchosen_tenant_kept", {**detail, "reason": "used_by_a_coordinoter_connection"}
        elif result.error:
            outcome, detail = Outcome.FAILURE, {**detail, "error": result.error}
        else:
            detail = {**detail, "already_gone": result.already_gone}
        audit_event_record(organisation=organisation, actor=actor, action=action, outcome=outcome, detail=detail)


def connect_grant_give_back(
    *, organisation: Organisation, actor: AbstractBaseUser | None, token_set: TokenSet, after: str
) -> None:
    """A connect that failed after the code exchange: revoke the grant it obtained (the tenants of this consent were
    disconnected first where they were known); audited."""
    result = grant_revoke(token_set=token_set)
    if result.skipped:
        audit_event_record(
            organisation=organisation,
            actor=actor,
            action="grant_revoke_skipped",
            detail={"after": after, "reason": result.skipped},
        )
    elif result.error:
        audit_event_record(
            organisation=organisation,
            actor=actor,
            action="grant_revoked",
            outcome=Outcome.FAILURE,
            detail={"after": after, "error": result.error},
        )
    elif result.revoked:
        audit_event_record(organisation=organisation, actor=actor, action="grant_revoked", detail={"after": after})
