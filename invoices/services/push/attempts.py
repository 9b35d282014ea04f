"""A chunk's calls that brought no answer to record element by element: every attempt is stored (status, duration,
correlation id), and the chunk waits (retry_later), gives its invoices back (abandon), fails them (refused), or
stops once its sends are spent (sends_exhausted). Each
function runs in one transaction with the chunk row locked."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from coordinoter.prepared import Bind, Prepared
from integrations.outbound.models import OutboundAttempt, OutboundOperation
from integrations.outbound.record import RunResult
from integrations.outbound.states import operation_move
from integrations.xero.exceptions import XeroError
from invoices.models import Invoice
from invoices.services.push.common import backoff_seconds, chunks, enqueue_dispatch
from invoices.services.push.outcomes import Carried, events_add, outcome_failed, outcomes_save
from invoices.sync_states import sync_state_move, sync_state_update_ids

logger = logging.getLogger(__name__)

S = Invoice.SyncState
C = OutboundOperation.State
ACT, OUT = OutboundAttempt.Action, OutboundAttempt.Outcome
# What the attempt's detail says the call was.
CALLS = {ACT.SEND: "PUT /Invoices", ACT.LOOKUP: "GET /Invoices lookup"}


def attempt_record(
    chunk_id: int,
    attempt: dict,
    duration_ms: int,
    outcome: str,
    status: int | None,
    detail: str,
    correlation_id: str = "",
    *,
    answer: str = "",
) -> None:
    """One call of the chunk, as the engine records every call (integrations/outbound/record.py); `answer`: the start of
    Xero's answer, where it is read back (a PUT's)."""
    OutboundAttempt.objects.create(
        answer=answer,
        operation_id=chunk_id,
        action=attempt["action"],
        started_at=attempt["started_at"],
        duration_ms=max(0, duration_ms),
        http_status=status,
        outcome=outcome,
        correlation_id=(correlation_id or "")[:64],
        detail=f"{CALLS[attempt['action']]}: {detail}"[:2000],
    )


def locked_chunk(chunk_id: int) -> OutboundOperation:
    chunk = next(iter(_LOCKED_CHUNK.rows(pk=chunk_id)), None)
    if chunk is None:
        raise OutboundOperation.DoesNotExist(f"No chunk {chunk_id}.")
    return chunk


# The statements a chunk's record runs, compiled once (coordinoter/prepared.py). Recording never reads the payload
# (every element of the chunk): it stays in the database.
_LOCKED_CHUNK = Prepared(lambda: chunks().select_for_update().defer("payload").filter(pk=Bind("pk")))
_CHUNK = Prepared(lambda: OutboundOperation.objects.filter(pk=Bind("pk")))
_IN_FLIGHT = {
    customers: Prepared(
        lambda names=names: (
            Invoice.objects.select_for_update(of=("self",))
            .filter(chunk_id=Bind("chunk"), sync_state=S.IN_FLIGHT)
            .order_by("pk")
            .values_list(*names)
        )
    )
    for customers, names in (
        (False, ("pk", "organisation_id", "number", "sync_state", "sync_errors")),
        (True, ("pk", "organisation_id", "number", "sync_state", "sync_errors", "customer__xero_contact_id")),
    )
}


def held_by(chunk: OutboundOperation, worker: str) -> bool:
    """Is the chunk still ours? Our lease may have run out and another worker claimed it (and maybe recorded) since."""
    return chunk.state == C.SENDING and chunk.leased_by == worker[:100]


def release(chunk: OutboundOperation, to: str, now, *, fields: tuple[str, ...] = ()) -> None:
    """The chunk leaves the lease holder's hands: waiting again (pending) or ended (done, refused, needs_attention)."""
    operation_move(chunk, to)
    chunk.leased_by, chunk.lease_until, chunk.in_flight = "", None, ""
    if to != C.PENDING:
        chunk.completed_at = now
    names = ("state", "leased_by", "lease_until", "in_flight", "completed_at", "last_error", *fields)
    _CHUNK.update({name: getattr(chunk, name) for name in names}, pk=chunk.pk)


def in_flight_invoices(chunk: OutboundOperation, *, customers: bool = False) -> list[Carried]:
    """The chunk's invoices still in flight, locked, as values; with their customers' ContactIDs when the caller
    compares them."""
    return [Carried(*row) for row in _IN_FLIGHT[customers].rows(chunk=chunk.pk)]


