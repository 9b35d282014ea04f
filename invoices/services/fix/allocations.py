"""Try again or remove a credit note's allocation Xero refused, or whose fate needs attention (issue 12: nothing Xero
refuses is a dead end). Like the credit note's own resend (fix/credit_notes.py), through the outbound engine:

- refused: Xero said no, so nothing of it is in Xero. Tried again, it waits again, and dispatch makes a new
  `credit_note_allocate` operation (a new Idempotency-Key) with its amount decided afresh: the smaller of the credit
  note's remaining credit and the invoice's amount due we hold; refused here, with why, when nothing can go. Or it is
  removed: the request is dropped and the credit stays on the credit note.
- needs attention: Xero may hold it. Its operation is retried (outbound_operation_retry, audited as support's console
  does): the same key, and the engine looks the allocation up on the credit note before any send. It is never given
  a new key, nor removed here.

Both documents' histories say who did what.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.http import Http404

from integrations.outbound import engine
from integrations.outbound.models import OutboundOperation
from integrations.outbound.selectors import operation_latest
from integrations.outbound.services import outbound_operation_retry
from invoices.models import CreditNoteAllocation, CreditNoteEvent, InvoiceEvent
from invoices.selectors import allocations_with_removable
from invoices.services.credit_notes import CREDIT_NOTE_ALLOCATE, TWO, allocation_refusal
from invoices.services.fix.documents import FixRefused
from organisations.models import Organisation

AS = CreditNoteAllocation.State
OP = OutboundOperation.State
NOT_STUCK = "Only an allocation Xero refused, or one that needs attention, can be tried again or removed."


def allocation_get(organisation: Organisation, allocation_id: int, *, lock: bool = False) -> CreditNoteAllocation:
    qs = CreditNoteAllocation.objects.filter(organisation=organisation, pk=allocation_id)
    if lock:
        qs = qs.select_for_update(of=("self",))
    allocation = qs.select_related("credit_note", "invoice").first()
    if allocation is None:
        raise Http404("No such allocation.")
    return allocation


def _latest_operation(allocation: CreditNoteAllocation) -> OutboundOperation | None:
    return operation_latest(
        organisation_id=allocation.organisation_id, kind=CREDIT_NOTE_ALLOCATE, subject_id=allocation.pk
    )


def _events(allocation: CreditNoteAllocation, *, kind: str, message: str, actor: Any) -> None:
    """One history entry on each document, said as a person did it in Coordinoter."""
    common = {
        "organisation_id": allocation.organisation_id,
        "source": InvoiceEvent.Source.COORDINOTER,
        "kind": kind,
        "message": message[:500],
        "changes": {"credit_note_id": allocation.credit_note_id, "allocation_id": allocation.pk},
        "actor": actor,
    }
    CreditNoteEvent.objects.create(credit_note_id=allocation.credit_note_id, **common)
    InvoiceEvent.objects.create(invoice_id=allocation.invoice_id, **common)


def _described(allocation: CreditNoteAllocation) -> str:
    return f"Allocation of credit note {allocation.credit_note.number} to invoice {allocation.invoice.number}"


def _settled_refusal(allocation: CreditNoteAllocation) -> None:
    latest = _latest_operation(allocation)
    if latest is not None and latest.state != OP.REFUSED:
        # An earlier write of it is on its way, or done: another one now could allocate the credit twice.
        raise FixRefused("An earlier send of it to Xero is still being settled: wait for Xero's answer.")


def allocation_retry(*, organisation: Organisation, allocation_id: int, user: AbstractBaseUser) -> str:
    """Try the allocation again; returns what will happen, for the person. Raises FixRefused (with why) if it can't."""
    with transaction.atomic():
        allocation = allocation_get(organisation, allocation_id, lock=True)
        if allocation.state == AS.NEEDS_ATTENTION:
            latest = _latest_operation(allocation)
            if latest is None or latest.state != OP.NEEDS_ATTENTION:
                raise FixRefused("An earlier send of it to Xero is still being settled: wait for Xero's answer.")
            # The engine's retry, then the kind's `retried` (allocation_retried): "Sending" with its history.
            outbound_operation_retry(organisation=organisation, operation_id=latest.pk, actor=user, as_support=False)
            return (
                "Looking it up in Xero first, under the same Idempotency-Key; sent again only if Xero does not have it."
            )
        if allocation.state != AS.REFUSED:
            raise FixRefused(NOT_STUCK)
        _settled_refusal(allocation)
        note, invoice = allocation.credit_note, allocation.invoice
        refusal = allocation_refusal(credit_note=note, invoice=invoice)
        if refusal:
            raise FixRefused(refusal)
        allocation.state, allocation.last_error, allocation.completed_at, allocation.amount = AS.WAITING, "", None, None
        allocation.save(update_fields=["state", "last_error", "completed_at", "amount"])
        if refusal is None:
            amount = min(note.remaining_credit, invoice.amount_due).quantize(TWO)
            said = f"{note.currency} {amount:,.2f} (the smaller of the credit left and the amount due)"
        else:
            said = "as soon as both are in Xero"
        _events(
            allocation,
            kind="allocation_retried",
            message=f"{_described(allocation)} tried again by {user}: {said}",
            actor=user,
        )
        from invoices.services.push import push_enqueue_for_organisation  # the push imports this app's services

        push_enqueue_for_organisation(organisation_id=organisation.pk)
    return f"Allocating {said}."


