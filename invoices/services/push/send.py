"""One chunk, one call: the outbound engine's loop (integrations/outbound/engine.operation_run) takes a limiter slot,
claims the chunk under a lease and decides its call; this module is what the chunk's kind (invoices/outbound/chunks.py)
gives it: PUT /Invoices or the lookup, and the record of what Xero said, element by element (record.py, attempts.py).

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

from django.conf import settings

from integrations.models import XeroConnection
from integrations.outbound import engine
from integrations.outbound import kinds as k
from integrations.outbound.models import OutboundAttempt, OutboundOperation
from integrations.outbound.record import RunResult
from integrations.xero import accounting
from integrations.xero.client import XeroClient
from integrations.xero.errors import Refused, Retry, WaitForConnection, classify
from integrations.xero.exceptions import XeroError
from integrations.xero.types import XeroResponse
from invoices.models import Invoice
from invoices.services.push.attempts import (
    abandon,
    attempt_record,
    lookup_failed,
    refused,
    retry_later,
    sends_exhausted,
)
from invoices.services.push.common import backoff_seconds, enqueue_dispatch, worker_name
from invoices.services.push.record import record_lookup, record_put

logger = logging.getLogger(__name__)

S = Invoice.SyncState
ACT, OUT = OutboundAttempt.Action, OutboundAttempt.Outcome


def push_chunk_send(*, chunk_id: int, worker: str | None = None) -> RunResult:
    """Make the chunk's next call and record it. Safe to run twice at once: only the lease holder calls."""
    result = engine.operation_run(operation_id=chunk_id, worker=worker or worker_name())
    if result.state == "early":
        # Nothing was called: not due yet, or the rate limit's wait. The push says retry.
        return RunResult("retry", retry_in=result.retry_in, detail=result.detail or "early")
    return result


# ---------------------------------------------------------------- the kind's calls


def chunk_put(client: XeroClient, chunk: OutboundOperation) -> XeroResponse:
    """The stored payload, under the chunk's key."""
    return accounting.invoices_put(client, invoices=chunk.payload["Invoices"], idempotency_key=chunk.idempotency_key)


def chunk_look_up(client: XeroClient, chunk: OutboundOperation) -> XeroResponse:
    """The numbers of the chunk's invoices still in flight, among the invoices this app created."""
    numbers = list(Invoice.objects.filter(chunk=chunk, sync_state=S.IN_FLIGHT).values_list("number", flat=True))
    return accounting.invoices_get(client, invoice_numbers=numbers, created_by_my_app=True, summary_only=True)


def chunk_has_work(chunk: OutboundOperation) -> bool:
    """Every invoice a chunk carries is in flight until a record (or a release, which ends the chunk) moves it, under
    the chunk's lock; after a call, a worker that died after its record may have left nothing to send."""
    return Invoice.objects.filter(chunk=chunk, sync_state=S.IN_FLIGHT).exists()


def chunk_unusable(chunk: OutboundOperation, worker: str, why: k.Unusable) -> RunResult:
    """Bound to another Xero organisation, the chunk can never go where it went; otherwise it waits for the
    connection to come back (attempts.abandon decides with what the chunk may have written)."""
    return abandon(chunk.pk, worker, reason=why.message, moved=why.moved)


# ---------------------------------------------------------------- the kind's record


def chunk_answered(chunk: OutboundOperation, call: k.Call, response: XeroResponse) -> RunResult:
    attempt = {"started_at": call.started_at, "action": call.action}
    if call.action == ACT.SEND:
        result = record_put(
            chunk.pk,
            call.worker,
            response.body or {},
            attempt,
            response.duration_ms,
            response.status,
            response.correlation_id,
            short_code=call.connection.tenant_short_code,  # the chunk's tenant: the engine checked it
        )
    else:
        result = record_lookup(
            chunk.pk,
            call.worker,
            response.body or {},
            attempt,
            response.duration_ms,
            response.status,
            response.correlation_id,
        )
    if result.state == "done":
        _refill(chunk.organisation_id, call.connection)
    return result


def chunk_failed(chunk: OutboundOperation, call: k.Call, elapsed: int, exc: XeroError) -> RunResult:
    """The one classifier's verdict (integrations/xero/errors.py), applied to a chunk; the attempt's outcome in the
    engine's words (integrations/outbound/record.record_failure)."""
    action, worker = call.action, call.worker
    attempt = {"started_at": call.started_at, "action": action}
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
        if verdict.refused and tries >= settings.OUTBOUND_MAX_SENDS:
            # Refused with the connection left connected, again: the invoices fail with Xero's words. (An outage
            # keeps its capped waits: a lost answer ends in the lookups' bound, a send that never left waits on.)
            return sends_exhausted(chunk.pk, worker, attempt, elapsed, status, str(exc), correlation_id)
        wait = backoff_seconds(chunk.lookups + 1) if outcome == OUT.UNCONFIRMED else verdict.after
        return retry_later(chunk.pk, worker, wait, attempt, elapsed, outcome, status, str(exc), correlation_id)
    if isinstance(verdict, WaitForConnection):
        attempt_record(chunk.pk, attempt, elapsed, OUT.WAITING, status, str(exc), correlation_id)
        return abandon(chunk.pk, worker, reason=str(exc))
    if isinstance(verdict, Refused):
        if verdict.elements:
            body = {"Invoices": verdict.elements}
            return record_put(chunk.pk, worker, body, attempt, elapsed, status, correlation_id)
        return refused(chunk.pk, worker, attempt, elapsed, exc)
    # Anything else (Failed): the chunk keeps its key and goes again after the backoff, as many sends as any.
    if tries >= settings.OUTBOUND_MAX_SENDS:
        return sends_exhausted(chunk.pk, worker, attempt, elapsed, status, str(exc), correlation_id)
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


def lease_seconds() -> float:
    return settings.PUSH_LEASE_SECONDS