@transaction.atomic
def retry_later(
    chunk_id: int,
    worker: str,
    seconds: float,
    attempt: dict,
    duration_ms: int,
    outcome: str,
    status: int | None,
    detail: str,
    correlation_id: str = "",
) -> RunResult:
    """The call failed in a way worth retrying (429, 5xx, timeout): record it and wait `seconds`."""
    chunk = locked_chunk(chunk_id)
    attempt_record(chunk_id, attempt, duration_ms, outcome, status, detail, correlation_id)
    now = timezone.now()
    chunk.last_error = detail[:2000]
    if held_by(chunk, worker):
        chunk.next_attempt_at = now + timedelta(seconds=seconds)
        chunk.correlation_id = (correlation_id or chunk.correlation_id)[:64]
        release(chunk, C.PENDING, now, fields=("next_attempt_at", "correlation_id"))
    else:
        chunk.save(update_fields=["last_error"])
    logger.warning(
        "push.chunk.retry",
        extra={
            "event": "push.chunk.retry",
            "chunk_id": chunk_id,
            "organisation_id": chunk.organisation_id,
            "tenant_id": chunk.tenant_id,
            "outcome": outcome,
            "status": status,
            "retry_in": round(seconds, 3),
            "correlation_id": correlation_id,
            "attempts": chunk.attempts,
        },
    )
    return RunResult("retry", retry_in=seconds, detail=outcome if status != 429 else "rate_limited")


MOVED_IN_DOUBT = (
    "Sent to the Xero organisation this account was connected to before, but Xero's answer was not confirmed before "
    "the connection moved to another Xero organisation: it may be in the old one. Check there, then retry it (it goes "
    "to the organisation connected now) or cancel it."
)


@transaction.atomic
def abandon(chunk_id: int, worker: str, *, reason: str, moved: bool = False) -> RunResult:
    """The connection cannot be used (needs reconnect, disconnected, 401/403). Xero wrote nothing on this call.

    If no earlier call of the chunk may have written either, its invoices simply go back to pending and wait, and the
    chunk ends (refused: withdrawn without a write); otherwise the chunk is kept (same payload and key) and resumes
    once the connection is back. `moved`: the organisation is now connected to another Xero organisation, so the chunk
    can never go back to the one it may have written to: those invoices stop in needs_attention (a person checks the
    old organisation, then retries or cancels), and the chunk ends there too, freeing its slot.
    """
    chunk = locked_chunk(chunk_id)
    if not held_by(chunk, worker):
        return RunResult("busy", detail=chunk.leased_by)
    now = timezone.now()
    maybe_written = _maybe_written(chunk)
    chunk.last_error = reason[:2000]
    if maybe_written and moved:
        _stop_in_attention(chunk, MOVED_IN_DOUBT, now)
        outcome = "needs_attention"
    elif maybe_written:
        chunk.next_attempt_at = now + timedelta(seconds=settings.PUSH_SWEEP_SECONDS)
        release(chunk, C.PENDING, now, fields=("next_attempt_at",))
        outcome = "waiting"
    else:
        invoices = in_flight_invoices(chunk)
        sync_state_update_ids(Invoice, [i.pk for i in invoices], [S.IN_FLIGHT], S.PENDING, updated_at=now)
        release(chunk, C.REFUSED, now)
        outcome = "released"
    logger.warning(
        "push.chunk.connection_unusable",
        extra={
            "event": "push.chunk.connection_unusable",
            "chunk_id": chunk_id,
            "organisation_id": chunk.organisation_id,
            "tenant_id": chunk.tenant_id,
            "outcome": outcome,
            "reason": reason[:200],
        },
    )
    return RunResult(outcome, detail=reason)


@transaction.atomic
def lookup_failed(
    chunk_id: int,
    worker: str,
    attempt: dict,
    duration_ms: int,
    outcome: str,
    status: int | None,
    detail: str,
    correlation_id: str = "",
) -> RunResult:
    """A lookup Xero refused or did not answer. Tried again after the backoff of the chunk's lookups so far; after
    OUTBOUND_MAX_LOOKUPS (the engine's bound) the invoices still in flight stop in needs_attention and the chunk ends:
    nothing is sent again, so none can be in Xero twice."""
    chunk = locked_chunk(chunk_id)
    lookups = chunk.lookups  # this one included: the claim counted it
    if lookups < settings.OUTBOUND_MAX_LOOKUPS:
        wait = backoff_seconds(lookups)
        return retry_later(chunk_id, worker, wait, attempt, duration_ms, outcome, status, detail, correlation_id)
    attempt_record(chunk_id, attempt, duration_ms, outcome, status, detail, correlation_id)
    if not held_by(chunk, worker):
        return RunResult("busy", detail=chunk.leased_by)  # another worker holds it now: it decides
    return _attention(
        chunk,
        f"Xero's answer could not be confirmed: {lookups} lookups of its number failed (last: {detail[:300]}). "
        "Nothing was sent again, so it cannot be in Xero twice. Check Xero, then retry it or cancel it.",
    )


