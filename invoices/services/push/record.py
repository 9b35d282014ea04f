"""Recording a chunk's calls: every attempt (status, duration, correlation id) and every element's outcome,
and the chunk's next state. Each function runs in one transaction with the chunk row locked."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from integrations.models import XeroConnection
from integrations.xero.exceptions import XeroError, XeroValidationError
from invoices import mappers
from invoices.models import Invoice, InvoiceEvent, PushAttempt, PushChunk
from invoices.services.push.common import backoff_seconds, enqueue_dispatch
from invoices.sync_states import sync_state_move, sync_state_update

logger = logging.getLogger(__name__)

S = Invoice.SyncState
C = PushChunk.State
A = PushAttempt.Outcome

LOOKUP = "lookup"
GET_LABEL = "GET /Invoices lookup"
# An ACCREC number that already exists (https://github.com/XeroAPI/Xero-Net/issues/238): ours from an earlier
# call of this chunk, or someone else's. Looked up before it is called a failure.
NUMBER_TAKEN = "must be unique"


@dataclass(frozen=True)
class SendResult:
    outcome: str  # done | failed | retry | waiting | released | busy | noop
    retry_in: float | None = None  # the task should run again after this many seconds
    detail: str = ""


def attempt_record(
    chunk_id: int,
    attempt: dict,
    duration_ms: int,
    outcome: str,
    status: int | None,
    detail: str,
    correlation_id: str = "",
) -> None:
    chunk = PushChunk.objects.only("organisation_id").get(pk=chunk_id)
    PushAttempt.objects.create(
        chunk_id=chunk_id,
        organisation_id=chunk.organisation_id,
        started_at=attempt["started_at"],
        duration_ms=max(0, duration_ms),
        http_status=status,
        outcome=outcome,
        correlation_id=(correlation_id or "")[:64],
        detail=f"{attempt['label']}: {detail}"[:2000],
    )


def _locked(chunk_id: int) -> PushChunk:
    return PushChunk.objects.select_for_update().get(pk=chunk_id)


def _in_flight(chunk: PushChunk) -> list[Invoice]:
    return list(
        Invoice.objects.select_for_update(of=("self",))
        .filter(chunk=chunk, sync_state=S.IN_FLIGHT)
        .select_related("customer")
        .order_by("pk")
    )


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
) -> SendResult:
    """The call failed in a way worth retrying (429, 5xx, timeout): record it and wait `seconds`."""
    chunk = _locked(chunk_id)
    attempt_record(chunk_id, attempt, duration_ms, outcome, status, detail, correlation_id)
    now = timezone.now()
    chunk.last_error = detail[:2000]
    fields = ["last_error"]
    if chunk.state == C.SENDING and chunk.claimed_by == worker[:100]:
        chunk.state, chunk.claimed_by, chunk.lease_expires_at = C.PENDING, "", None
        chunk.next_attempt_at = now + timedelta(seconds=seconds)
        fields += ["state", "claimed_by", "lease_expires_at", "next_attempt_at"]
    chunk.save(update_fields=fields)
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
    return SendResult("retry", retry_in=seconds, detail=outcome)


@transaction.atomic
def abandon(chunk_id: int, worker: str, *, reason: str) -> SendResult:
    """The connection cannot be used (needs reconnect, disconnected, 401/403). Xero wrote nothing on this call.

    If no earlier call of the chunk may have written either, its invoices simply go back to pending and wait;
    otherwise the chunk is kept (same payload and key) and resumes once the connection is back.
    """
    chunk = _locked(chunk_id)
    now = timezone.now()
    maybe_written = (
        chunk.push_attempts.exclude(detail__startswith=GET_LABEL)
        .filter(outcome__in=[A.OK, A.VALIDATION, A.TIMEOUT, A.SERVER_ERROR])
        .exists()
    )
    chunk.last_error = reason[:2000]
    chunk.claimed_by, chunk.lease_expires_at = "", None
    if maybe_written:
        chunk.state = C.PENDING
        chunk.next_attempt_at = now + timedelta(seconds=settings.PUSH_SWEEP_SECONDS)
        chunk.save(update_fields=["state", "last_error", "claimed_by", "lease_expires_at", "next_attempt_at"])
        outcome = "waiting"
    else:
        invoices = _in_flight(chunk)
        in_flight = Invoice.objects.filter(pk__in=[i.pk for i in invoices])
        sync_state_update(in_flight, [S.IN_FLIGHT], S.PENDING, updated_at=now)
        chunk.state, chunk.completed_at = C.FAILED, now
        chunk.save(update_fields=["state", "last_error", "claimed_by", "lease_expires_at", "completed_at"])
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
    return SendResult(outcome, detail=reason)


@transaction.atomic
def refused(chunk_id: int, worker: str, mode: str, attempt: dict, duration_ms: int, exc: XeroError) -> SendResult:
    """Xero refused the whole request (a 4xx that is not per element). A PUT fails its invoices; a lookup retries."""
    if mode == LOOKUP:
        return retry_later(
            chunk_id,
            worker,
            backoff_seconds(3),
            attempt,
            duration_ms,
            A.ERROR,
            exc.status,
            str(exc),
            exc.correlation_id,
        )
    chunk = _locked(chunk_id)
    outcome = A.VALIDATION if isinstance(exc, XeroValidationError) else A.ERROR
    attempt_record(chunk_id, attempt, duration_ms, outcome, exc.status, str(exc), exc.correlation_id)
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
def record_put(
    chunk_id: int,
    worker: str,
    body: dict,
    attempt: dict,
    duration_ms: int,
    outcome: str,
    status: int | None,
    correlation_id: str,
) -> SendResult:
    """Every element's outcome: InvoiceID, number, status, validation errors (failed), warnings (warning)."""
    chunk = _locked(chunk_id)
    outcomes = mappers.invoice_outcomes(body)
    detail = f"{len(outcomes)} elements; answer: {json.dumps(body, sort_keys=True)[:ANSWER_CHARS]}"
    attempt_record(chunk_id, attempt, duration_ms, outcome, status, detail, correlation_id)
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
    return _finish(
        chunk,
        worker,
        synced,
        failed,
        unresolved,
        [],
        now,
        note=f"{len(synced)} in Xero, {len(failed)} failed, {len(unresolved)} to look up",
    )


