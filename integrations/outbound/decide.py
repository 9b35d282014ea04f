"""Claim and decide, the first half of the engine's loop (integrations/outbound/engine.py): take the operation row
under select_for_update with a lease, counting the attempt (and writing down the call about to be made) in the same
commit, before any call; and choose that call from the stored attempts: check, send (again under the same
Idempotency-Key while Xero still remembers it) or look the result up first."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from coordinoter.prepared import Bind, Prepared
from integrations.outbound.models import OutboundAttempt, OutboundOperation
from integrations.outbound.record import RunResult
from integrations.outbound.states import FINAL, operation_move, operations_move
from integrations.xero.errors import key_remembered

logger = logging.getLogger("integrations.outbound")

S = OutboundOperation.State
ACT = OutboundAttempt.Action
OUT = OutboundAttempt.Outcome


def claim(
    operation_id: int,
    worker: str,
    *,
    first: str = ACT.CHECK,
    calling: bool = True,
    has_work: Callable[[OutboundOperation], bool] | None = None,
    lease_seconds: float | None = None,
    seen: OutboundOperation | None = None,
) -> tuple[OutboundOperation, str] | RunResult:
    """Take the operation under a lease and decide its call (`first`: the call of a write with no attempt yet).

    calling=False: the claimant makes no call (the connection cannot be used, and it ends or parks the operation):
    nothing is counted or written down as in flight. has_work: the kind's own "is anything left to write?" (a
    chunk whose invoices have all been resolved), asked once a call was made; False ends the operation done.
    seen: the row as the caller read it a moment ago, unlocked; when it had no call yet, see `_claim_first`."""
    lease = settings.OUTBOUND_LEASE_SECONDS if lease_seconds is None else lease_seconds
    if calling and seen is not None and seen.state == S.PENDING and seen.attempts == 0:
        claimed = _claim_first(seen, worker, first=first, lease_seconds=lease)
        if claimed is not None:
            return claimed, first
    with transaction.atomic():
        # By its primary key: at most one row, so no ORDER BY (as engine._peek).
        operation = next(iter(OutboundOperation.objects.select_for_update().filter(pk=operation_id)), None)
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
                logger.warning(
                    "outbound.lease_expired",
                    extra={
                        "event": "outbound.lease_expired",
                        "operation_id": operation.pk,
                        "kind": operation.kind,
                        "organisation_id": operation.organisation_id,
                        "tenant_id": operation.tenant_id,
                        "previous_worker": operation.leased_by,
                        "lost_call": operation.in_flight,
                    },
                )
        elif operation.next_attempt_at and operation.next_attempt_at > now + timedelta(milliseconds=50):
            return RunResult("early", retry_in=(operation.next_attempt_at - now).total_seconds())
        operation_move(operation, S.SENDING)
        operation.leased_by = worker[:100]
        operation.lease_until = now + timedelta(seconds=lease)
        fields = ["state", "leased_by", "lease_until", "in_flight"]
        if operation.attempts and has_work is not None and not has_work(operation):
            # A call was made, and nothing is left to write (a worker died after its record): done, no call.
            operation_move(operation, S.DONE)
            operation.leased_by, operation.lease_until, operation.in_flight = "", None, ""
            operation.completed_at = now
            operation.save(update_fields=[*fields, "completed_at"])
            return RunResult(S.DONE, detail="nothing left to send")
        if not calling:
            operation.in_flight = ""
            operation.save(update_fields=fields)
            return operation, ""
        action = decide(operation, now, first=first)
        operation.attempts += 1
        operation.in_flight = action
        fields.append("attempts")
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


def _claim_first(seen: OutboundOperation, worker: str, *, first: str, lease_seconds: float) -> OutboundOperation | None:
    """The first call of an operation with none yet: taken, counted and written down as in flight in one conditional
    UPDATE (pending, no attempt, due), with nothing to read or decide under a lock first. The row the caller read
    (its payload included: it never changes) becomes the claimed one. None when the row moved meanwhile (another
    worker claimed it, it was withdrawn or put back): the locked claim looks again."""
    now = timezone.now()
    counted = {ACT.SEND: {"sends": 1, "key_first_sent_at": now}, ACT.LOOKUP: {"lookups": 1}, ACT.CHECK: {"checks": 1}}
    fields = {
        "attempts": 1,
        "in_flight": first,
        "leased_by": worker[:100],
        "lease_until": now + timedelta(seconds=lease_seconds),
        **counted[first],
    }
    due_by = now + timedelta(milliseconds=50)
    if not operations_move(_FIRST_CLAIM, S.PENDING, S.SENDING, fields, pk=seen.pk, due_by=due_by):
        return None
    operation_move(seen, S.SENDING)  # as the UPDATE wrote it
    for name, value in fields.items():
        setattr(seen, name, value)
    return seen


# Pending, no attempt, due: compiled once (coordinoter/prepared.py), one UPDATE for each set of fields claimed.
_FIRST_CLAIM = Prepared(
    lambda: OutboundOperation.objects.filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=Bind("due_by")),
        pk=Bind("pk"),
        attempts=0,
        state=S.PENDING,
    )
)


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


def decide(operation: OutboundOperation, now, *, first: str = ACT.CHECK) -> str:
    """Which call this claim makes, from the stored attempts (newest first)."""
    if operation.attempts == 0:
        # No call counted yet, so none recorded (attempt rows follow counted calls): the first call, decided without
        # reading the (empty) history.
        return first
    history = operation.outbound_attempts.exclude(action=ACT.CHECK).order_by("-started_at", "-pk")
    return next_call(
        history.values_list("action", "outcome")[:HISTORY],
        key_first_sent_at=operation.key_first_sent_at,
        now=now,
        first=first,
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
