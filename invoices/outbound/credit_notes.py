"""The outbound engine's strategies for credit notes: create one (PUT /CreditNotes) and allocate one to an invoice
(PUT /CreditNotes/{id}/Allocations). Registered from invoices/apps.py beside the other kinds of invoices/outbound/.

credit_note_create   confirmed by Xero's CreditNoteID and our CreditNoteNumber (its own number space in Xero);
                     looked up by number (GET /CreditNotes?where=CreditNoteNumber=="..."): an answer about another
                     credit note, or one of that number for another contact, is never taken as ours.
credit_note_allocate confirmed by the allocation's invoice, credit note and amount; looked up on the credit note
                     (GET /CreditNotes/{id}: its Allocations).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any

from integrations.outbound import kinds as k
from integrations.outbound.models import OutboundOperation
from integrations.xero import accounting
from integrations.xero.client import XeroClient
from integrations.xero.errors import validation_messages
from integrations.xero.types import XeroResponse
from invoices.mappers import EMPTY_XERO_ID
from invoices.services.credit_notes import (
    CREDIT_NOTE_ALLOCATE,
    CREDIT_NOTE_CREATE,
    credit_note_allocation_finish,
    credit_note_finish,
)
from invoices.services.fix.allocations import allocation_retried
from invoices.services.fix.credit_notes import credit_note_retried

TWO = Decimal("0.01")


def _same(a: Any, b: Any) -> bool:
    return str(a or "").strip().casefold() == str(b or "").strip().casefold()


def _money(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value)).quantize(TWO)
    except (InvalidOperation, ValueError, TypeError):
        return None


def _errors(element: dict[str, Any]) -> list[str]:
    return validation_messages([element]) if element else []


# ---------------------------------------------------------------- credit_note_create


def holds_credit_note(payload: dict[str, Any], element: dict[str, Any]) -> str:
    """Why Xero's element is not the credit note in `payload` ("" when it is)."""
    ours, theirs = payload.get("CreditNoteNumber"), element.get("CreditNoteNumber")
    xero_id = str(element.get("CreditNoteID") or "")
    if not xero_id or xero_id == EMPTY_XERO_ID:
        return f"Xero's answer carries no CreditNoteID for credit note {ours}"
    if not _same(ours, theirs):
        return f"Xero answered about credit note {theirs or 'without a number'}, not {ours}"
    if element.get("Type") and element.get("Type") != payload.get("Type"):
        return f"Xero's credit note {theirs} is of type {element.get('Type')}, not {payload.get('Type')}"
    contact = (element.get("Contact") or {}).get("ContactID")
    if contact and not _same(contact, (payload.get("Contact") or {}).get("ContactID")):
        return f"Xero's credit note {theirs} is for another contact"
    if element.get("Status") == "DELETED" and payload.get("Status") != "DELETED":
        return f"Xero's credit note {theirs} is deleted"
    return ""


def _cn_send(client: XeroClient, operation: OutboundOperation) -> XeroResponse:
    return accounting.credit_notes_put(
        client, credit_notes=[operation.payload], idempotency_key=operation.idempotency_key
    )


def _cn_confirm(operation: OutboundOperation, response: XeroResponse) -> k.Confirmation:
    element = accounting.first(response, "CreditNotes")
    errors = _errors(element)
    if element.get("HasErrors") or errors:
        return k.Declined("; ".join(errors) or "validation failed", result=element)
    reason = holds_credit_note(operation.payload, element)
    return k.Unconfirmed(reason, answer=element) if reason else k.Confirmed(element)


def _cn_look_up(client: XeroClient, operation: OutboundOperation) -> k.Lookup:
    number = str(operation.payload.get("CreditNoteNumber") or "")
    where = accounting.credit_note_number_where(number)
    found = [
        e
        for e in accounting.items(accounting.credit_notes_get(client, where=where), "CreditNotes")
        if _same(e.get("CreditNoteNumber"), number) and e.get("Status") != "DELETED"
    ]
    if not found:
        return k.Absent()
    reasons = [holds_credit_note(operation.payload, e) for e in found]
    for element, reason in zip(found, reasons, strict=True):
        if not reason:
            return k.Confirmed(element)
    return k.Unconfirmed(reasons[0], answer=found[0])


def _cn_finish(operation: OutboundOperation, outcome: k.Outcome) -> None:
    if operation.subject_id is None:
        return
    credit_note_finish(
        credit_note_id=operation.subject_id, state=outcome.state, message=outcome.message, result=outcome.result
    )


# ---------------------------------------------------------------- credit_note_allocate


def holds_allocation(payload: dict[str, Any], element: dict[str, Any]) -> str:
    """Why Xero's allocation element is not the allocation in `payload` ("" when it is)."""
    invoice = (element.get("Invoice") or {}).get("InvoiceID")
    if not _same(invoice, payload.get("InvoiceID")):
        return f"Xero answered about an allocation to invoice {invoice or 'none'}, not {payload.get('InvoiceID')}"
    credit_note = (element.get("CreditNote") or {}).get("CreditNoteID")
    if credit_note and not _same(credit_note, payload.get("CreditNoteID")):
        return f"Xero answered about credit note {credit_note}, not {payload.get('CreditNoteID')}"
    if _money(element.get("Amount")) != _money(payload.get("Amount")):
        return f"Xero's allocation is of {element.get('Amount')}, not {payload.get('Amount')}"
    return ""


def _alloc_send(client: XeroClient, operation: OutboundOperation) -> XeroResponse:
    payload = operation.payload
    return accounting.credit_note_allocation_put(
        client,
        credit_note_id=payload["CreditNoteID"],
        invoice_id=payload["InvoiceID"],
        amount=Decimal(payload["Amount"]),
        date=dt.date.fromisoformat(payload["Date"]),
        idempotency_key=operation.idempotency_key,
    )


def _alloc_confirm(operation: OutboundOperation, response: XeroResponse) -> k.Confirmation:
    element = accounting.first(response, "Allocations")
    errors = _errors(element)
    if element.get("HasErrors") or errors or element.get("StatusAttributeString") == "ERROR":
        return k.Declined("; ".join(errors) or "validation failed", result=element)
    reason = holds_allocation(operation.payload, element)
    return k.Unconfirmed(reason, answer=element) if reason else k.Confirmed(element)


def _alloc_look_up(client: XeroClient, operation: OutboundOperation) -> k.Lookup:
    note = accounting.first(
        accounting.credit_note_get(client, credit_note_id=operation.payload["CreditNoteID"]), "CreditNotes"
    )
    if not note:
        return k.Unconfirmed("Xero did not return the credit note")
    for allocation in note.get("Allocations") or []:
        if not allocation.get("IsDeleted") and not holds_allocation(operation.payload, allocation):
            return k.Confirmed(allocation)
    return k.Absent()


def _alloc_finish(operation: OutboundOperation, outcome: k.Outcome) -> None:
    if operation.subject_id is None:
        return
    credit_note_allocation_finish(
        allocation_id=operation.subject_id, state=outcome.state, message=outcome.message, result=outcome.result
    )


def register() -> None:
    k.register_kind(
        k.Kind(CREDIT_NOTE_CREATE, _cn_send, _cn_confirm, _cn_look_up, _cn_finish, retried=credit_note_retried)
    )
    k.register_kind(
        k.Kind(
            name=CREDIT_NOTE_ALLOCATE,
            send=_alloc_send,
            confirm=_alloc_confirm,
            look_up=_alloc_look_up,
            finish=_alloc_finish,
            retried=allocation_retried,
        )
    )


__all__ = ["holds_allocation", "holds_credit_note", "register"]