@transaction.atomic
def record_lookup(
    chunk_id: int, worker: str, body: dict, attempt: dict, duration_ms: int, status: int, correlation_id: str
) -> SendResult:
    """Resolve what is left of the chunk from Xero itself: found -> synced, not found -> pending again."""
    chunk = _locked(chunk_id)
    elements = body.get("Invoices") or []
    attempt_record(chunk_id, attempt, duration_ms, A.OK, status, f"{len(elements)} found", correlation_id)
    lookups = chunk.push_attempts.filter(detail__startswith=GET_LABEL).count()
    answered = _put_answer(chunk)
    requeues = _requeues(chunk)
    found: dict[str, tuple[mappers.InvoiceOutcome, dict]] = {}
    for element in elements:
        result = mappers.invoice_outcome(element)
        if result.invoice_id and result.number:
            found[result.number.strip().upper()] = (result, element)
    now = timezone.now()
    synced, failed, requeued, unresolved, attention = [], [], [], [], []
    for invoice in _in_flight(chunk):
        match = found.get(invoice.number.strip().upper())
        contact_id = ((match[1].get("Contact") or {}).get("ContactID") or "") if match else ""
        ours = match is not None and (
            not contact_id
            or not invoice.customer.xero_contact_id
            or contact_id.lower() == invoice.customer.xero_contact_id.lower()
        )
        if ours:
            _synced(invoice, match[0], now)
            synced.append(invoice)
        elif invoice.sync_errors:
            _failed(invoice, invoice.sync_errors, now)  # the number belongs to someone else's invoice
            failed.append(invoice)
        elif answered is not None and lookups < settings.OUTBOUND_MAX_LOOKUPS:
            # Xero answered our PUT without this invoice: not found yet is no proof it was not created. Look again.
            unresolved.append(invoice)
        elif answered is not None:
            _needs_attention(invoice, now, lookups=lookups, answer=answered)
            attention.append(invoice)
        elif requeues.get(invoice.pk, 0) >= settings.PUSH_MAX_REQUEUES:
            _needs_attention(invoice, now, lookups=lookups, answer="", requeues=requeues[invoice.pk])
            attention.append(invoice)
        else:
            # Our call's outcome was unknown and the key's window has passed: not found by number proves absence.
            sync_state_move(invoice, S.PENDING)
            invoice.updated_at = now
            requeued.append(invoice)
    return _finish(
        chunk,
        worker,
        synced,
        failed,
        unresolved,
        requeued,
        now,
        attention=attention,
        lookups=lookups,
        note=f"resolved by lookup: {len(synced)} found in Xero, {len(failed)} failed, "
        f"{len(requeued)} sent again in a new chunk, {len(unresolved)} to look up again, "
        f"{len(attention)} need attention",
    )


