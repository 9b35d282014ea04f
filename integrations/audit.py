"""Writing the integration audit trail. Used by the services and the token store alike."""

import logging
from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from integrations.models import IntegrationAuditEvent
from organisations.models import Organisation

logger = logging.getLogger("integrations.audit")

# Keys that must never reach the audit trail, whatever a caller passes.
_FORBIDDEN_KEYS = {
    "access_token",
    "refresh_token",
    "id_token",
    "code",
    "code_verifier",
    "state",
    "client_secret",
    "token",
}


def audit_event_record(
    *,
    organisation: Organisation | int,
    action: str,
    actor: AbstractBaseUser | None = None,
    outcome: str = IntegrationAuditEvent.Outcome.SUCCESS,
    detail: dict[str, Any] | None = None,
    as_support: bool = False,
) -> IntegrationAuditEvent:
    clean = {k: v for k, v in (detail or {}).items() if k not in _FORBIDDEN_KEYS}
    if actor is None:
        kind = IntegrationAuditEvent.ActorKind.SYSTEM
    elif as_support:
        kind = IntegrationAuditEvent.ActorKind.SUPPORT
    else:
        kind = IntegrationAuditEvent.ActorKind.USER
    organisation_id = organisation if isinstance(organisation, int) else organisation.pk
    event = IntegrationAuditEvent.objects.create(
        organisation_id=organisation_id,
        actor=actor,
        actor_kind=kind,
        action=action,
        outcome=outcome,
        detail=clean,
    )
    logger.info(
        "integrations.audit.%s",
        action,
        extra={
            "event": f"integrations.audit.{action}",
            "organisation_id": organisation_id,
            "outcome": outcome,
            "actor_id": getattr(actor, "pk", None),
            "actor_kind": kind,
        },
    )
    return event


# ---------------------------------------------------------------- the trail in words (issue 14)

_TENANT = "the Xero organisation"


def _tenant(detail: dict) -> str:
    name = detail.get("tenant_name")
    return f"“{name}”" if name else _TENANT


_STEPS = {
    "delete_connection": "removing the connection in Xero",
    "revoke_token": "revoking Coordinoter's access in Xero",
    "clear_tokens": "erasing the stored tokens",
}
_ABOUT = {
    "needs_reconnect": "Xero needs a reconnect",
    "revoked_in_xero": "Xero was disconnected in Xero",
    "reconnect_requested": "support asks for a reconnect",
    "support_disconnected": "support disconnected Xero",
}

# Each Xero event in words, from its detail. Codes never reach the page: an unknown action is spelled out.
XERO_ACTIONS = {
    "connect_started": lambda d: "Started connecting to Xero",
    "connected": lambda d: f"Connected to {_tenant(d)}",
    "reconnected": lambda d: f"Reconnected to {_tenant(d)}",
    "tenant_switched": lambda d: f"Switched the Xero connection to {_tenant(d)}",
    "connect_cancelled": lambda d: "Cancelled connecting to Xero",
    "connect_failed": lambda d: "Connecting to Xero failed",
    "connect_refused": lambda d: "Connecting to Xero was refused",
    "tenant_refused": lambda d: f"Refused to connect {_tenant(d)}: another organisation holds it",
    "tenant_choice_required": lambda d: "Asked which Xero organisation to connect",
    "tenant_choice_refused": lambda d: "The choice of Xero organisation was refused",
    "tenant_choice_expired": lambda d: "The choice of Xero organisation expired unanswered",
    "unchosen_tenant_disconnected": lambda d: f"Disconnected {_tenant(d)}, which was authorised but not chosen",
    "unchosen_tenant_kept": lambda d: f"Kept {_tenant(d)} connected in Xero: another organisation uses it",
    "disconnect_requested": lambda d: (
        "Disconnected from Xero"
        + (f" ({_tenant(d)})" if d.get("tenant_name") else "")
        + (f". Reason: {d['reason']}" if d.get("reason") else "")
    ),
    "disconnected": lambda d: f"Finished disconnecting {_tenant(d)} in Xero",
    "xero_connection_deleted": lambda d: "Removed the connection in Xero",
    "xero_connection_kept": lambda d: "Kept the connection in Xero: another organisation uses it",
    "token_revoked": lambda d: "Revoked Coordinoter's access in Xero",
    "token_revoke_skipped": lambda d: (
        "Kept Coordinoter's access in Xero: the same Xero user connects another organisation"
    ),
    "grant_revoked": lambda d: "Gave back Xero's access after a failed connect",
    "grant_revoke_skipped": lambda d: "Kept Xero's access after a failed connect: it serves a live connection",
    "token_refreshed": lambda d: "Refreshed the Xero access token",
    "keepalive_refresh": lambda d: "Refreshed the Xero access token to keep the connection alive",
    "needs_reconnect": lambda d: "Xero stopped accepting Coordinoter's access: an admin must reconnect",
    "revoked_in_xero": lambda d: f"Found {_tenant(d)} disconnected in Xero",
    "reconnect_requested": lambda d: (
        "Asked the admins to reconnect Xero" + (f". Reason: {d['reason']}" if d.get("reason") else "")
    ),
    "admins_emailed": lambda d: (
        f"Emailed {d.get('recipients', 0)} admins: "
        + _ABOUT.get(str(d.get("about", "")), str(d.get("about", "")).replace("_", " "))
    ),
    "xero_write_retried": lambda d: "Retried a write to Xero that needed attention",
    "xero_webhooks_retry_failed": lambda d: f"Retried {d.get('events', 0)} failed Xero webhook events",
    "xero_reconcile_requested": lambda d: "Asked for a check of everything changed in Xero",
}
_OUTCOME_WORDS = {"failure": "Failed", "refused": "Refused"}


def xero_action_words(action: str, detail: dict | None) -> str:
    detail = detail or {}
    if action.startswith("disconnect_step_"):
        step = _STEPS.get(action.removeprefix("disconnect_step_"), action.removeprefix("disconnect_step_"))
        return f"Disconnecting: {step.replace('_', ' ')}"
    describe = XERO_ACTIONS.get(action)
    if describe is None:
        return action.replace("_", " ").capitalize()
    return describe(detail)


def _audit_entries(organisation: Organisation, limit: int):
    from organisations.audit import AuditEntry

    rows = (
        IntegrationAuditEvent.objects.filter(organisation=organisation)
        .select_related("actor")
        .order_by("-created_at", "-pk")[:limit]
    )
    entries = []
    for e in rows:
        if e.actor is None:
            who = "Coordinoter"
        elif e.actor_kind == IntegrationAuditEvent.ActorKind.SUPPORT:
            who = f"{e.actor.email} (Coordinoter support)"
        else:
            who = e.actor.email
        entries.append(
            AuditEntry(
                at=e.created_at,
                who=who,
                text=xero_action_words(e.action, e.detail),
                outcome=e.outcome,
                outcome_label=_OUTCOME_WORDS.get(e.outcome, ""),
                source="xero",
            )
        )
    return entries


def _audit_count(organisation: Organisation) -> int:
    return IntegrationAuditEvent.objects.filter(organisation=organisation).count()


def xero_audit_source():
    """The Xero events' part of the organisation's trail (registered from IntegrationsConfig.ready)."""
    from organisations.audit import AuditSource

    return AuditSource(count=_audit_count, newest=_audit_entries)
