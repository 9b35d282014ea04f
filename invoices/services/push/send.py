"""One chunk, one call: claim it under a lease, take a limiter slot, PUT /Invoices, record what Xero said.

Which call a claimed chunk makes follows from its stored attempts, so a worker that picks up another's chunk
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
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from integrations.xero.exceptions import (
    XeroAuthError,
    XeroError,
    XeroNotConnected,
    XeroRateLimited,
    XeroRequestError,
    XeroServerError,
    XeroTimeout,
    XeroValidationError,
)
from integrations.xero.ratelimit import RateLimitWait, rate_limiter
from invoices import mappers
from invoices.models import Invoice, InvoiceEvent, PushAttempt, PushChunk
from invoices.services.push.common import (
    backoff_seconds,
    connection_for,
    connection_ready,
    enqueue_dispatch,
    worker_name,
    xero_client,
)

logger = logging.getLogger(__name__)

S = Invoice.SyncState
C = PushChunk.State
A = PushAttempt.Outcome

RESEND, LOOKUP = "resend", "lookup"
PUT_PARAMS = {"summarizeErrors": "false", "unitdp": "4"}
PUT_LABEL, GET_LABEL, LOST_LABEL = "PUT /Invoices", "GET /Invoices lookup", "lost"
# An ACCREC number that already exists (https://github.com/XeroAPI/Xero-Net/issues/238): ours from an earlier
# call of this chunk, or someone else's. Looked up before it is called a failure.
NUMBER_TAKEN = "must be unique"


@dataclass(frozen=True)
class SendResult:
    outcome: str  # done | failed | retry | waiting | released | busy | noop
    retry_in: float | None = None  # the task should run again after this many seconds
    detail: str = ""


def push_chunk_send(*, chunk_id: int, worker: str | None = None) -> SendResult:
    """Make the chunk's next call and record it. Safe to run twice at once: only the lease holder calls."""
    worker = worker or worker_name()
    claimed = _claim(chunk_id, worker)
    if isinstance(claimed, SendResult):
        return claimed
    chunk, mode = claimed
    connection = connection_for(chunk.organisation_id)
    if not connection_ready(connection):
        return _abandon(chunk.pk, worker, reason="Waiting for the Xero connection (reconnect or disconnected).")
    if connection.tenant_id != chunk.tenant_id:
        return _abandon(chunk.pk, worker, reason="The organisation is now connected to another Xero organisation.")
    limiter = rate_limiter()
    try:
        ticket = limiter.acquire(tenant_id=chunk.tenant_id)
    except RateLimitWait as wait:
        return _unclaim(chunk.pk, worker, wait.seconds, f"rate limit ({wait.problem})")
    slot = _HeldSlot(limiter, ticket)
    _attempt_begin(chunk.pk, worker, put=mode == RESEND)
    started, clock = timezone.now(), time.monotonic()
    attempt = {"started_at": started, "label": PUT_LABEL if mode == RESEND else GET_LABEL}
    try:
        client = xero_client(connection, limiter=slot)
        if mode == RESEND:
            response = client.request("PUT", "/Invoices", params=PUT_PARAMS, json=chunk.payload,
                                      idempotency_key=chunk.idempotency_key)
        else:
            response = client.get("/Invoices", params=_lookup_params(chunk))
    except RateLimitWait as wait:  # a second acquire inside the client (after a forced token refresh)
        return _retry(chunk.pk, worker, wait.seconds, attempt, _elapsed(clock), A.RATE_LIMITED, None, str(wait))
    except XeroRateLimited as exc:
        wait = exc.retry_after if exc.problem != "concurrent" else settings.XERO_RATE_MINUTE_SECONDS / 60
        return _retry(chunk.pk, worker, float(wait), attempt, _elapsed(clock), A.RATE_LIMITED, exc.status, str(exc),
                      exc.correlation_id)
    except XeroTimeout as exc:
        outcome = A.TIMEOUT if exc.outcome_unknown else A.ERROR
        return _retry(chunk.pk, worker, backoff_seconds(chunk.attempts + 1), attempt, _elapsed(clock), outcome,
                      None, str(exc))
    except XeroServerError as exc:
        return _retry(chunk.pk, worker, max(backoff_seconds(chunk.attempts + 1), float(exc.retry_after or 0)),
                      attempt, _elapsed(clock), A.SERVER_ERROR, exc.status, str(exc), exc.correlation_id)
    except (XeroAuthError, XeroNotConnected) as exc:
        _attempt_record(chunk.pk, attempt, _elapsed(clock), A.AUTH, exc.status, str(exc), exc.correlation_id)
        return _abandon(chunk.pk, worker, reason=str(exc))
    except XeroValidationError as exc:
        if mode == RESEND and exc.elements:
            return _record_put(chunk.pk, worker, {"Invoices": exc.elements}, attempt, _elapsed(clock), A.VALIDATION,
                               exc.status, exc.correlation_id)
        return _refused(chunk.pk, worker, mode, attempt, _elapsed(clock), exc)
    except XeroRequestError as exc:
        return _refused(chunk.pk, worker, mode, attempt, _elapsed(clock), exc)
    except XeroError as exc:
        return _retry(chunk.pk, worker, backoff_seconds(chunk.attempts + 1), attempt, _elapsed(clock), A.ERROR,
                      exc.status, str(exc), exc.correlation_id)
    finally:
        slot.close()
    if mode == RESEND:
        return _record_put(chunk.pk, worker, response.body or {}, attempt, response.duration_ms, A.OK,
                           response.status, response.correlation_id)
    return _record_lookup(chunk.pk, worker, response.body or {}, attempt, response.duration_ms,
                          response.status, response.correlation_id)


