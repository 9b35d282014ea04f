"""Recording Xero's answers to a chunk's calls: every element's outcome from the PUT, what a lookup found, and the
chunk's next state. Each function runs in one transaction with the chunk row locked."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from integrations.outbound.models import OutboundAttempt, OutboundOperation
from integrations.outbound.record import RunResult
from invoices import mappers
from invoices.models import Invoice, InvoiceEvent
from invoices.services.push.attempts import attempt_record, held_by, in_flight_invoices, locked_chunk, release
from invoices.services.push.common import backoff_seconds, enqueue_dispatch
from invoices.services.push.outcomes import (
    Carried,
    events_insert,
    outcome_failed,
    outcome_synced,
    outcomes_created_in,
    outcomes_save,
    sync_recorded,
)
from invoices.sync_states import sync_state_move

logger = logging.getLogger(__name__)

S = Invoice.SyncState
C = OutboundOperation.State
ACT, OUT = OutboundAttempt.Action, OutboundAttempt.Outcome

# An ACCREC number that already exists (https://github.com/XeroAPI/Xero-Net/issues/238): ours from an earlier
# call of this chunk, or someone else's. Looked up before it is called a failure.
NUMBER_TAKEN = "must be unique"


@transaction.atomic
def record_put(
    chunk_id: int,
    worker: str,
    body: dict,
    attempt: dict,
    duration_ms: int,
    status: int | None,
    correlation_id: str,
    *,
    short_code: str | None = None,
) -> RunResult:
    """Every element's outcome: InvoiceID, number, status, validation errors (failed), warnings (warning).

    short_code: the chunk's Xero organisation's, when the caller has it (else it is read)."""
    chunk = locked_chunk(chunk_id)
    outcomes = mappers.invoice_outcomes(body)
    invoices = in_flight_invoices(chunk)
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
            outcome_synced(invoice, result, now)
            synced.append(invoice)
        elif any(NUMBER_TAKEN in message.lower() for message in result.errors):
            invoice.sync_errors = result.errors
            unresolved.append(invoice)
        else:
            outcome_failed(invoice, result.errors or ["Xero did not create this invoice."], now)
            failed.append(invoice)
    verdict = _verdict(synced, failed, unresolved)
    detail = f"{len(outcomes)} elements"
    attempt_record(chunk_id, attempt, duration_ms, verdict, status, detail, correlation_id, answer=answer_head(body))
    return _finish(
        chunk,
        worker,
        synced,
        failed,
        unresolved,
        [],
        now,
        note=f"{len(synced)} in Xero, {len(failed)} failed, {len(unresolved)} to look up",
        short_code=short_code,
    )


@transaction.atomic
def record_lookup(
    chunk_id: int, worker: str, body: dict, attempt: dict, duration_ms: int, status: int, correlation_id: str
) -> RunResult:
    """Resolve what is left of the chunk from Xero itself: found -> synced, not found -> pending again."""
    chunk = locked_chunk(chunk_id)
    elements = body.get("Invoices") or []
    lookups = chunk.lookups  # this one included: the claim counted it
    answered = _put_answer(chunk)
    requeues = _requeues(chunk)
    found: dict[str, tuple[mappers.InvoiceOutcome, dict]] = {}
    for element in elements:
        result = mappers.invoice_outcome(element)
        if result.invoice_id and result.number:
            found[result.number.strip().upper()] = (result, element)
    now = timezone.now()
    synced, failed, requeued, unresolved, attention = [], [], [], [], []
    for invoice in in_flight_invoices(chunk, customers=True):
        match = found.get(invoice.number.strip().upper())
        contact_id = ((match[1].get("Contact") or {}).get("ContactID") or "") if match else ""
        ours = match is not None and (
            not contact_id or not invoice.contact_id or contact_id.lower() == invoice.contact_id.lower()
        )
        if ours:
            outcome_synced(invoice, match[0], now)
            synced.append(invoice)
        elif invoice.sync_errors:
            outcome_failed(invoice, invoice.sync_errors, now)  # the number belongs to someone else's invoice
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
            invoice.changes["updated_at"] = now
            requeued.append(invoice)
    verdict = _verdict(synced, failed, unresolved + attention, absent=requeued)
    attempt_record(chunk_id, attempt, duration_ms, verdict, status, f"{len(elements)} found", correlation_id)
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
        answered=answered,
        note=f"resolved by lookup: {len(synced)} found in Xero, {len(failed)} failed, "
        f"{len(requeued)} sent again in a new chunk, {len(unresolved)} to look up again, "
        f"{len(attention)} need attention",
    )


ANSWER_CHARS = 500


def answer_head(body: dict) -> str:
    """The first ANSWER_CHARS of Xero's answer as sorted JSON (json.dumps(body, sort_keys=True)[:ANSWER_CHARS]),
    encoding only as much of it as that takes: the whole answer holds every element of the chunk."""
    pieces, size = [], 0
    for piece in json.JSONEncoder(sort_keys=True).iterencode(body):
        pieces.append(piece)
        size += len(piece)
        if size >= ANSWER_CHARS:
            break
    return "".join(pieces)[:ANSWER_CHARS]


def _verdict(synced: list, failed: list, unresolved: list, *, absent: list = ()) -> str:
    """The call's outcome in the engine's words: unconfirmed while any of its invoices is left to find out about."""
    if unresolved:
        return OUT.UNCONFIRMED
    if synced:
        return OUT.CONFIRMED
    if absent:
        return OUT.ABSENT
    return OUT.REFUSED if failed else OUT.CONFIRMED


def _put_answer(chunk: OutboundOperation) -> str | None:
    """Xero's answer to this chunk's PUT when it answered one (200) at all; None when no PUT was answered."""
    return (
        chunk.outbound_attempts.filter(http_status=200, action=ACT.SEND)
        .order_by("-started_at")
        .values_list("answer", flat=True)
        .first()
    )


def _as_answer(head: str | None) -> dict:
    """Xero's answer to the PUT as people are shown it (`last_answer`): as it was, when its first ANSWER_CHARS hold all
    of it; else those characters."""
    try:
        answer = json.loads(head or "")
    except ValueError:
        answer = None
    return answer if isinstance(answer, dict) else {"answer_starts": head or ""}


def _requeues(chunk: OutboundOperation) -> dict[int, int]:
    from django.db.models import Count

    rows = (
        InvoiceEvent.objects.filter(invoice__chunk=chunk, invoice__sync_state=S.IN_FLIGHT, kind="requeued")
        .values("invoice_id")
        .annotate(n=Count("pk"))
    )
    return {row["invoice_id"]: row["n"] for row in rows}


def _needs_attention(invoice: Carried, now, *, lookups: int, answer: str, requeues: int = 0) -> None:
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
    invoice.changes["updated_at"] = now
    invoice.sync_errors = [why] + ([f"Xero's answer: {answer}"] if answer else [])


def _finish(
    chunk: OutboundOperation,
    worker: str,
    synced: list[Carried],
    failed: list[Carried],
    unresolved: list[Carried],
    requeued: list[Carried],
    now,
    *,
    note: str,
    attention: list[Carried] = (),
    lookups: int = 0,
    answered: str | None = None,
    short_code: str | None = None,
) -> RunResult:
    attention = list(attention)
    outcomes_created_in(chunk, synced, short_code=short_code)
    outcomes_save(synced + failed + unresolved + requeued + attention)
    events_insert(
        [
            *(
                (
                    i,
                    "synced",
                    f"In Xero as {i.number} ({i.xero_status or 'created'})"
                    + (f", with warnings: {'; '.join(i.sync_warnings)}" if i.sync_warnings else ""),
                )
                for i in synced
            ),
            *((i, "failed", "Xero rejected it: " + "; ".join(i.sync_errors)) for i in failed),
            *((i, "requeued", "Not found in Xero after an interrupted call: it goes again") for i in requeued),
            *((i, "needs_attention", i.sync_errors[0]) for i in attention),
        ]
    )
    if not held_by(chunk, worker):
        # Our lease ran out and another worker claimed the chunk meanwhile: what Xero answered us is kept (above),
        # but the chunk is the new holder's, who records its own call and decides what follows.
        result = RunResult("busy", detail=chunk.leased_by)
    elif unresolved:
        # Look them up, spaced by the one backoff policy (each lookup is a call against the tenant's limits).
        wait = backoff_seconds(lookups) if lookups else 0.0
        chunk.last_error, chunk.next_attempt_at = note[:2000], now + timedelta(seconds=wait)
        release(chunk, C.PENDING, now, fields=("next_attempt_at",))
        result = RunResult("retry", retry_in=wait, detail=note)
    elif attention:
        # Support sees the chunk with Xero's answer, and may retry it (a lookup); the slot is free meanwhile.
        why = attention[0].sync_errors[0]
        chunk.last_error = f"{len(attention)} of its invoices need attention. {why}"[:2000]
        chunk.last_answer = _as_answer(answered)
        release(chunk, C.NEEDS_ATTENTION, now, fields=("last_answer",))
        enqueue_dispatch(chunk.organisation_id)
        result = RunResult("needs_attention", detail=note)
    else:
        chunk.last_error = note[:2000]
        release(chunk, C.DONE, now)
        result = RunResult("done", detail=note)
    if synced:
        organisation_id = chunk.organisation_id
        transaction.on_commit(lambda: sync_recorded(organisation_id, now))
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
