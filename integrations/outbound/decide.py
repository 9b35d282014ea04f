"""Claim and decide, the first half of the engine's loop (integrations/outbound/engine.py): take the operation row
under select_for_update with a lease, counting the attempt (and writing down the call about to be made) in the same
commit, before any call; and choose that call from the stored attempts: check, send (again under the same
Idempotency-Key while Xero still remembers it) or look the result up first."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from integrations.outbound.models import OutboundAttempt, OutboundOperation
from integrations.outbound.record import RunResult
from integrations.outbound.states import FINAL, operation_move
from integrations.xero.errors import key_remembered

S = OutboundOperation.State
ACT = OutboundAttempt.Action
OUT = OutboundAttempt.Outcome


def claim(operation_id: int, worker: str) -> tuple[OutboundOperation, str] | RunResult:
    with transaction.atomic():
        operation = OutboundOperation.objects.select_for_update().filter(pk=operation_id).first()
        if operation is None or operation.state in FINAL or operation.state == S.NEEDS_ATTENTION:
            return RunResult("noop")
        now = timezone.now()
        if operation.state == S.SENDING:
            if operation.lease_until and operation.lease_until > now:
                return RunResult("busy", detail=operation.leased_by)
            if operation.in_flight:
                # The previous holder died mid-call: that call's outcome is unknown.
                OutboundAttempt.objects.create(
                    operation=operation,
                    action=operation.in_flight,
                    outcome=OUT.UNKNOWN,
                    started_at=now,
                    detail=f"lost: worker {operation.leased_by} stopped before recording its call",
                )
        elif operation.next_attempt_at and operation.next_attempt_at > now + timedelta(milliseconds=50):
            return RunResult("early", retry_in=(operation.next_attempt_at - now).total_seconds())
        action = decide(operation, now)
        operation_move(operation, S.SENDING)
        operation.leased_by = worker[:100]
        operation.lease_until = now + timedelta(seconds=settings.OUTBOUND_LEASE_SECONDS)
        operation.attempts += 1
        operation.in_flight = action
        fields = ["state", "leased_by", "lease_until", "attempts", "in_flight"]
        if action == ACT.SEND:
            fields += _count_send(operation, now)
        elif action == ACT.LOOKUP:
            operation.lookups += 1
            fields.append("lookups")
        else:
            operation.checks += 1
            fields.append("checks")
        operation.save(update_fields=fields)
        return operation, action


def _count_send(operation: OutboundOperation, now) -> list[str]:
    operation.sends += 1
    fields = ["sends"]
    if operation.key_first_sent_at is None:
        operation.key_first_sent_at = now
        fields.append("key_first_sent_at")
    return fields


def mark_sending(operation: OutboundOperation) -> None:
    """A check that found nothing against the write turns into its send: count it as one, before the call."""
    with transaction.atomic():
        locked = OutboundOperation.objects.select_for_update().get(pk=operation.pk)
        locked.in_flight = ACT.SEND
        fields = ["in_flight", *_count_send(locked, timezone.now())]
        locked.save(update_fields=fields)
        operation.in_flight, operation.sends, operation.key_first_sent_at = (
            locked.in_flight,
            locked.sends,
            locked.key_first_sent_at,
        )


def decide(operation: OutboundOperation, now) -> str:
    """Which call this claim makes, from the stored attempts (newest first)."""
    history = operation.outbound_attempts.exclude(action=ACT.CHECK).order_by("-started_at", "-pk")
    return next_call(
        history.values_list("action", "outcome")[:HISTORY], key_first_sent_at=operation.key_first_sent_at, now=now
    )


# How many of the newest attempts a decision reads: enough to reach past any run of refusals-to-wait (429s).
HISTORY = 50


def next_call(
    history: Iterable[tuple[str, str]],
    *,
    key_first_sent_at: dt.datetime | None,
    now: dt.datetime,
    first: str = ACT.CHECK,
) -> str:
    """The one rule for a write's next call, from its attempts as (action, outcome), newest first; `first` is the call
    of a write with none yet (CHECK for a kind that checks, SEND for one that does not).

    The push's chunks (invoices/services/push/send.py) and every operation decide through it: an answer that did not
    confirm the write (an element missing, a 500 Xero keeps under the key) is looked up, never resent; a send whose
    outcome is unknown is resent under the same key while Xero remembers it, else looked up; a lookup still finding out
    is repeated; one that proved absence allows a send."""
    seen = False
    for action, outcome in history:
        seen = True
        if action == ACT.LOOKUP and outcome == OUT.ABSENT:
            return ACT.SEND  # proved absent since: a send is safe
        if action == ACT.LOOKUP and outcome in (OUT.UNCONFIRMED, OUT.RETRY, OUT.UNKNOWN, OUT.FAILED):
            return ACT.LOOKUP  # still finding out
        if action == ACT.SEND and outcome == OUT.UNCONFIRMED:
            return ACT.LOOKUP  # a resend under the same key would only replay that answer
        if action == ACT.SEND and outcome == OUT.UNKNOWN:
            return ACT.SEND if key_remembered(key_first_sent_at, now) else ACT.LOOKUP
    return ACT.SEND if seen else first
