"""One chunk, one call: claim it under a lease, take a limiter slot, PUT /Invoices, record what Xero said.

Which call a claimed chunk makes follows from its stored attempts, through the rule every outbound operation decides
by (integrations/outbound/decide.next_call), so a worker that picks up another's chunk
(the lease expired: that worker died) decides exactly as the first one would have:

- nothing may have reached Xero yet, or it may have but the Idempotency-Key is still inside Xero's 6-minute
  window: PUT the stored payload again under the same key (Xero replays the first answer if it had one);
- a PUT was answered (some elements left to resolve), answered 500 (Xero caches that under the key, so
  resending only replays it), or its outcome is unknown and the key's window has passed: look the invoice
  numbers up (GET /Invoices?InvoiceNumbers=...&createdByMyApp=true). Found -> synced; not found -> pending
  again, to go in a new chunk with a new key. So no invoice is created twice and none is lost.
(https://developer.xero.com/documentation/guides/idempotent-requests/idempotency/)
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from integrations.models import XeroConnection
from integrations.outbound.decide import claim
from integrations.outbound.models import OutboundAttempt, OutboundOperation
from integrations.outbound.record import RunResult
from integrations.xero import accounting
from integrations.xero.errors import Refused, Retry, WaitForConnection, classify
from integrations.xero.exceptions import XeroError
from integrations.xero.ratelimit import RateLimitWait, rate_limiter
from invoices.models import Invoice
from invoices.services.push.attempts import abandon, attempt_record, lookup_failed, refused, retry_later
from invoices.services.push.common import (
    SendResult,
    backoff_seconds,
    chunk_waiter,
    chunks,
    connection_for,
    connection_ready,
    enqueue_dispatch,
    worker_name,
    xero_client,
)
from invoices.services.push.record import record_lookup, record_put

logger = logging.getLogger(__name__)

S = Invoice.SyncState
C = OutboundOperation.State
ACT, OUT = OutboundAttempt.Action, OutboundAttempt.Outcome


def push_chunk_send(*, chunk_id: int, worker: str | None = None) -> SendResult:
    """Make the chunk's next call and record it. Safe to run twice at once: only the lease holder calls."""
    worker = worker or worker_name()
    seen = _peek(chunk_id)
    if isinstance(seen, SendResult):
        return seen
    tenant_id, organisation_id, key = seen
    connection = connection_for(organisation_id, with_tokens=True)
    if not (connection_ready(connection) and connection.tenant_id == tenant_id):
        # The engine's rule (integrations/outbound/engine._usable_connection): bound to another Xero organisation, the
        # chunk can never go where it went; otherwise it waits for the connection to come back. No call is made.
        claimed = claim(chunk_id, worker, calling=False, lease_seconds=settings.PUSH_LEASE_SECONDS)
        if isinstance(claimed, RunResult):
            return _from_run(claimed)
        moved = connection is not None and bool(connection.tenant_id) and connection.tenant_id != tenant_id
        reason = (
            "The organisation is now connected to another Xero organisation."
            if moved
            else "Waiting for the Xero connection (reconnect or disconnected)."
        )
        return abandon(chunk_id, worker, reason=reason, moved=moved)
    # The limiter before the claim (one Redis call): a chunk that must wait is not claimed; only its next attempt time
    # is written.
    limiter = rate_limiter()
    try:
        ticket = limiter.acquire(tenant_id=tenant_id, waiter=chunk_waiter(key))
    except RateLimitWait as wait:
        chunks().filter(pk=chunk_id, state=C.PENDING).update(
            next_attempt_at=timezone.now() + timedelta(seconds=wait.seconds)
        )
        return SendResult("retry", retry_in=wait.seconds, detail=f"rate limit ({wait.problem})")
    claimed = claim(chunk_id, worker, first=ACT.SEND, has_work=_has_work, lease_seconds=settings.PUSH_LEASE_SECONDS)
    if isinstance(claimed, RunResult):
        limiter.refund(tenant_id=tenant_id, ticket=ticket)
        return _from_run(claimed)
    chunk, action = claimed
    slot = _HeldSlot(limiter, ticket)
    started, clock = timezone.now(), time.monotonic()
    attempt = {"started_at": started, "action": action}
    try:
        client = xero_client(connection, limiter=slot, tokens_just_read=True)
        if action == ACT.SEND:
            response = accounting.invoices_put(
                client, invoices=chunk.payload["Invoices"], idempotency_key=chunk.idempotency_key
            )
        else:
            response = accounting.invoices_get(
                client, invoice_numbers=_in_flight_numbers(chunk), created_by_my_app=True, summary_only=True
            )
    except XeroError as exc:
        return _failed_call(chunk, worker, action, attempt, _elapsed(clock), exc)
    finally:
        slot.close()
    if action == ACT.SEND:
        result = record_put(
            chunk.pk,
            worker,
            response.body or {},
            attempt,
            response.duration_ms,
            response.status,
            response.correlation_id,
            short_code=connection.tenant_short_code,  # the chunk's tenant: checked above
        )
    else:
        result = record_lookup(
            chunk.pk,
            worker,
            response.body or {},
            attempt,
            response.duration_ms,
            response.status,
            response.correlation_id,
        )
    if result.outcome == "done":
        _refill(chunk.organisation_id, connection)
    return result


