"""Credit notes to Xero and back: each pending credit note becomes one `credit_note_create` operation once its
customer is a Xero contact; each requested allocation becomes one `credit_note_allocate` operation once the credit
note is confirmed and the invoice is in Xero; what Xero holds comes back through invoices/services/apply/credit_notes.py
(our own writes' answers, and the reconciliation poll of GET /CreditNotes: Xero's webhooks carry only invoices and
contacts; its `credit_notes_apply_from_xero` and `credit_notes_to_reconcile` are re-exported here). The push
dispatcher (invoices/services/push/dispatch.py) runs `credit_notes_dispatch` on every pass, so the credit notes of a
batch go with its invoices and an allocation goes as soon as its invoice lands.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from integrations.models import XeroConnection
from integrations.outbound import engine
from invoices import mappers
from invoices.models import (
    CreditNote,
    CreditNoteAllocation,
    CreditNoteEvent,
    CreditNoteLine,
    Invoice,
    InvoiceBatch,
    InvoiceEvent,
    XeroMapping,
)
from invoices.services.apply.credit_notes import (
    APPLIED_FIELDS,
    credit_note_copy_from_xero,
    credit_notes_apply_from_xero,
    credit_notes_to_reconcile,
)
from invoices.sync_states import sync_state_move

logger = logging.getLogger("invoices.credit_notes")

CREDIT_NOTE_CREATE = "credit_note_create"
CREDIT_NOTE_ALLOCATE = "credit_note_allocate"
S = Invoice.SyncState
AS = CreditNoteAllocation.State
IN_XERO = (S.SYNCED, S.WARNING)
DISPATCH_LIMIT = 200
TWO = Decimal("0.01")


def credit_note_sync_state_set(
    note: CreditNote, to: str, *, errors: Sequence[str] | None = None, also: Sequence[str] = ()
) -> None:
    """The one place a credit note's sync state is changed (the caller holds the row's lock): saves the state, the
    errors when given (a new state's errors replace the old), and `also` (other fields the caller set)."""
    sync_state_move(note, to)
    fields = ["sync_state", "updated_at", *also]
    if errors is not None:
        note.sync_errors = list(errors)
        fields.append("sync_errors")
    note.save(update_fields=list(dict.fromkeys(fields)))


def pending_credit_notes(organisation_id: int):
    return CreditNote.objects.filter(
        organisation_id=organisation_id, sync_state=S.PENDING, batch__eligibility=InvoiceBatch.Eligibility.ELIGIBLE
    ).order_by("pk")


# ---------------------------------------------------------------- to Xero


def credit_notes_dispatch(*, organisation_id: int, connection: XeroConnection, mapping: XeroMapping) -> float | None:
    """Send the organisation's pending credit notes (contacts made first) and its allocations that are ready.

    Returns a wait when a contact create is waiting on Xero. Raises the front door's errors like the dispatcher.
    """
    from invoices.services.push.contacts import contacts_ensure

    wait = None
    missing = sorted(
        set(
            pending_credit_notes(organisation_id)
            .filter(customer__xero_contact_id="")
            .values_list("customer_id", flat=True)[:DISPATCH_LIMIT]
        )
    )
    if missing:
        wait = contacts_ensure(organisation_id=organisation_id, connection=connection, customer_ids=missing).retry_in
    ids = list(
        pending_credit_notes(organisation_id)
        .exclude(customer__xero_contact_id="")
        .values_list("pk", flat=True)[:DISPATCH_LIMIT]
    )
    for credit_note_id in ids:
        _credit_note_operation(credit_note_id=credit_note_id, tenant_id=connection.tenant_id, mapping=mapping)
    credit_note_allocations_dispatch(organisation_id=organisation_id, tenant_id=connection.tenant_id)
    return wait


@transaction.atomic
def _credit_note_operation(*, credit_note_id: int, tenant_id: str, mapping: XeroMapping) -> None:
    """Store the credit note's payload and key as an operation (once: re-checked as pending under its lock)."""
    note = (
        CreditNote.objects.select_for_update(of=("self",))
        .select_related("customer")
        .filter(pk=credit_note_id, sync_state=S.PENDING)
        .first()
    )
    if note is None:
        return
    lines = list(CreditNoteLine.objects.filter(credit_note=note).order_by("position", "pk"))
    try:
        payload = mappers.credit_note_to_xero_payload(
            note, lines, mapping=mapping, contact_id=note.customer.xero_contact_id
        )
    except (mappers.MappingRequired, ValueError) as exc:
        credit_note_sync_state_set(note, S.FAILED, errors=[str(exc)])
        return
    operation = engine.operation_create(
        organisation_id=note.organisation_id,
        tenant_id=tenant_id,
        kind=CREDIT_NOTE_CREATE,
        payload=payload,
        subject_id=note.pk,
    )
    credit_note_sync_state_set(note, S.IN_FLIGHT, errors=[])
    engine.operation_enqueue(operation_id=operation.pk)
    _log("invoices.credit_note.queued", note.organisation_id, credit_note_id=note.pk, operation_id=operation.pk)


def credit_note_allocations_dispatch(*, organisation_id: int, tenant_id: str) -> int:
    """Allocations waiting for their credit note and invoice: sent when both are in Xero, refused (with why) when
    one of them can no longer take it. Returns how many operations were made."""
    made = 0
    waiting = list(
        CreditNoteAllocation.objects.filter(organisation_id=organisation_id, state=AS.WAITING).values_list(
            "pk", flat=True
        )[:DISPATCH_LIMIT]
    )
    for allocation_id in waiting:
        made += _allocation_operation(allocation_id=allocation_id, tenant_id=tenant_id)
    return made


def allocation_refusal(*, credit_note: CreditNote, invoice: Invoice) -> str | None:
    """Why this allocation can never be made now ("" while it must wait; None when it can go)."""
    if credit_note.sync_state in (S.FAILED, S.NEEDS_ATTENTION):
        return "The credit note did not reach Xero."
    if invoice.sync_state in (S.FAILED, S.NEEDS_ATTENTION):
        return f"Invoice {invoice.number} did not reach Xero."
    if credit_note.sync_state not in IN_XERO or invoice.sync_state not in IN_XERO:
        return ""
    note_status = credit_note.xero_status or credit_note.status
    invoice_status = invoice.xero_status or invoice.status
    if note_status != "AUTHORISED":
        return f"Only an approved credit note can be allocated; this one is {note_status} in Xero."
    if invoice_status != "AUTHORISED":
        return f"Invoice {invoice.number} is {invoice_status} in Xero: only an approved, unpaid invoice takes credit."
    if credit_note.customer_id != invoice.customer_id:
        return "The credit note and the invoice are for different customers."
    if credit_note.currency != invoice.currency:
        return "The credit note and the invoice are in different currencies."
    if min(credit_note.remaining_credit, invoice.amount_due) <= 0:
        return "Nothing left to allocate: no remaining credit, or nothing due on the invoice."
    return None


@transaction.atomic
def _allocation_operation(*, allocation_id: int, tenant_id: str) -> int:
    allocation = (
        CreditNoteAllocation.objects.select_for_update(of=("self",))
        .select_related("credit_note", "invoice")
        .filter(pk=allocation_id, state=AS.WAITING)
        .first()
    )
    if allocation is None:
        return 0
    note, invoice = allocation.credit_note, allocation.invoice
    refusal = allocation_refusal(credit_note=note, invoice=invoice)
    if refusal == "":
        return 0
    if refusal:
        allocation.state, allocation.last_error, allocation.completed_at = AS.REFUSED, refusal, timezone.now()
        allocation.save(update_fields=["state", "last_error", "completed_at"])
        _invoice_event(allocation, "credit_refused", f"Credit note {note.number} not allocated: {refusal}")
        return 0
    amount = min(note.remaining_credit, invoice.amount_due).quantize(TWO)
    today = timezone.localdate()
    allocation.amount, allocation.date, allocation.state = amount, max(today, note.issue_date), AS.SENDING
    allocation.invoice_based_on, allocation.credit_note_based_on = invoice.xero_updated_at, note.xero_updated_at
    allocation.save(update_fields=["amount", "date", "state", "invoice_based_on", "credit_note_based_on"])
    operation = engine.operation_create(
        organisation_id=allocation.organisation_id,
        tenant_id=tenant_id,
        kind=CREDIT_NOTE_ALLOCATE,
        payload={
            "CreditNoteID": note.xero_credit_note_id,
            "InvoiceID": invoice.xero_invoice_id,
            "Amount": str(amount),
            "Date": allocation.date.isoformat(),
        },
        subject_id=allocation.pk,
        requested_by=allocation.requested_by,
    )
    engine.operation_enqueue(operation_id=operation.pk)
    return 1


# ---------------------------------------------------------------- outcomes (the kinds' finish)


def credit_note_finish(*, credit_note_id: int, state: str, message: str, result: Mapping[str, Any]) -> None:
    """The `credit_note_create` operation ended: in Xero (Xero's copy applied), refused, or needs attention."""
    with transaction.atomic():
        note = CreditNote.objects.select_for_update().filter(pk=credit_note_id).first()
        if note is None:
            return
        if state == "done":
            credit_note_copy_from_xero(note, result, force=True)
            note.synced_at = timezone.now()
            credit_note_sync_state_set(note, S.SYNCED, errors=[], also=["synced_at", *APPLIED_FIELDS])
            _note_event(note, "synced", f"In Xero as {note.number} ({note.xero_status or 'created'})")
        elif state in ("refused", "needs_attention"):
            errors = [str(m.get("Message")) for m in (result or {}).get("ValidationErrors") or [] if m.get("Message")]
            to = S.FAILED if state == "refused" else S.NEEDS_ATTENTION
            credit_note_sync_state_set(note, to, errors=errors or [message])
            said = "; ".join(note.sync_errors)
            _note_event(note, state, f"Xero rejected it: {said}" if state == "refused" else f"Needs attention: {said}")
        else:  # waiting for the connection: it goes when the operation does
            return
        organisation_id = note.organisation_id
    _log(f"invoices.credit_note.{state}", organisation_id, credit_note_id=credit_note_id)
    if state == "done":
        connection = XeroConnection.objects.filter(organisation_id=organisation_id).exclude(tenant_id="").first()
        if connection is not None:
            credit_note_allocations_dispatch(organisation_id=organisation_id, tenant_id=connection.tenant_id)
    else:
        # An allocation waiting on a credit note that will not reach Xero is refused with that reason.
        connection = XeroConnection.objects.filter(organisation_id=organisation_id).first()
        credit_note_allocations_dispatch(
            organisation_id=organisation_id, tenant_id=connection.tenant_id if connection else ""
        )


def credit_note_allocation_finish(*, allocation_id: int, state: str, message: str, result: Mapping[str, Any]) -> None:
    """The `credit_note_allocate` operation ended. Done: Xero moved the amount, so both documents show it now
    (AmountCredited and AmountDue on the invoice, RemainingCredit on the credit note, each PAID when nothing is
    left, as Xero does), unless a copy from Xero newer than the one the allocation was sent against came back
    meanwhile (a webhook is often quicker than our answer): that copy already shows it, and adding it again would
    count the credit twice. The next copy from Xero replaces these either way."""
    with transaction.atomic():
        allocation = (
            CreditNoteAllocation.objects.select_for_update(of=("self",))
            .select_related("credit_note", "invoice")
            .filter(pk=allocation_id)
            .first()
        )
        if allocation is None or allocation.state in (AS.DONE, AS.REFUSED):
            return
        note = allocation.credit_note
        if state == "done":
            amount = allocation.amount or Decimal("0")
            allocation.state, allocation.last_error = AS.DONE, ""
            note = CreditNote.objects.select_for_update().get(pk=note.pk)
            if note.xero_updated_at == allocation.credit_note_based_on:
                note.remaining_credit = max(Decimal("0"), note.remaining_credit - amount)
                if note.remaining_credit == 0:
                    note.xero_status = "PAID"
                note.save(update_fields=["remaining_credit", "xero_status", "updated_at"])
            invoice = Invoice.objects.select_for_update().get(pk=allocation.invoice_id)
            if invoice.xero_updated_at == allocation.invoice_based_on:
                invoice.amount_credited += amount
                invoice.amount_due = max(Decimal("0"), invoice.amount_due - amount)
                if invoice.amount_due == 0:
                    invoice.xero_status = "PAID"
                invoice.save(update_fields=["amount_credited", "amount_due", "xero_status", "updated_at"])
            _invoice_event(
                allocation, "credit_allocated", f"Credit note {note.number}: {amount:,.2f} credited in Xero."
            )
        elif state in ("refused", "needs_attention"):
            allocation.state = AS.REFUSED if state == "refused" else AS.NEEDS_ATTENTION
            errors = [str(m.get("Message")) for m in (result or {}).get("ValidationErrors") or [] if m.get("Message")]
            allocation.last_error = ("; ".join(errors) or message)[:2000]
            verb = "not allocated" if state == "refused" else "allocation needs attention"
            _invoice_event(allocation, "credit_refused", f"Credit note {note.number} {verb}: {allocation.last_error}")
        else:
            return
        allocation.completed_at = timezone.now()
        allocation.save(update_fields=["state", "last_error", "completed_at"])


def _note_event(note: CreditNote, kind: str, message: str) -> None:
    CreditNoteEvent.objects.create(
        credit_note=note,
        organisation_id=note.organisation_id,
        source=CreditNoteEvent.Source.SYSTEM,
        kind=kind,
        message=message[:500],
    )


def _invoice_event(allocation: CreditNoteAllocation, kind: str, message: str) -> None:
    InvoiceEvent.objects.create(
        invoice_id=allocation.invoice_id,
        organisation_id=allocation.organisation_id,
        source=InvoiceEvent.Source.SYSTEM,
        kind=kind,
        message=message[:500],
        changes={"credit_note_id": allocation.credit_note_id, "allocation_id": allocation.pk},
        actor=allocation.requested_by,
    )


def _log(event: str, organisation_id: int, **extra) -> None:
    logger.info(event, extra={"event": event, "organisation_id": organisation_id, **extra})


__all__ = [
    "credit_note_sync_state_set",
    "CREDIT_NOTE_ALLOCATE",
    "CREDIT_NOTE_CREATE",
    "allocation_refusal",
    "credit_note_allocation_finish",
    "credit_note_allocations_dispatch",
    "credit_note_finish",
    "credit_notes_apply_from_xero",
    "credit_notes_dispatch",
    "credit_notes_to_reconcile",
]