def _attention(chunk: OutboundOperation, message: str) -> RunResult:
    chunk.last_error = message[:2000]
    _stop_in_attention(chunk, message, timezone.now())
    return RunResult("needs_attention", detail=message)


def _stop_in_attention(chunk: OutboundOperation, message: str, now) -> None:
    """The chunk's invoices still in flight stop in needs_attention with `message` (never resent by themselves), and
    the chunk with them (support sees it, and may retry it: a lookup), its slot free for the tenant's next."""
    invoices = in_flight_invoices(chunk)
    for invoice in invoices:
        sync_state_move(invoice, S.NEEDS_ATTENTION)
        invoice.changes["updated_at"] = now
        invoice.sync_errors = [message]
    outcomes_save(invoices)
    events_add(invoices, "needs_attention", lambda i: message)
    release(chunk, C.NEEDS_ATTENTION, now)
    enqueue_dispatch(chunk.organisation_id)


@transaction.atomic
def refused(chunk_id: int, worker: str, attempt: dict, duration_ms: int, exc: XeroError) -> RunResult:
    """Xero refused the whole PUT (a 4xx that is not per element): its invoices fail. (A refused lookup is
    `lookup_failed`.)"""
    chunk = locked_chunk(chunk_id)
    attempt_record(chunk_id, attempt, duration_ms, OUT.REFUSED, exc.status, str(exc), exc.correlation_id)
    if not held_by(chunk, worker):
        return RunResult("busy", detail=chunk.leased_by)
    return _fail_in_flight(chunk, exc.detail or str(exc))


@transaction.atomic
def sends_exhausted(
    chunk_id: int,
    worker: str,
    attempt: dict,
    duration_ms: int,
    status: int | None,
    detail: str,
    correlation_id: str = "",
) -> RunResult:
    """The chunk's OUTBOUND_MAX_SENDS-th send was refused again in a way that leaves the connection connected (a
    permission, a scope, the tenant's 403 while Xero's connections still list it), or failed for a reason the
    classifier does not know: bounded like the engine's sends (integrations/outbound/record.record_failure). If no
    call of the chunk may have written, its invoices fail with Xero's words (a person fixes the cause, then retries
    them); otherwise they stop in needs_attention, never resent by themselves, so none can be in Xero twice."""
    chunk = locked_chunk(chunk_id)
    attempt_record(chunk_id, attempt, duration_ms, OUT.REFUSED, status, detail, correlation_id)
    if not held_by(chunk, worker):
        return RunResult("busy", detail=chunk.leased_by)
    sends = chunk.sends
    if _maybe_written(chunk):
        return _attention(
            chunk,
            f"Xero refused the send {sends} times (last: {detail[:300]}). An earlier try may have reached Xero, so "
            "it was not sent again: check Xero, then retry it or cancel it.",
        )
    return _fail_in_flight(chunk, f"{detail} ({sends} tries)")


def _maybe_written(chunk: OutboundOperation) -> bool:
    """May an earlier call of the chunk have written to Xero (a send answered, or not answered at all)?"""
    return chunk.outbound_attempts.filter(
        action=ACT.SEND, outcome__in=[OUT.CONFIRMED, OUT.UNCONFIRMED, OUT.UNKNOWN]
    ).exists()


def _fail_in_flight(chunk: OutboundOperation, message: str) -> RunResult:
    """The chunk's invoices still in flight fail with `message`, and the chunk ends refused, its slot free."""
    now = timezone.now()
    invoices = in_flight_invoices(chunk)
    for invoice in invoices:
        outcome_failed(invoice, [message], now)
    outcomes_save(invoices)
    events_add(invoices, "failed", lambda i: f"Xero refused the request: {message}")
    chunk.last_error = message[:2000]
    release(chunk, C.REFUSED, now)
    enqueue_dispatch(chunk.organisation_id)
    return RunResult("failed", detail=message)
