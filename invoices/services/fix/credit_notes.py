"""Fix, cancel and resend a credit note Xero refused, or whose fate needs attention: the document fix machinery of
invoices/services/fix.py with the credit note's kind. Resend goes through the outbound engine like the first send:

- refused (failed): Xero said no, so nothing of it is in Xero: pending again, and the dispatcher makes a new
  `credit_note_create` operation (a new Idempotency-Key) from its lines as they are then;
- needs attention: Xero may hold it. Its operation is retried (outbound_operation_retry, as support's console
  does, with an audit row): the same key, and a lookup by its number decides before any send whose outcome was in
  doubt, so it is never sent under a new key unless a lookup proved it absent. While it is in doubt it cannot be
  edited (what would be sent is what may already be in Xero), only resent or cancelled.

Either way it reads "Sending" (or "Waiting") at once, and its history says who sent it again.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from integrations.outbound import engine
from integrations.outbound.models import OutboundOperation
from integrations.outbound.selectors import operation_latest
from integrations.outbound.services import outbound_operation_retry
from integrations.outbound.states import FINAL
from invoices.models import CreditNote, CreditNoteAllocation, Invoice
from invoices.services.credit_notes import CREDIT_NOTE_ALLOCATE, CREDIT_NOTE_CREATE, credit_note_sync_state_set
from invoices.services.fix.documents import DocumentKind, FixRefused, document_event
from organisations.models import Organisation

S = Invoice.SyncState
OP = OutboundOperation.State
AS = CreditNoteAllocation.State

IN_DOUBT_REFUSAL = (
    "We could not confirm whether Xero has it, so it cannot be changed here until that is known. Resend looks it up "
    "in Xero first and sends it only if Xero does not have it; if Xero then refuses it, fix it here. Or cancel it."
)


def _latest_operation(note: CreditNote) -> OutboundOperation | None:
    return operation_latest(organisation_id=note.organisation_id, kind=CREDIT_NOTE_CREATE, subject_id=note.pk)


def _sent_again(note: CreditNote, user: Any, message: str) -> None:
    document_event(CREDIT_NOTE, note, event="retried", message=message, actor=user)
    # Allocations refused only because the credit note did not reach Xero (never sent: no amount) wait again.
    CreditNoteAllocation.objects.filter(credit_note=note, state=AS.REFUSED, amount__isnull=True).update(
        state=AS.WAITING, last_error="", completed_at=None
    )


def _resend(*, organisation: Organisation, document: CreditNote, user: AbstractBaseUser) -> None:
    latest = _latest_operation(document)
    if latest is not None and latest.state == OP.NEEDS_ATTENTION:
        # As support's console does (and audited the same way): the engine's retry, then the kind's `retried`.
        outbound_operation_retry(organisation=organisation, operation_id=latest.pk, actor=user, as_support=False)
        return
    if latest is not None and latest.state != OP.REFUSED:
        # An earlier write of it is on its way, or done: a new key now could put it in Xero twice.
        raise FixRefused("An earlier send of it to Xero is still being settled: wait for Xero's answer.")
    credit_note_sync_state_set(document, S.PENDING, errors=[])
    _sent_again(document, user, f"Resend requested by {user}")
    from invoices.services.push import push_enqueue_for_organisation  # the push imports this app's services

    push_enqueue_for_organisation(organisation_id=organisation.pk)


def credit_note_retried(operation: OutboundOperation, by: Any) -> None:
    """Its `credit_note_create` operation was retried (by the person's Resend or by support): "Sending" again."""
    note = (
        CreditNote.objects.select_for_update()
        .filter(pk=operation.subject_id, organisation_id=operation.organisation_id)
        .first()
    )
    if note is None or note.sync_state != S.NEEDS_ATTENTION:
        return
    credit_note_sync_state_set(note, S.IN_FLIGHT, errors=[])
    who = by if by is not None else "Coordinoter"
    _sent_again(note, by, f"Sent to Xero again by {who}: looked up in Xero first, under the same Idempotency-Key")


def _withdraw(*, document: CreditNote, user: AbstractBaseUser) -> str | None:
    """Before a cancel: the credit note's writes still open (its create, its allocations') end refused, so no retry
    or sweep sends what the customer cancelled. One that may be in Xero otherwise refuses the cancel."""
    writes = OutboundOperation.objects.filter(organisation_id=document.organisation_id).exclude(state__in=FINAL)
    subjects = writes.filter(kind=CREDIT_NOTE_CREATE, subject_id=document.pk) | writes.filter(
        kind=CREDIT_NOTE_ALLOCATE, subject_id__in=document.allocations.values("pk")
    )
    reason = f"Withdrawn: {user} cancelled credit note {document.number}."
    for operation_id in subjects.values_list("pk", flat=True):
        if not engine.operation_withdraw(
            organisation_id=document.organisation_id, operation_id=operation_id, reason=reason
        ):
            return "It is being sent to Xero right now. Wait for Xero's answer, then cancel it if it is not in Xero."
    return None


CREDIT_NOTE = DocumentKind(
    CreditNote,
    "It is in Xero: change or void it there.",
    _resend,
    not_editable={S.NEEDS_ATTENTION: IN_DOUBT_REFUSAL},
    withdraw=_withdraw,
)

__all__ = ["CREDIT_NOTE", "credit_note_retried"]