# ---------------------------------------------------------------- the claim

def _claim(chunk_id: int, worker: str) -> tuple[PushChunk, str] | SendResult:
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
                # The previous holder died between starting a call and recording it: its outcome is unknown.
                PushAttempt.objects.create(chunk=chunk, organisation_id=chunk.organisation_id, started_at=now,
                                           outcome=A.TIMEOUT, detail=f"{LOST_LABEL}: worker {chunk.claimed_by} "
                                           "stopped before recording its call; outcome unknown")
            logger.warning("push.chunk.lease_expired", extra={
                "event": "push.chunk.lease_expired", "chunk_id": chunk.pk, "organisation_id": chunk.organisation_id,
                "tenant_id": chunk.tenant_id, "previous_worker": chunk.claimed_by, "lost_attempts": max(0, lost)})
        elif chunk.next_attempt_at and chunk.next_attempt_at > now + timedelta(milliseconds=50):
            return SendResult("retry", retry_in=(chunk.next_attempt_at - now).total_seconds(), detail="early")
        if not Invoice.objects.filter(chunk=chunk, sync_state=S.IN_FLIGHT).exists():
            chunk.state, chunk.completed_at, chunk.claimed_by, chunk.lease_expires_at = C.DONE, now, "", None
            chunk.save(update_fields=["state", "completed_at", "claimed_by", "lease_expires_at"])
            return SendResult("done", detail="nothing left in flight")
        mode = _mode(chunk, now)
        chunk.state = C.SENDING
        chunk.claimed_by = worker[:100]
        chunk.lease_expires_at = now + timedelta(seconds=settings.PUSH_LEASE_SECONDS)
        chunk.save(update_fields=["state", "claimed_by", "lease_expires_at"])
        return chunk, mode


def _mode(chunk: PushChunk, now) -> str:
    puts = list(chunk.push_attempts.exclude(detail__startswith=GET_LABEL).values_list("outcome", "http_status"))
    if any(outcome in (A.OK, A.VALIDATION) or status == 500 for outcome, status in puts):
        return LOOKUP
    unknown = any(outcome in (A.TIMEOUT, A.SERVER_ERROR) for outcome, _ in puts)
    if unknown and not _window_open(chunk, now):
        return LOOKUP
    return RESEND


def _window_open(chunk: PushChunk, now) -> bool:
    """Is a resend still inside the key's window? Measured from our first attempt, which is before Xero's."""
    if chunk.first_attempt_at is None:
        return True
    window = settings.XERO_IDEMPOTENCY_WINDOW_SECONDS
    return now < chunk.first_attempt_at + timedelta(seconds=window * 11 / 12)


def _attempt_begin(chunk_id: int, worker: str, *, put: bool) -> None:
    """Count the attempt before the call, committed: if this worker dies mid-call, the next one knows."""
    from django.db.models import F
    from django.db.models.functions import Coalesce

    now = timezone.now()
    fields: dict[str, Any] = {"attempts": F("attempts") + 1,
                              "lease_expires_at": now + timedelta(seconds=settings.PUSH_LEASE_SECONDS)}
    if put:
        fields["first_attempt_at"] = Coalesce("first_attempt_at", now)
    PushChunk.objects.filter(pk=chunk_id, claimed_by=worker[:100]).update(**fields)