ANSWER_CHARS = 500


def _put_answer(chunk: PushChunk) -> str | None:
    """Xero's answer to this chunk's PUT when it answered one (200) at all; None when no PUT was answered."""
    detail = (
        chunk.push_attempts.filter(outcome=A.OK, detail__startswith="PUT /Invoices")
        .order_by("-started_at")
        .values_list("detail", flat=True)
        .first()
    )
    if detail is None:
        return None
    return detail.split("answer: ", 1)[1] if "answer: " in detail else ""


def _requeues(chunk: PushChunk) -> dict[int, int]:
    from django.db.models import Count

    rows = (
        InvoiceEvent.objects.filter(invoice__chunk=chunk, invoice__sync_state=S.IN_FLIGHT, kind="requeued")
        .values("invoice_id")
        .annotate(n=Count("pk"))
    )
    return {row["invoice_id"]: row["n"] for row in rows}


def _needs_attention(invoice: Invoice, now, *, lookups: int, answer: str, requeues: int = 0) -> None:
    if requeues:
        why = (
            f"Xero's answer could not be confirmed: {requeues} sends went unanswered and were not found in Xero "
            "afterwards. It is not sent again by itself."
        )
    else:
        why = (
            "Xero's answer could not be confirmed: Xero answered the request without this invoice, and "
            f"{lookups} lookups by its number did not find it. Nothing was sent again, so it cannot be in Xero "
            "twice. Check Xero, then retry it or cancel it."
        )
    sync_state_move(invoice, S.NEEDS_ATTENTION)
    invoice.updated_at = now
    invoice.sync_errors = [why] + ([f"Xero's answer: {answer}"] if answer else [])


def _finish(
    chunk: PushChunk,
    worker: str,
    synced: list[Invoice],
    failed: list[Invoice],
    unresolved: list[Invoice],
    requeued: list[Invoice],
    now,
    *,
    note: str,
    attention: list[Invoice] = (),
    lookups: int = 0,
) -> SendResult:
    attention = list(attention)
    _created_in(chunk, synced)
    _save_outcomes(synced + failed + unresolved + requeued + attention)
    _events(
        synced,
        "synced",
        lambda i: (
            f"In Xero as {i.number} ({i.xero_status or 'created'})"
            + (f", with warnings: {'; '.join(i.sync_warnings)}" if i.sync_warnings else "")
        ),
    )
    _events(failed, "failed", lambda i: "Xero rejected it: " + "; ".join(i.sync_errors))
    _events(requeued, "requeued", lambda i: "Not found in Xero after an interrupted call: it goes again")
    _events(attention, "needs_attention", lambda i: i.sync_errors[0])
    chunk.last_error = note[:2000]
    chunk.claimed_by, chunk.lease_expires_at = "", None
    if unresolved:
        # Look them up, spaced by the one backoff policy (each lookup is a call against the tenant's limits).
        wait = backoff_seconds(lookups) if lookups else 0.0
        chunk.state, chunk.next_attempt_at = C.PENDING, now + timedelta(seconds=wait)
        result = SendResult("retry", retry_in=wait, detail=note)
    else:
        chunk.state, chunk.completed_at = C.DONE, now
        result = SendResult("done", detail=note)
    chunk.save(
        update_fields=["state", "next_attempt_at", "completed_at", "last_error", "claimed_by", "lease_expires_at"]
    )
    if synced:
        organisation_id = chunk.organisation_id
        transaction.on_commit(lambda: _sync_recorded(organisation_id, now))
    logger.info(
        "push.chunk.recorded",
        extra={
            "event": "push.chunk.recorded",
            "chunk_id": chunk.pk,
            "organisation_id": chunk.organisation_id,
            "tenant_id": chunk.tenant_id,
            "synced": len(synced),
            "failed": len(failed),
            "unresolved": len(unresolved),
            "requeued": len(requeued),
            "worker": worker,
        },
    )
    return result


OUTCOME_FIELDS = [
    "sync_state",
    "xero_invoice_id",
    "xero_status",
    "xero_updated_at",
    "subtotal",
    "total_tax",
    "total",
    "amount_due",
    "amount_paid",
    "amount_credited",
    "sync_errors",
    "sync_warnings",
    "synced_at",
    "updated_at",
    "xero_tenant_id",
    "xero_short_code",
]
_CASTS = {
    "xero_updated_at": "timestamptz",
    "synced_at": "timestamptz",
    "updated_at": "timestamptz",
    "subtotal": "numeric",
    "total_tax": "numeric",
    "total": "numeric",
    "amount_due": "numeric",
    "amount_paid": "numeric",
    "amount_credited": "numeric",
    "sync_errors": "jsonb",
    "sync_warnings": "jsonb",
}


