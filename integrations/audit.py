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