def _lookup_params(chunk: PushChunk) -> dict[str, Any]:
    numbers = list(Invoice.objects.filter(chunk=chunk, sync_state=S.IN_FLIGHT).values_list("number", flat=True))
    return {"InvoiceNumbers": ",".join(numbers), "createdByMyApp": "true", "summaryOnly": "true", "page": 1}


class _HeldSlot:
    """Hands the client the slot taken before the attempt was stored; later acquires go to the limiter."""

    def __init__(self, limiter: Any, ticket: Any) -> None:
        self.limiter, self.ticket = limiter, ticket

    def acquire(self, *, tenant_id: str) -> Any:
        if self.ticket is not None:
            ticket, self.ticket = self.ticket, None
            return ticket
        return self.limiter.acquire(tenant_id=tenant_id)

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


# ---------------------------------------------------------------- recording

def _attempt_record(chunk_id: int, attempt: dict, duration_ms: int, outcome: str, status: int | None, detail: str,
                    correlation_id: str = "") -> None:
    chunk = PushChunk.objects.only("organisation_id").get(pk=chunk_id)
    PushAttempt.objects.create(chunk_id=chunk_id, organisation_id=chunk.organisation_id,
                               started_at=attempt["started_at"], duration_ms=max(0, duration_ms), http_status=status,
                               outcome=outcome, correlation_id=(correlation_id or "")[:64],
                               detail=f"{attempt['label']}: {detail}"[:2000])


def _locked(chunk_id: int) -> PushChunk:
    return PushChunk.objects.select_for_update().get(pk=chunk_id)


def _in_flight(chunk: PushChunk) -> list[Invoice]:
    return list(Invoice.objects.select_for_update(of=("self",)).filter(chunk=chunk, sync_state=S.IN_FLIGHT)
                .select_related("customer").order_by("pk"))


def _unclaim(chunk_id: int, worker: str, seconds: float, why: str) -> SendResult:
    """Give the chunk back without a call: it goes again after `seconds`."""
    now = timezone.now()
    PushChunk.objects.filter(pk=chunk_id, state=C.SENDING, claimed_by=worker[:100]).update(
        state=C.PENDING, claimed_by="", lease_expires_at=None, next_attempt_at=now + timedelta(seconds=seconds))
    return SendResult("retry", retry_in=seconds, detail=why)


@transaction.atomic
def _retry(chunk_id: int, worker: str, seconds: float, attempt: dict, duration_ms: int, outcome: str,
           status: int | None, detail: str, correlation_id: str = "") -> SendResult:
    """The call failed in a way worth retrying (429, 5xx, timeout): record it and wait `seconds`."""
    chunk = _locked(chunk_id)
    _attempt_record(chunk_id, attempt, duration_ms, outcome, status, detail, correlation_id)
    now = timezone.now()
    chunk.last_error = detail[:2000]
    fields = ["last_error"]
    if chunk.state == C.SENDING and chunk.claimed_by == worker[:100]:
        chunk.state, chunk.claimed_by, chunk.lease_expires_at = C.PENDING, "", None
        chunk.next_attempt_at = now + timedelta(seconds=seconds)
        fields += ["state", "claimed_by", "lease_expires_at", "next_attempt_at"]
    chunk.save(update_fields=fields)
    logger.warning("push.chunk.retry", extra={
        "event": "push.chunk.retry", "chunk_id": chunk_id, "organisation_id": chunk.organisation_id,
        "tenant_id": chunk.tenant_id, "outcome": outcome, "status": status, "retry_in": round(seconds, 3),
        "correlation_id": correlation_id, "attempts": chunk.attempts})
    return SendResult("retry", retry_in=seconds, detail=outcome)


@transaction.atomic
def _abandon(chunk_id: int, worker: str, *, reason: str) -> SendResult:
    """The connection cannot be used (needs reconnect, disconnected, 401/403). Xero wrote nothing on this call.

    If no earlier call of the chunk may have written either, its invoices simply go back to pending and wait;
    otherwise the chunk is kept (same payload and key) and resumes once the connection is back.
    """
    chunk = _locked(chunk_id)
    now = timezone.now()
    maybe_written = chunk.push_attempts.exclude(detail__startswith=GET_LABEL).filter(
        outcome__in=[A.OK, A.VALIDATION, A.TIMEOUT, A.SERVER_ERROR]).exists()
    chunk.last_error = reason[:2000]
    chunk.claimed_by, chunk.lease_expires_at = "", None
    if maybe_written:
        chunk.state = C.PENDING
        chunk.next_attempt_at = now + timedelta(seconds=settings.PUSH_SWEEP_SECONDS)
        chunk.save(update_fields=["state", "last_error", "claimed_by", "lease_expires_at", "next_attempt_at"])
        outcome = "waiting"
    else:
        invoices = _in_flight(chunk)
        Invoice.objects.filter(pk__in=[i.pk for i in invoices]).update(sync_state=S.PENDING, updated_at=now)
        chunk.state, chunk.completed_at = C.FAILED, now
        chunk.save(update_fields=["state", "last_error", "claimed_by", "lease_expires_at", "completed_at"])
        outcome = "released"
    logger.warning("push.chunk.connection_unusable", extra={
        "event": "push.chunk.connection_unusable", "chunk_id": chunk_id, "organisation_id": chunk.organisation_id,
        "tenant_id": chunk.tenant_id, "outcome": outcome, "reason": reason[:200]})
    return SendResult(outcome, detail=reason)


