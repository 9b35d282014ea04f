"""The organisation's audit trail: who changed what, and every look support took at the organisation's data.

`organisation_audit_record` writes an `OrganisationAuditEvent`. `audit_trail` reads the organisation's whole trail
in words: these events merged with the ones higher apps register with `register_audit_source` (integrations adds
its Xero connection events), newest first. Nothing here reads another app's models: the direction stays
`integrations -> organisations`.
"""

from __future__ import annotations

import datetime as dt
import heapq
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from organisations.models import Organisation, OrganisationAuditEvent

logger = logging.getLogger("organisations.audit")

# Keys that must never reach the trail, whatever a caller passes (an invitation's token above all).
_FORBIDDEN_KEYS = {"token", "token_hash", "password", "access_token", "refresh_token", "id_token", "code"}

ROLE_WORDS = {"admin": "Admin", "accountant": "Accountant"}


def _role(value: Any) -> str:
    return ROLE_WORDS.get(str(value), str(value))


# Each action in words: a function of the event's detail. An unknown action still reads as words, never as a code.
ACTIONS: dict[str, Callable[[dict], str]] = {
    "invitation_sent": lambda d: f"Invited {d.get('email', 'someone')} as {_role(d.get('role'))}",
    "invitation_revoked": lambda d: f"Withdrew the invitation of {d.get('email', 'someone')}",
    "invitation_accepted": lambda d: (
        f"{d.get('email', 'Someone')} accepted the invitation and joined as {_role(d.get('role'))}"
    ),
    "role_changed": lambda d: (
        f"Changed {d.get('email', 'a member')}'s role from {_role(d.get('from'))} to {_role(d.get('to'))}"
    ),
    "member_removed": lambda d: f"Removed {d.get('email', 'a member')} ({_role(d.get('role'))}) from the organisation",
    "organisation_renamed": lambda d: f"Renamed the organisation from “{d.get('from', '')}” to “{d.get('to', '')}”",
    "organisation_locale_changed": lambda d: (
        f"Set the time zone to {d.get('time_zone') or 'UTC'} and the locale to {d.get('locale') or 'ISO only'}"
    ),
    "failure_emails_changed": lambda d: (
        "Turned on the failure digest emails" if d.get("enabled") else "Turned off the failure digest emails"
    ),
    "failure_digest_sent": lambda d: (
        f"Emailed the failure digest ({d.get('invoices', 0)} invoices) to {d.get('recipients', 0)} admins"
    ),
    "support_viewed_batches": lambda d: "Support looked at the list of invoice batches",
    "support_viewed_batch": lambda d: f"Support looked at the invoice batch “{d.get('batch', '')}”",
    "support_viewed_invoice": lambda d: (
        f"Support looked at invoice {d.get('invoice', '')}" + (f" in batch “{d['batch']}”" if d.get("batch") else "")
    ),
    "support_request_replied": lambda d: (
        f"Support replied by email to {d.get('email', 'the sender')} about “{d.get('subject', '')}”"
    ),
}


def action_words(action: str, detail: dict) -> str:
    describe = ACTIONS.get(action)
    if describe is None:
        return action.replace("_", " ").capitalize()
    return describe(detail or {})


def organisation_audit_record(
    *,
    organisation: Organisation | int,
    action: str,
    actor: AbstractBaseUser | None = None,
    as_support: bool = False,
    detail: dict[str, Any] | None = None,
) -> OrganisationAuditEvent:
    clean = {k: v for k, v in (detail or {}).items() if k not in _FORBIDDEN_KEYS}
    if actor is None:
        kind = OrganisationAuditEvent.ActorKind.SYSTEM
    elif as_support:
        kind = OrganisationAuditEvent.ActorKind.SUPPORT
    else:
        kind = OrganisationAuditEvent.ActorKind.USER
    organisation_id = organisation if isinstance(organisation, int) else organisation.pk
    event = OrganisationAuditEvent.objects.create(
        organisation_id=organisation_id,
        actor=actor,
        actor_email=getattr(actor, "email", "") or "",
        actor_kind=kind,
        action=action,
        detail=clean,
    )
    logger.info(
        "organisations.audit.%s",
        action,
        extra={
            "event": f"organisations.audit.{action}",
            "organisation_id": organisation_id,
            "actor_id": getattr(actor, "pk", None),
            "actor_kind": kind,
        },
    )
    return event


# ---------------------------------------------------------------- reading the whole trail


@dataclass(frozen=True)
class AuditEntry:
    """One line of the trail, in words."""

    at: dt.datetime
    who: str  # "ana@example.com", "ana@example.com (Coordinoter support)", "Coordinoter"
    text: str
    outcome: str = "success"  # success | failure | refused: the pill's colour
    outcome_label: str = ""  # empty when it went as asked
    source: str = "organisation"  # organisation | xero


@dataclass(frozen=True)
class AuditSource:
    """A higher app's part of the trail: how many entries an organisation has, and its newest `limit`."""

    count: Callable[[Organisation], int]
    newest: Callable[[Organisation, int], list[AuditEntry]]


_sources: list[AuditSource] = []


def register_audit_source(source: AuditSource) -> None:
    if source not in _sources:
        _sources.append(source)


def _who(email: str, kind: str) -> str:
    if kind == OrganisationAuditEvent.ActorKind.SYSTEM or not email:
        return "Coordinoter"
    if kind == OrganisationAuditEvent.ActorKind.SUPPORT:
        return f"{email} (Coordinoter support)"
    return email


def _own_newest(organisation: Organisation, limit: int) -> list[AuditEntry]:
    rows = OrganisationAuditEvent.objects.filter(organisation=organisation).order_by("-created_at", "-pk")[:limit]
    return [
        AuditEntry(at=e.created_at, who=_who(e.actor_email, e.actor_kind), text=action_words(e.action, e.detail))
        for e in rows
    ]


def _own_count(organisation: Organisation) -> int:
    return OrganisationAuditEvent.objects.filter(organisation=organisation).count()


OWN = AuditSource(count=_own_count, newest=_own_newest)


class AuditTrail:
    """The merged trail as a sequence Django's Paginator can page: each page reads the newest `offset + limit`
    entries of every source (one query each) and merges them, so pages deep in a long trail cost more; the audit
    pages are read by people, a page at a time."""

    def __init__(self, organisation: Organisation, sources: list[AuditSource]):
        self.organisation = organisation
        self.sources = sources
        self._count: int | None = None

    def count(self) -> int:
        if self._count is None:
            self._count = sum(source.count(self.organisation) for source in self.sources)
        return self._count

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, item):
        if not isinstance(item, slice):
            return self[item : item + 1][0]
        start, stop = item.start or 0, item.stop if item.stop is not None else self.count()
        streams = [source.newest(self.organisation, stop) for source in self.sources]
        merged = heapq.merge(*streams, key=lambda entry: entry.at, reverse=True)
        return list(merged)[start:stop]


def audit_trail(organisation: Organisation) -> AuditTrail:
    return AuditTrail(organisation, [OWN, *_sources])