def allocation_retried(operation: OutboundOperation, by: Any) -> None:
    """Its `credit_note_allocate` operation was retried (by the person's Try again or by support): "Sending" again."""
    allocation = (
        CreditNoteAllocation.objects.select_for_update(of=("self",))
        .select_related("credit_note", "invoice")
        .filter(pk=operation.subject_id, organisation_id=operation.organisation_id)
        .first()
    )
    if allocation is None or allocation.state != AS.NEEDS_ATTENTION:
        return
    allocation.state, allocation.last_error, allocation.completed_at = AS.SENDING, "", None
    allocation.save(update_fields=["state", "last_error", "completed_at"])
    who = by if by is not None else "Coordinoter"
    message = f"{_described(allocation)} sent to Xero again by {who}: looked up in Xero first, under the same key"
    _events(allocation, kind="allocation_retried", message=message, actor=by)


def allocation_moved_away(organisation: Organisation, allocation: CreditNoteAllocation) -> OutboundOperation | None:
    """The write of an allocation that needs attention, when it went to a Xero organisation other than the one
    connected now (it can never be looked up there: removing it is the way out); None otherwise."""
    if allocation.state != AS.NEEDS_ATTENTION:
        return None
    if not allocations_with_removable(organisation=organisation).filter(pk=allocation.pk, removable=True).exists():
        return None
    return _latest_operation(allocation)


def allocation_remove(
    *, organisation: Organisation, allocation_id: int, user: AbstractBaseUser
) -> CreditNoteAllocation:
    """Drop a refused allocation request: nothing of it is in Xero, and the credit stays on the credit note. One that
    needs attention only once the organisation is connected to another Xero organisation than the one it went to: it
    can never be looked up there, so its write is withdrawn (check the old organisation)."""
    with transaction.atomic():
        allocation = allocation_get(organisation, allocation_id, lock=True)
        if allocation.state == AS.NEEDS_ATTENTION:
            moved = allocation_moved_away(organisation, allocation)
            if moved is None or not engine.operation_withdraw(
                organisation_id=organisation.pk, operation_id=moved.pk, reason=f"Withdrawn: removed by {user}."
            ):
                raise FixRefused(
                    "Xero may have made it: try again (it is looked up in Xero first) rather than remove it."
                )
            why = "it was for the Xero organisation connected before, now another Xero organisation (check there)"
        elif allocation.state != AS.REFUSED:
            raise FixRefused(NOT_STUCK)
        else:
            _settled_refusal(allocation)
            why = "the credit stays on the credit note"
        message = f"{_described(allocation)} removed by {user}: {why}"
        _events(allocation, kind="allocation_removed", message=message, actor=user)
        allocation.delete()
    return allocation


__all__ = ["allocation_get", "allocation_moved_away", "allocation_remove", "allocation_retried", "allocation_retry"]