@transaction.atomic
def _refused(chunk_id: int, worker: str, mode: str, attempt: dict, duration_ms: int, exc: XeroError) -> SendResult:
    """Xero refused the whole request (a 4xx that is not per element). A PUT fails its invoices; a lookup retries."""
    if mode == LOOKUP:
        return _retry(chunk_id, worker, backoff_seconds(3), attempt, duration_ms, A.ERROR, exc.status, str(exc),
                      exc.correlation_id)
    chunk = _locked(chunk_id)
    outcome = A.VALIDATION if isinstance(exc, XeroValidationError) else A.ERROR
    _attempt_record(chunk_id, attempt, duration_ms, outcome, exc.status, str(exc), exc.correlation_id)
    now = timezone.now()
    message = exc.detail or str(exc)
    invoices = _in_flight(chunk)
    for invoice in invoices:
        _failed(invoice, [message], now)
    Invoice.objects.bulk_update(invoices, ["sync_state", "sync_errors", "sync_warnings", "updated_at"])
    _events(invoices, "failed", lambda i: f"Xero refused the request: {message}")
    chunk.state, chunk.completed_at, chunk.last_error = C.FAILED, now, message[:2000]
    chunk.claimed_by, chunk.lease_expires_at = "", None
    chunk.save(update_fields=["state", "completed_at", "last_error", "claimed_by", "lease_expires_at"])
    enqueue_dispatch(chunk.organisation_id)
    return SendResult("failed", detail=message)


@transaction.atomic
def _record_put(chunk_id: int, worker: str, body: dict, attempt: dict, duration_ms: int, outcome: str,
                status: int | None, correlation_id: str) -> SendResult:
    """Every element's outcome: InvoiceID, number, status, validation errors (failed), warnings (warning)."""
    chunk = _locked(chunk_id)
    outcomes = mappers.invoice_outcomes(body)
    _attempt_record(chunk_id, attempt, duration_ms, outcome, status, f"{len(outcomes)} elements", correlation_id)
    invoices = _in_flight(chunk)
    by_number = {o.number.strip().upper(): o for o in outcomes if o.number}
    now = timezone.now()
    synced, failed, unresolved = [], [], []
    for index, invoice in enumerate(invoices):
        result = by_number.get(invoice.number.strip().upper())
        if result is None and not by_number and len(outcomes) == len(invoices):
            result = outcomes[index]
        if result is None:
            unresolved.append(invoice)  # not echoed back: find out by looking it up
        elif result.created:
            _synced(invoice, result, now)
            synced.append(invoice)
        elif any(NUMBER_TAKEN in message.lower() for message in result.errors):
            invoice.sync_errors = result.errors
            unresolved.append(invoice)
        else:
            _failed(invoice, result.errors or ["Xero did not create this invoice."], now)
            failed.append(invoice)
    return _finish(chunk, worker, synced, failed, unresolved, [], now,
                   note=f"{len(synced)} in Xero, {len(failed)} failed, {len(unresolved)} to look up")