def _from_run(result: RunResult) -> SendResult:
    """The claim's answer when there is nothing to call now."""
    if result.state == "early":
        return SendResult("retry", retry_in=result.retry_in, detail="early")
    return SendResult(result.state, retry_in=result.retry_in, detail=result.detail)


def _has_work(chunk: OutboundOperation) -> bool:
    """Every invoice a chunk carries is in flight until a record (or a release, which ends the chunk) moves it, under
    the chunk's lock; after a call, a worker that died after its record may have left nothing to send."""
    return Invoice.objects.filter(chunk=chunk, sync_state=S.IN_FLIGHT).exists()


def _failed_call(
    chunk: OutboundOperation, worker: str, action: str, attempt: dict, elapsed: int, exc: XeroError
) -> SendResult:
    """The one classifier's verdict (integrations/xero/errors.py), applied to a chunk; the attempt's outcome in the
    engine's words (integrations/outbound/record.record_failure)."""
    tries = chunk.sends if action == ACT.SEND else chunk.lookups
    verdict = classify(exc, attempt=tries)
    status, correlation_id = getattr(exc, "status", None), getattr(exc, "correlation_id", "")
    if action == ACT.LOOKUP and not isinstance(verdict, WaitForConnection) and not getattr(verdict, "rate_limited", 0):
        # Refused, unanswered or failed: bounded like the engine's lookups (a 429 is only a wait).
        outcome = OUT.RETRY if isinstance(verdict, Retry) else OUT.FAILED
        return lookup_failed(chunk.pk, worker, attempt, elapsed, outcome, status, str(exc), correlation_id)
    if isinstance(verdict, Retry):
        if verdict.rate_limited:
            outcome = OUT.RETRY
        elif verdict.answer_cached:
            outcome = OUT.UNCONFIRMED  # Xero keeps this answer under the key: the next call looks it up
        elif verdict.outcome_unknown:
            outcome = OUT.UNKNOWN
        else:
            outcome = OUT.RETRY
        wait = verdict.after
        if outcome == OUT.UNCONFIRMED:
            wait = backoff_seconds(chunk.lookups + 1)
        return retry_later(chunk.pk, worker, wait, attempt, elapsed, outcome, status, str(exc), correlation_id)
    if isinstance(verdict, WaitForConnection):
        attempt_record(chunk.pk, attempt, elapsed, OUT.WAITING, status, str(exc), correlation_id)
        return abandon(chunk.pk, worker, reason=str(exc))
    if isinstance(verdict, Refused):
        if verdict.elements:
            body = {"Invoices": verdict.elements}
            return record_put(chunk.pk, worker, body, attempt, elapsed, status, correlation_id)
        return refused(chunk.pk, worker, attempt, elapsed, exc)
    # Anything else (Failed): the chunk keeps its key and goes again after the backoff.
    wait = backoff_seconds(chunk.attempts)
    return retry_later(chunk.pk, worker, wait, attempt, elapsed, OUT.RETRY, status, str(exc), correlation_id)


def _refill(organisation_id: int, connection: XeroConnection) -> None:
    """The tenant's dispatcher, chained: its next chunk is created now and queued at the back of the shared
    queue, behind every other tenant's work (one hop fewer than queueing the dispatcher itself). It goes on the
    connection row read for this send (a moment ago); the next chunk's send reads it afresh."""
    from invoices.services.push.dispatch import push_organisation_dispatch

    dispatched = push_organisation_dispatch(organisation_id=organisation_id, connection=connection, refill=True)
    if dispatched.retry_in is not None:
        enqueue_dispatch(organisation_id, countdown=dispatched.retry_in)


# ---------------------------------------------------------------- before the claim


def _peek(chunk_id: int) -> tuple[str, int, str] | SendResult:
    """An unlocked look first: nothing to do, someone else on it, or too early (the claim re-checks all this)."""
    chunk = (
        chunks()
        .filter(pk=chunk_id)
        .values("tenant_id", "organisation_id", "idempotency_key", "state", "next_attempt_at", "lease_until")
        .first()
    )
    now = timezone.now()
    if chunk is None or chunk["state"] not in (C.PENDING, C.SENDING):
        return SendResult("noop")
    if chunk["state"] == C.SENDING and chunk["lease_until"] and chunk["lease_until"] > now:
        return SendResult("busy")
    if (
        chunk["state"] == C.PENDING
        and chunk["next_attempt_at"]
        and chunk["next_attempt_at"] > now + timedelta(milliseconds=50)
    ):
        return SendResult("retry", retry_in=(chunk["next_attempt_at"] - now).total_seconds(), detail="early")
    return chunk["tenant_id"], chunk["organisation_id"], chunk["idempotency_key"]


def _in_flight_numbers(chunk: OutboundOperation) -> list[str]:
    return list(Invoice.objects.filter(chunk=chunk, sync_state=S.IN_FLIGHT).values_list("number", flat=True))


class _HeldSlot:
    """Hands the client the slot taken before the attempt was stored; later acquires go to the limiter."""

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

    def close(self) -> None:
        """Release the slot if the client never used it (it failed before calling)."""
        if self.ticket is not None:
            ticket, self.ticket = self.ticket, None
            self.limiter.release(tenant_id=getattr(ticket, "tenant_id", ""), ticket=ticket)


def _elapsed(clock: float) -> int:
    return int((time.monotonic() - clock) * 1000)
