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
from django.db import transaction
from django.utils import timezone

from integrations.models import XeroConnection
from integrations.outbound.decide import HISTORY, next_call
from integrations.outbound.models import OutboundAttempt
from integrations.xero import accounting
from integrations.xero.errors import Refused, Retry, WaitForConnection, classify
from integrations.xero.exceptions import (
    XeroError,
)
from integrations.xero.ratelimit import RateLimitWait, rate_limiter
from invoices.models import Invoice, PushAttempt, PushChunk
from invoices.services.push.attempts import abandon, attempt_record, lookup_failed, refused, retry_later
from invoices.services.push.common import (
    LOOKUP,
    SendResult,
    backoff_seconds,
    chunk_waiter,
    connection_for,
    connection_ready,
    enqueue_dispatch,
    worker_name,
    xero_client,
)
from invoices.services.push.record import record_lookup, record_put

logger = logging.getLogger(__name__)

S = Invoice.SyncState
C = PushChunk.State
A = PushAttempt.Outcome
ACT, OUT = PushAttempt.Action, OutboundAttempt.Outcome

RESEND = "resend"
LOST_LABEL = "lost"


def push_chunk_send(*, chunk_id: int, worker: str | None = None) -> SendResult:
    """Make the chunk's next call and record it. Safe to run twice at once: only the lease holder calls."""
    worker = worker or worker_name()
    seen = _peek(chunk_id)
    if isinstance(seen, SendResult):
        return seen
    tenant_id, organisation_id, key = seen
    connection = connection_for(organisation_id, with_tokens=True)
    usable = connection_ready(connection) and connection.tenant_id == tenant_id
    limiter = rate_limiter()
    ticket = None
    if usable:
        # The limiter before the claim (one Redis call): a chunk that must wait is not claimed; only its next attempt
        # time is written.
        try:
            ticket = limiter.acquire(tenant_id=tenant_id, waiter=chunk_waiter(key))
        except RateLimitWait as wait:
            PushChunk.objects.filter(pk=chunk_id, state=C.PENDING).update(
                next_attempt_at=timezone.now() + timedelta(seconds=wait.seconds)
            )
            return SendResult("retry", retry_in=wait.seconds, detail=f"rate limit ({wait.problem})")
    claimed = _claim(chunk_id, worker, counting=usable)
    if isinstance(claimed, SendResult):
        limiter.refund(tenant_id=tenant_id, ticket=ticket)
        return claimed
    chunk, mode = claimed
    if not usable:
        # The engine's rule (integrations/outbound/engine._usable_connection): bound to another Xero organisation, the
        # chunk can never go where it went; otherwise it waits for the connection to come back.
        moved = connection is not None and bool(connection.tenant_id) and connection.tenant_id != tenant_id
        reason = (
            "The organisation is now connected to another Xero organisation."
            if moved
            else "Waiting for the Xero connection (reconnect or disconnected)."
        )
        return abandon(chunk.pk, worker, reason=reason, moved=moved)
    slot = _HeldSlot(limiter, ticket)
    started, clock = timezone.now(), time.monotonic()
    attempt = {"started_at": started, "action": ACT.SEND if mode == RESEND else ACT.LOOKUP}
    try:
        client = xero_client(connection, limiter=slot, tokens_just_read=True)
        if mode == RESEND:
            response = accounting.invoices_put(
                client, invoices=chunk.payload["Invoices"], idempotency_key=chunk.idempotency_key
            )
        else:
            response = accounting.invoices_get(
                client, invoice_numbers=_in_flight_numbers(chunk), created_by_my_app=True, summary_only=True
            )
    except XeroError as exc:
        return _failed_call(chunk, worker, mode, attempt, _elapsed(clock), exc)
    finally:
        slot.close()
    if mode == RESEND:
        result = record_put(
            chunk.pk,
            worker,
            response.body or {},
            attempt,
            response.duration_ms,
            A.OK,
            response.status,
            response.correlation_id,
            short_code=connection.tenant_short_code,  # the chunk's tenant: `usable` checked it above
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


def _failed_call(chunk: PushChunk, worker: str, mode: str, attempt: dict, elapsed: int, exc: XeroError) -> SendResult:
    """The one classifier's verdict (integrations/xero/errors.py), applied to a chunk."""
    verdict = classify(exc, attempt=chunk.attempts)
    status, correlation_id = getattr(exc, "status", None), getattr(exc, "correlation_id", "")
    if mode == LOOKUP and not isinstance(verdict, WaitForConnection) and not getattr(verdict, "rate_limited", False):
        # Refused, unanswered or failed: bounded like the engine's lookups (a 429 is only a wait).
        outcome = A.SERVER_ERROR if status and status >= 500 else A.TIMEOUT if status is None else A.ERROR
        return lookup_failed(chunk.pk, worker, attempt, elapsed, outcome, status, str(exc), correlation_id)
    if isinstance(verdict, Retry):
        if verdict.rate_limited:
            outcome = A.RATE_LIMITED
        elif verdict.outcome_unknown:
            outcome = A.SERVER_ERROR if status and status >= 500 else A.TIMEOUT
        else:
            outcome = A.ERROR
        return retry_later(chunk.pk, worker, verdict.after, attempt, elapsed, outcome, status, str(exc), correlation_id)
    if isinstance(verdict, WaitForConnection):
        attempt_record(
            chunk.pk, attempt, elapsed, A.AUTH, status, str(exc), correlation_id, organisation_id=chunk.organisation_id
        )
        return abandon(chunk.pk, worker, reason=str(exc))
    if isinstance(verdict, Refused):
        if mode == RESEND and verdict.elements:
            body = {"Invoices": verdict.elements}
            return record_put(chunk.pk, worker, body, attempt, elapsed, A.VALIDATION, status, correlation_id)
        return refused(chunk.pk, worker, attempt, elapsed, exc)
    # Anything else (Failed): the chunk keeps its key and goes again after the backoff.
    wait = backoff_seconds(chunk.attempts)
    return retry_later(chunk.pk, worker, wait, attempt, elapsed, A.ERROR, status, str(exc), correlation_id)


def _refill(organisation_id: int, connection: XeroConnection) -> None:
    """The tenant's dispatcher, chained: its next chunk is created now and queued at the back of the shared
    queue, behind every other tenant's work (one hop fewer than queueing the dispatcher itself). It goes on the
    connection row read for this send (a moment ago); the next chunk's send reads it afresh."""
    from invoices.services.push.dispatch import push_organisation_dispatch

    dispatched = push_organisation_dispatch(organisation_id=organisation_id, connection=connection, refill=True)
    if dispatched.retry_in is not None:
        enqueue_dispatch(organisation_id, countdown=dispatched.retry_in)


# ---------------------------------------------------------------- the claim


def _peek(chunk_id: int) -> tuple[str, int, str] | SendResult:
    """An unlocked look first: nothing to do, someone else on it, or too early (the claim re-checks all this)."""
    chunk = (
        PushChunk.objects.filter(pk=chunk_id)
        .values("tenant_id", "organisation_id", "idempotency_key", "state", "next_attempt_at", "lease_expires_at")
        .first()
    )
    now = timezone.now()
    if chunk is None or chunk["state"] in (C.DONE, C.FAILED):
        return SendResult("noop")
    if chunk["state"] == C.SENDING and chunk["lease_expires_at"] and chunk["lease_expires_at"] > now:
        return SendResult("busy")
    if (
        chunk["state"] == C.PENDING
        and chunk["next_attempt_at"]
        and chunk["next_attempt_at"] > now + timedelta(milliseconds=50)
    ):
        return SendResult("retry", retry_in=(chunk["next_attempt_at"] - now).total_seconds(), detail="early")
    return chunk["tenant_id"], chunk["organisation_id"], chunk["idempotency_key"]


def _claim(chunk_id: int, worker: str, *, counting: bool) -> tuple[PushChunk, str] | SendResult:
    """Take the chunk under a lease and decide its call. With `counting`, the attempt is counted (and the key's
    window started) in the same commit, before the call: if this worker dies mid-call, the next one knows."""
    with transaction.atomic():
        chunk = PushChunk.objects.select_for_update().filter(pk=chunk_id).first()
        if chunk is None or chunk.state in (C.DONE, C.FAILED):
            return SendResult("noop")
        now = timezone.now()
        if chunk.state == C.SENDING:
            if chunk.lease_expires_at and chunk.lease_expires_at > now:
                return SendResult("busy", detail=chunk.claimed_by)
            lost = chunk.attempts - chunk.push_attempts.count()
            if lost > 0:
                # The previous holder died between starting a call and recording it: its outcome is unknown. The call
                # it made was the one the same rule names now (a key's window only closes, so a lost send is at worst
                # taken for a lookup, and looked up).
                PushAttempt.objects.create(
                    chunk=chunk,
                    organisation_id=chunk.organisation_id,
                    action=ACT.LOOKUP if _mode(chunk, now) == LOOKUP else ACT.SEND,
                    started_at=now,
                    outcome=A.TIMEOUT,
                    detail=f"{LOST_LABEL}: worker {chunk.claimed_by} "
                    "stopped before recording its call; outcome unknown",
                )
            logger.warning(
                "push.chunk.lease_expired",
                extra={
                    "event": "push.chunk.lease_expired",
                    "chunk_id": chunk.pk,
                    "organisation_id": chunk.organisation_id,
                    "tenant_id": chunk.tenant_id,
                    "previous_worker": chunk.claimed_by,
                    "lost_attempts": max(0, lost),
                },
            )
        elif chunk.next_attempt_at and chunk.next_attempt_at > now + timedelta(milliseconds=50):
            return SendResult("retry", retry_in=(chunk.next_attempt_at - now).total_seconds(), detail="early")
        # Before the first counted call every invoice it carries is still in flight: only a record (or a release,
        # which ends the chunk) moves them, under this lock. After one, a dead worker may have left nothing to send.
        if chunk.attempts and not Invoice.objects.filter(chunk=chunk, sync_state=S.IN_FLIGHT).exists():
            chunk.state, chunk.completed_at, chunk.claimed_by, chunk.lease_expires_at = C.DONE, now, "", None
            chunk.save(update_fields=["state", "completed_at", "claimed_by", "lease_expires_at"])
            return SendResult("done", detail="nothing left in flight")
        mode = _mode(chunk, now)
        chunk.state = C.SENDING
        chunk.claimed_by = worker[:100]
        chunk.lease_expires_at = now + timedelta(seconds=settings.PUSH_LEASE_SECONDS)
        fields = ["state", "claimed_by", "lease_expires_at"]
        if counting:
            chunk.attempts += 1
            fields.append("attempts")
            if mode == RESEND and chunk.first_attempt_at is None:
                chunk.first_attempt_at = now
                fields.append("first_attempt_at")
        chunk.save(update_fields=fields)
        return chunk, mode


def _mode(chunk: PushChunk, now) -> str:
    """The engine's rule (integrations/outbound/decide.next_call) over the chunk's attempts, newest first."""
    if chunk.attempts == 0:
        # No call counted yet, so none recorded (a chunk never has more attempt rows than counted attempts): the first
        # send, decided without reading the (empty) attempt history.
        return RESEND
    history = chunk.push_attempts.order_by("-started_at", "-pk").values_list("action", "outcome", "http_status")
    call = next_call(
        (_as_engine_attempt(*row) for row in history[:HISTORY]),
        key_first_sent_at=chunk.first_attempt_at,
        now=now,
        first=ACT.SEND,
    )
    return LOOKUP if call == ACT.LOOKUP else RESEND


def _as_engine_attempt(action: str, outcome: str, status: int | None) -> tuple[str, str]:
    """A chunk's attempt in the engine's words. An answered call (some elements left to resolve) or a 500 (kept under
    the key) did not confirm the write; a timeout or another 5xx left its outcome unknown; the rest (429, 401/403,
    other errors) wrote nothing."""
    if outcome in (A.OK, A.VALIDATION) or (status == 500 and action == ACT.SEND):
        return action, OUT.UNCONFIRMED
    if outcome in (A.TIMEOUT, A.SERVER_ERROR):
        return action, OUT.UNKNOWN
    return action, OUT.RETRY


def _in_flight_numbers(chunk: PushChunk) -> list[str]:
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