@transaction.atomic
def _record_lookup(chunk_id: int, worker: str, body: dict, attempt: dict, duration_ms: int, status: int,
                   correlation_id: str) -> SendResult:
    """Resolve what is left of the chunk from Xero itself: found -> synced, not found -> pending again."""
    chunk = _locked(chunk_id)
    elements = body.get("Invoices") or []
    _attempt_record(chunk_id, attempt, duration_ms, A.OK, status, f"{len(elements)} found", correlation_id)
    found: dict[str, tuple[mappers.InvoiceOutcome, dict]] = {}
    for element in elements:
        result = mappers.invoice_outcome(element)
        if result.invoice_id and result.number:
            found[result.number.strip().upper()] = (result, element)
    now = timezone.now()
    synced, failed, requeued = [], [], []
    for invoice in _in_flight(chunk):
        match = found.get(invoice.number.strip().upper())
        contact_id = ((match[1].get("Contact") or {}).get("ContactID") or "") if match else ""
        ours = match is not None and (not contact_id or not invoice.customer.xero_contact_id
                                      or contact_id.lower() == invoice.customer.xero_contact_id.lower())
        if ours:
            _synced(invoice, match[0], now)
            synced.append(invoice)
        elif invoice.sync_errors:
            _failed(invoice, invoice.sync_errors, now)  # the number belongs to someone else's invoice
            failed.append(invoice)
        else:
            invoice.sync_state, invoice.updated_at = S.PENDING, now
            requeued.append(invoice)
    return _finish(chunk, worker, synced, failed, [], requeued, now,
                   note=f"resolved by lookup: {len(synced)} found in Xero, {len(failed)} failed, "
                        f"{len(requeued)} sent again in a new chunk")


def _finish(chunk: PushChunk, worker: str, synced: list[Invoice], failed: list[Invoice], unresolved: list[Invoice],
            requeued: list[Invoice], now, *, note: str) -> SendResult:
    changed = synced + failed + unresolved + requeued
    Invoice.objects.bulk_update(changed, ["sync_state", "xero_invoice_id", "xero_status", "xero_updated_at",
                                          "subtotal", "total_tax", "total", "amount_due", "amount_paid",
                                          "amount_credited", "sync_errors", "sync_warnings", "synced_at",
                                          "updated_at"])
    _events(synced, "synced", lambda i: f"In Xero as {i.number} ({i.xero_status or 'created'})"
            + (f", with warnings: {'; '.join(i.sync_warnings)}" if i.sync_warnings else ""))
    _events(failed, "failed", lambda i: "Xero rejected it: " + "; ".join(i.sync_errors))
    _events(requeued, "requeued", lambda i: "Not found in Xero after an interrupted call: it goes again")
    chunk.last_error = note[:2000]
    chunk.claimed_by, chunk.lease_expires_at = "", None
    if unresolved:
        chunk.state, chunk.next_attempt_at = C.PENDING, now
        result = SendResult("retry", retry_in=0.0, detail=note)
    else:
        chunk.state, chunk.completed_at = C.DONE, now
        result = SendResult("done", detail=note)
    chunk.save(update_fields=["state", "next_attempt_at", "completed_at", "last_error", "claimed_by",
                              "lease_expires_at"])
    if synced:
        _sync_recorded(chunk.organisation_id, now)
    if result.outcome == "done":
        enqueue_dispatch(chunk.organisation_id)
    logger.info("push.chunk.recorded", extra={
        "event": "push.chunk.recorded", "chunk_id": chunk.pk, "organisation_id": chunk.organisation_id,
        "tenant_id": chunk.tenant_id, "synced": len(synced), "failed": len(failed), "unresolved": len(unresolved),
        "requeued": len(requeued), "worker": worker})
    return result


def _synced(invoice: Invoice, result: mappers.InvoiceOutcome, now) -> None:
    invoice.sync_state = S.WARNING if result.warnings else S.SYNCED
    invoice.xero_invoice_id = result.invoice_id
    invoice.xero_status = result.status[:12]
    invoice.xero_updated_at = result.updated_at
    for field, value in (("subtotal", result.subtotal), ("total_tax", result.total_tax), ("total", result.total),
                         ("amount_due", result.amount_due), ("amount_paid", result.amount_paid),
                         ("amount_credited", result.amount_credited)):
        if value is not None:
            setattr(invoice, field, value)
    invoice.sync_errors, invoice.sync_warnings = [], list(result.warnings)
    invoice.synced_at = invoice.updated_at = now


def _failed(invoice: Invoice, errors: list[str], now) -> None:
    invoice.sync_state = S.FAILED
    invoice.sync_errors, invoice.sync_warnings = list(errors), []
    invoice.updated_at = now


def _events(invoices: list[Invoice], kind: str, message) -> None:
    InvoiceEvent.objects.bulk_create([
        InvoiceEvent(invoice=invoice, organisation_id=invoice.organisation_id, source=InvoiceEvent.Source.SYSTEM,
                     kind=kind, message=message(invoice)[:500])
        for invoice in invoices
    ])


def _sync_recorded(organisation_id: int, now) -> None:
    from integrations.services.connection import xero_connection_sync_recorded
    from organisations.models import Organisation

    xero_connection_sync_recorded(organisation=Organisation(pk=organisation_id), at=now)
