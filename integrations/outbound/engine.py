"""The one loop every write to Xero goes through: claim -> decide -> call -> record.

claim   the operation row under select_for_update with a lease; the attempt is counted (and the call about to be
        made is written down) in the same commit, before any call: if the worker dies mid-call, the next claim
        knows that call's outcome is unknown.
decide  from the stored attempts: send (again under the same Idempotency-Key while Xero still remembers it), or,
        when a send's outcome is in doubt and the key's window has passed, look the result up first. A lookup that
        proves absence allows a send (under a new key while Xero still remembers the old one, which would replay
        its answer: a 500 is kept under the key, so it is looked up rather than resent); one that cannot confirm is
        repeated with backoff and, after OUTBOUND_MAX_LOOKUPS, the operation stops in needs_attention. Never a
        resend under a new key without a lookup that proved absence.
call    through the kind's strategy and the endpoint layer (integrations/xero/accounting.py), with the shared
        rate limiter (a refusal is a wait, never a sleep; a kind with `limiter_first` takes its slot before the
        claim, so one that must wait is not claimed).
record  one OutboundAttempt per call; Xero's answer is checked against what was sent (the kind's `confirm`); the
        verdict of a failure comes from integrations/xero/errors.classify, every wait from its backoff. A kind that
        Xero answers element by element (the push's chunks) records through its own `element_wise`, under the same
        lock, attempts and state table.

Running it twice is harmless: only the lease holder calls, and a finished operation is never claimed again.

This module creates, runs and sweeps operations; claim and decide are integrations/outbound/decide.py, record is
integrations/outbound/record.py.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from coordinoter import queue
from coordinoter.prepared import Bind, Prepared
from integrations.models import XeroConnection
from integrations.outbound import kinds as k
from integrations.outbound.decide import claim, mark_sending
from integrations.outbound.models import OutboundAttempt, OutboundOperation
from integrations.outbound.record import RunResult, attention, locked_for, record, record_failure
from integrations.outbound.states import FINAL, operation_move
from integrations.xero.client import XeroClient
from integrations.xero.exceptions import XeroError
from integrations.xero.ratelimit import RateLimitWait, rate_limiter
from integrations.xero.types import NoRateLimit

logger = logging.getLogger("integrations.outbound")

S = OutboundOperation.State
ACT = OutboundAttempt.Action
OUT = OutboundAttempt.Outcome
IN_DOUBT = (OUT.UNKNOWN, OUT.UNCONFIRMED)


# ---------------------------------------------------------------- creating


def operation_create(
    *,
    organisation_id: int,
    tenant_id: str,
    kind: str,
    payload: dict[str, Any],
    subject_id: int | None = None,
    requested_by: Any = None,
    idempotency_key: str | None = None,
    next_attempt_at: Any = None,
) -> OutboundOperation:
    """Store a write with its payload and Idempotency-Key before any attempt; the caller enqueues it on commit."""
    k.kind_for(kind)  # an unknown kind is a programming error: refuse it before anything is stored
    return OutboundOperation.objects.create(
        organisation_id=organisation_id,
        tenant_id=tenant_id,
        kind=kind,
        subject_id=subject_id,
        payload=payload,
        idempotency_key=idempotency_key or f"coordinoter-{kind}-{uuid.uuid4()}",
        requested_by=requested_by,
        next_attempt_at=next_attempt_at,
    )


def operation_for_key(key: str) -> OutboundOperation | None:
    """The operation stored under this Idempotency-Key, also once its key was renewed (`<key>~n`, record.py)."""
    return (
        OutboundOperation.objects.filter(Q(idempotency_key=key) | Q(idempotency_key__startswith=f"{key}~"))
        .order_by("pk")
        .first()
    )


def operation_enqueue(*, operation_id: int, countdown: float = 0.0) -> None:
    """Run the operation once the current transaction commits (the sweep catches it if the broker is down)."""
    from integrations.outbound.tasks import run_operation

    transaction.on_commit(lambda: _publish(run_operation, operation_id, countdown))


def _publish(task, operation_id: int, countdown: float) -> None:
    try:
        queue.enqueue(task, args=(operation_id,), countdown=countdown, retry=False)
    except Exception:  # noqa: BLE001 - the stored operation is the record; the sweep sends it later
        logger.warning(
            "outbound.enqueue_failed", extra={"event": "outbound.enqueue_failed", "operation_id": operation_id}
        )


@transaction.atomic
def operation_retry(*, organisation_id: int, operation_id: int, by: Any = None) -> OutboundOperation:
    """A person (`by`) retried an operation that needed attention: it starts again with a fresh allowance of lookups,
    under the same key (a lookup decides before any send whose outcome was in doubt); its kind is told."""
    operation = OutboundOperation.objects.select_for_update().get(pk=operation_id, organisation_id=organisation_id)
    if operation.state != S.NEEDS_ATTENTION:
        return operation
    operation_move(operation, S.PENDING)
    operation.lookups, operation.sends, operation.checks, operation.next_attempt_at = 0, 0, 0, timezone.now()
    operation.save(update_fields=["state", "lookups", "sends", "checks", "next_attempt_at"])
    kind = k.kind_for(operation.kind)
    if kind.retried is not None:
        kind.retried(operation, by)
    if kind.enqueue is not None:
        kind.enqueue(operation.pk)  # on the kind's own queue (the push's chunks: `xero`)
    else:
        operation_enqueue(operation_id=operation.pk)
    return operation


@transaction.atomic
def operation_withdraw(*, organisation_id: int, operation_id: int, reason: str) -> bool:
    """A person cancelled what the operation was for: it ends refused and is never sent. Only one that needs
    attention (a person was asked to look in Xero) or that has sent nothing can be withdrawn; False otherwise (it is
    being sent, or a send of it may be in Xero). Its kind is not told: the caller is removing its subject."""
    operation = OutboundOperation.objects.select_for_update().get(pk=operation_id, organisation_id=organisation_id)
    if operation.state in FINAL:
        return True
    if operation.state != S.NEEDS_ATTENTION and (operation.state != S.PENDING or operation.sends or operation.lookups):
        return False
    operation_move(operation, S.REFUSED)
    operation.last_error, operation.completed_at = reason[:2000], timezone.now()
    operation.leased_by, operation.lease_until, operation.in_flight = "", None, ""
    operation.save(update_fields=["state", "last_error", "completed_at", "leased_by", "lease_until", "in_flight"])
    logger.info(
        "outbound.withdrawn",
        extra={"event": "outbound.withdrawn", "operation_id": operation.pk, "organisation_id": organisation_id},
    )
    return True


# ---------------------------------------------------------------- running


def operation_run(*, operation_id: int, worker: str | None = None) -> Any:
    """One turn of the loop for the operation: nothing (noop, busy, early, waiting), or one call and its record.
    Returns the engine's RunResult, or what an element-wise kind's record returns."""
    worker = worker or f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    seen = _peek(operation_id)
    if isinstance(seen, RunResult):
        return seen
    kind = k.kind_for(seen.kind)
    connection = _usable_connection(seen, kind)
    if isinstance(connection, RunResult):
        return connection
    if isinstance(connection, k.Unusable):
        # No call can be made: the claim takes the lease without counting one, and the operation ends or parks.
        claimed = claim(operation_id, worker, calling=False, lease_seconds=_lease(kind))
        if isinstance(claimed, RunResult):
            return claimed
        operation, _ = claimed
        if kind.unusable is not None:
            return kind.unusable(operation, worker, connection)
        with transaction.atomic():
            locked = locked_for(operation)
            return locked if isinstance(locked, RunResult) else attention(locked, kind, connection.message)
    # A kind that works without a usable connection makes identity calls with the bare token (the disconnect steps),
    # which were never counted against the tenant's API limits: it needs no limiter (nor its start-up cost).
    limiter = rate_limiter() if kind.requires_usable_connection else NoRateLimit()
    slot = HeldSlot(limiter, None)
    if kind.limiter_first:
        # The limiter before the claim (one Redis call): an operation that must wait is not claimed; only its next
        # attempt time is written. Asked under the operation's own name, so waiting callers queue in order.
        try:
            slot.ticket = limiter.acquire(tenant_id=seen.tenant_id, waiter=waiter_name(seen.idempotency_key))
        except RateLimitWait as wait:
            OutboundOperation.objects.filter(pk=operation_id, state=S.PENDING).update(
                next_attempt_at=timezone.now() + timedelta(seconds=wait.seconds)
            )
            return RunResult("early", retry_in=wait.seconds, detail=f"rate limit ({wait.problem})")
    first = ACT.CHECK if kind.check is not None or kind.element_wise is None else ACT.SEND
    try:
        claimed = claim(
            operation_id, worker, first=first, has_work=kind.has_work, lease_seconds=_lease(kind), seen=seen
        )
    except BaseException:
        slot.refund()  # no call was made: the slot goes back now, not when its TTL runs out
        raise
    if isinstance(claimed, RunResult):
        slot.refund()
        if claimed.state == S.DONE and kind.ended is not None:
            kind.ended(seen.organisation_id)
        return claimed
    operation, action = claimed
    # The row read for this very call (its tokens included): the client takes its first call's token from it.
    client = XeroClient(connection.pk, rate_limiter=slot, loaded=connection)
    if kind.element_wise is not None:
        return _run_element_wise(kind, operation, k.Call(action, timezone.now(), worker, connection), client, slot)
    started, clock = timezone.now(), time.monotonic()
    try:
        if action == ACT.CHECK:
            checked = kind.check(client, operation) if kind.check else None
            if checked is None:
                action = ACT.SEND  # nothing against it: the send follows in the same claim
                started, clock = timezone.now(), time.monotonic()
                mark_sending(operation)
                response = kind.send(client, operation)
                verdict: Any = kind.confirm(operation, response)
            else:
                response, verdict = None, checked
        elif action == ACT.SEND:
            response = kind.send(client, operation)
            verdict = kind.confirm(operation, response)
        else:
            response, verdict = None, kind.look_up(client, operation)
    except XeroError as exc:
        return record_failure(operation, kind, action, exc, started, clock)
    finally:
        slot.close()
    return record(operation, kind, action, verdict, response, started, clock)


def _lease(kind: k.Kind) -> float | None:
    return kind.lease_seconds() if kind.lease_seconds is not None else None


def _run_element_wise(kind: k.Kind, operation, call: k.Call, client: XeroClient, slot: HeldSlot) -> Any:
    """The call of a kind that Xero answers element by element (the push's chunks): sent or looked up through the
    kind, and recorded by it, element by element, under the operation's lock."""
    clock = time.monotonic()
    try:
        response = (kind.send if call.action == ACT.SEND else kind.look_up)(client, operation)
    except XeroError as exc:
        return kind.element_wise.failed(operation, call, int((time.monotonic() - clock) * 1000), exc)
    finally:
        slot.close()
    return kind.element_wise.answered(operation, call, response)


def _peek(operation_id: int) -> OutboundOperation | RunResult:
    """An unlocked look first: nothing to do, someone else on it, or too early (the claim re-checks all this). The
    row is read whole, with its organisation's connection (tokens included, for this very call): an operation with no
    call yet is claimed with it in one UPDATE (decide.claim)."""
    row = next(iter(_PEEK.rows(pk=operation_id)), None)
    now = timezone.now()
    if row is None or row.state in FINAL or row.state == S.NEEDS_ATTENTION:
        return RunResult("noop")
    if row.state == S.SENDING and row.lease_until and row.lease_until > now:
        return RunResult("busy")
    due = row.next_attempt_at
    if row.state == S.PENDING and due and due > now + timedelta(milliseconds=50):
        return RunResult("early", retry_in=(due - now).total_seconds())
    return row


# By its primary key, so at most one row: no ORDER BY (first() would add one). Compiled once (coordinoter/prepared.py):
# building this join of three tables was the dearest statement of a chunk.
_PEEK = Prepared(
    lambda: OutboundOperation.objects.select_related("organisation__xero_connection").filter(pk=Bind("pk"))
)


def _usable_connection(row: OutboundOperation, kind: k.Kind) -> XeroConnection | RunResult | k.Unusable:
    """The connection to call through (read with its tokens, for this very call); a RunResult when there is nothing to
    do now; or why the operation can never go through this connection (disconnected, revoked, another Xero
    organisation), or cannot now (a kind with its own `unusable` hears of a reconnect needed too)."""
    try:
        connection = row.organisation.xero_connection  # read with the row (_peek)
    except XeroConnection.DoesNotExist:
        connection = None
    if not kind.requires_usable_connection:
        if connection is None:
            return k.Unusable("The organisation's Xero connection no longer exists.")
        return connection
    if connection is not None and connection.tenant_id == row.tenant_id:
        if connection.is_usable:
            return connection
        if connection.status == XeroConnection.Status.NEEDS_RECONNECT:
            if kind.unusable is not None:
                return k.Unusable("Waiting for the Xero connection (reconnect or disconnected).")
            # It resumes after the reconnect (the sweep brings it back): nothing is counted meanwhile.
            return RunResult("waiting", detail="Waiting for Xero to be reconnected.")
    if connection is not None and connection.tenant_id and connection.tenant_id != row.tenant_id:
        return k.Unusable("The organisation is now connected to another Xero organisation.", moved=True)
    if kind.unusable is not None:
        return k.Unusable("Waiting for the Xero connection (reconnect or disconnected).")
    return k.Unusable("Xero is disconnected: reconnect, then retry.")


def waiter_name(idempotency_key: str) -> str:
    """An operation's name in the limiter's queue of waiting callers (integrations/xero/ratelimit): its key, known
    before the operation is stored, so the push's refill can queue a chunk it is building."""
    return f"operation:{idempotency_key}"


class HeldSlot:
    """The rate limiter as the client sees it, holding the slot taken before the claim (if any): the client's first
    acquire gets that slot, later ones go to the limiter."""

    def __init__(self, limiter: Any, ticket: Any) -> None:
        self.limiter, self.ticket = limiter, ticket

    def acquire(self, *, tenant_id: str, priority: str = "customer") -> Any:
        if self.ticket is not None:
            ticket, self.ticket = self.ticket, None
            return ticket
        return self.limiter.acquire(tenant_id=tenant_id, priority=priority)

    def release(self, *, tenant_id: str, ticket: Any) -> None:
        self.limiter.release(tenant_id=tenant_id, ticket=ticket)

    def observe(self, *, tenant_id: str, response: Any) -> None:
        self.limiter.observe(tenant_id=tenant_id, response=response)

    def refund(self) -> None:
        """The claim found nothing to call: the slot was never used, and goes back as if never taken."""
        if self.ticket is not None:
            ticket, self.ticket = self.ticket, None
            self.limiter.refund(tenant_id=getattr(ticket, "tenant_id", ""), ticket=ticket)

    def close(self) -> None:
        """Release the slot if the client never used it (it failed before calling)."""
        if self.ticket is not None:
            ticket, self.ticket = self.ticket, None
            self.limiter.release(tenant_id=getattr(ticket, "tenant_id", ""), ticket=ticket)


# ---------------------------------------------------------------- the sweep


def operations_sweep(*, limit: int = 500) -> int:
    """Operations due and unclaimed (a lost message, a broker outage, a dead worker's lease): enqueue them again."""
    now = timezone.now()
    # A kind with its own sweep (the push's chunks, on the push's queue: invoices/services/push/sweep.py) is left to it.
    operations = OutboundOperation.objects.exclude(kind__in=k.kinds_with_own_sweep())
    due = list(operations.filter(state=S.PENDING, next_attempt_at__lte=now).values_list("pk", flat=True)[:limit])
    due += list(
        operations.filter(
            state=S.PENDING, next_attempt_at__isnull=True, created_at__lte=now - timedelta(seconds=30)
        ).values_list("pk", flat=True)[:limit]
    )
    due += list(operations.filter(state=S.SENDING, lease_until__lt=now).values_list("pk", flat=True)[:limit])
    for operation_id in dict.fromkeys(due):
        _publish_now(operation_id)
    return len(due)


def _publish_now(operation_id: int) -> None:
    from integrations.outbound.tasks import run_operation

    _publish(run_operation, operation_id, 0.0)