def _save_outcomes(invoices: list[Invoice]) -> None:
    """Write the outcome fields of up to 50 invoices in one statement.

    bulk_update() builds a CASE per field and row (14 x 50 here) and cost ~0.3 s of CPU per chunk, more than the
    call to Xero itself; on PostgreSQL one UPDATE ... FROM (VALUES ...) does the same in a few milliseconds.
    """
    if not invoices:
        return
    if connection.vendor != "postgresql":
        Invoice.objects.bulk_update(invoices, OUTCOME_FIELDS)
        return
    from psycopg2.extras import execute_values

    fields = [Invoice._meta.get_field(name) for name in OUTCOME_FIELDS]
    columns = [field.column for field in fields]
    template = "(%s, " + ", ".join(f"%s::{_CASTS.get(name, 'text')}" for name in OUTCOME_FIELDS) + ")"
    assignments = ", ".join(f'"{column}" = v."{column}"' for column in columns)
    rows = []
    for invoice in invoices:
        row = [invoice.pk]
        for name in OUTCOME_FIELDS:
            value = getattr(invoice, name)
            row.append(json.dumps(value) if name in ("sync_errors", "sync_warnings") else value)
        rows.append(tuple(row))
    table = Invoice._meta.db_table
    value_names = ", ".join(["id", *(f'"{column}"' for column in columns)])
    with connection.cursor() as cursor:
        # Only model metadata goes into the statement; every value is a parameter.
        sql = f'UPDATE "{table}" AS i SET {assignments} FROM (VALUES %s) AS v({value_names}) WHERE i.id = v.id'  # noqa: S608
        execute_values(cursor.cursor, sql, rows, template=template, page_size=100)


def _synced(invoice: Invoice, result: mappers.InvoiceOutcome, now) -> None:
    sync_state_move(invoice, S.WARNING if result.warnings else S.SYNCED)
    invoice.xero_invoice_id = result.invoice_id
    invoice.xero_status = result.status[:12]
    invoice.xero_updated_at = result.updated_at
    for field, value in (
        ("subtotal", result.subtotal),
        ("total_tax", result.total_tax),
        ("total", result.total),
        ("amount_due", result.amount_due),
        ("amount_paid", result.amount_paid),
        ("amount_credited", result.amount_credited),
    ):
        if value is not None:
            setattr(invoice, field, value)
    invoice.sync_errors, invoice.sync_warnings = [], list(result.warnings)
    invoice.synced_at = invoice.updated_at = now


def _created_in(chunk: PushChunk, synced: list[Invoice]) -> None:
    """The Xero organisation these invoices are in: the chunk's tenant, with its short code for links (unknown if
    the connection has moved to another organisation since the chunk was made)."""
    if not synced:
        return
    short_code = (
        XeroConnection.objects.filter(organisation_id=chunk.organisation_id, tenant_id=chunk.tenant_id)
        .values_list("tenant_short_code", flat=True)
        .first()
    ) or ""
    for invoice in synced:
        invoice.xero_tenant_id, invoice.xero_short_code = chunk.tenant_id, short_code


def _failed(invoice: Invoice, errors: list[str], now) -> None:
    sync_state_move(invoice, S.FAILED)
    invoice.sync_errors, invoice.sync_warnings = list(errors), []
    invoice.updated_at = now


def _events(invoices: list[Invoice], kind: str, message) -> None:
    InvoiceEvent.objects.bulk_create(
        [
            InvoiceEvent(
                invoice=invoice,
                organisation_id=invoice.organisation_id,
                source=InvoiceEvent.Source.SYSTEM,
                kind=kind,
                message=message(invoice)[:500],
            )
            for invoice in invoices
        ]
    )


_last_sync_recorded: dict[int, float] = {}


def _sync_recorded(organisation_id: int, now) -> None:
    # One stamp every few seconds per tenant is plenty for "last successful sync"; not one UPDATE per chunk.
    clock = time.monotonic()
    if clock - _last_sync_recorded.get(organisation_id, -60.0) < 5:
        return
    _last_sync_recorded[organisation_id] = clock
    from integrations.services.connection import xero_connection_sync_recorded
    from organisations.models import Organisation

    xero_connection_sync_recorded(organisation=Organisation(pk=organisation_id), at=now)
