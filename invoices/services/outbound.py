"""Changes made in Coordinoter after the first push go to Xero: edit a DRAFT or SUBMITTED invoice, void or delete.

Xero's rules are checked before anything is stored (https://developer.xero.com/documentation/api/accounting/invoices,
"Deleting and voiding invoices"): delete only DRAFT or SUBMITTED; void only AUTHORISED with no payment or credit
allocated (a paid or part-paid invoice cannot be voided); edit only DRAFT or SUBMITTED. The change is stored with
its Idempotency-Key, then a worker checks Xero's current copy: if Xero holds a newer version than the one the person
was looking at, nothing is sent and the conflict is shown (never silently overwritten).
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.http import Http404

from integrations.models import XeroConnection
from integrations.outbound import engine
from integrations.outbound.models import OutboundOperation
from integrations.outbound.record import RunResult
from invoices.created_in_xero.models import XeroInvoiceChange
from invoices.models import Invoice, InvoiceEvent, XeroMapping
from invoices.outbound.changes import INVOICE_CHANGE
from invoices.services.batches.inputs import LineInput
from organisations.models import Organisation

logger = logging.getLogger("invoices.outbound")

CLAIM = dt.timedelta(minutes=2)
A = XeroInvoiceChange.Action
S = XeroInvoiceChange.State
EDITABLE = ("DRAFT", "SUBMITTED")
# Four-decimal unit amounts both ways, or Xero rounds 99.995 to 100.00 (https://developer.xero.com/documentation/api/accounting/invoices)


class ChangeRefused(Exception):
    """The change breaks one of Xero's rules, or the invoice moved on since the person looked at it."""

    def __init__(self, message: str, *, conflict: bool = False) -> None:
        self.conflict = conflict
        super().__init__(message)


# An edited line carries what a new line carries: one type for both.
LineEdit = LineInput


@dataclass(frozen=True)
class InvoiceEdit:
    reference: str
    issue_date: dt.date
    due_date: dt.date
    lines: Sequence[LineEdit]


# ---------------------------------------------------------------- the rules (pure)


def invoice_xero_status(invoice: Invoice) -> str:
    return invoice.xero_status or invoice.status


def invoice_change_refusal(*, invoice: Invoice, action: str) -> str | None:
    """Why Xero would refuse this change, in words for the person; None when it is allowed."""
    if not invoice.xero_invoice_id:
        return "This invoice is not in Xero yet: nothing to change there."
    if invoice.xero_tenant_id and invoice.xero_tenant_id != _connected_tenant(invoice.organisation_id):
        # After a switch to another Xero organisation: the change would go to the wrong books.
        return "It was created in another Xero organisation than the one connected now: open it there to change it."
    status = invoice_xero_status(invoice)
    if action == A.VOID:
        if status == "PAID" or invoice.amount_paid > 0:
            return "A paid or part-paid invoice cannot be voided. Remove the payment in Xero first, then void it."
        if invoice.amount_credited > 0:
            return "This invoice has a credit note allocated: remove the allocation in Xero before voiding it."
        if status in EDITABLE:
            return f"A {status} invoice is deleted, not voided."
        if status != "AUTHORISED":
            return f"Only an approved (AUTHORISED) invoice can be voided; this one is {status}."
        return None
    if action == A.DELETE:
        if status not in EDITABLE:
            return f"Only DRAFT or SUBMITTED invoices can be deleted; this one is {status}." + (
                " Void it instead." if status == "AUTHORISED" and invoice.amount_paid == 0 else ""
            )
        return None
    if action == A.EDIT:
        if status not in EDITABLE:
            return f"Xero allows editing DRAFT or SUBMITTED invoices only; this one is {status}."
        return None
    return f"Unknown action {action!r}."


def _connected_tenant(organisation_id: int) -> str:
    from integrations.models import XeroConnection

    return (
        XeroConnection.objects.filter(organisation_id=organisation_id).values_list("tenant_id", flat=True).first() or ""
    )


def _edit_payload(invoice: Invoice, edit: InvoiceEdit, mapping: XeroMapping | None) -> dict[str, Any]:
    if not edit.lines:
        raise ChangeRefused("An invoice needs at least one line.")
    lines = []
    for line in edit.lines:
        if not line.description.strip():
            raise ChangeRefused("Every line needs a description.")
        account = line.account_code or (mapping.revenue_account_code if mapping else "")
        tax = line.tax_type or (mapping.tax_type if mapping else "")
        item: dict[str, Any] = {
            "Description": line.description.strip(),
            "Quantity": float(line.quantity),
            "UnitAmount": float(line.unit_amount),
        }
        if account:
            item["AccountCode"] = account
        if tax:
            item["TaxType"] = tax
        lines.append(item)
    if edit.due_date < edit.issue_date:
        raise ChangeRefused("The due date cannot be before the invoice date.")
    # Lines sent without LineItemID replace the invoice's lines (xero-facts 2.7).
    return {
        "InvoiceID": invoice.xero_invoice_id,
        "Reference": edit.reference,
        "Date": edit.issue_date.isoformat(),
        "DueDate": edit.due_date.isoformat(),
        "LineItems": lines,
    }


# ---------------------------------------------------------------- requesting a change (the web request)


def _invoice_for(organisation: Organisation, invoice_id: int) -> Invoice:
    invoice = Invoice.objects.select_for_update().filter(organisation=organisation, pk=invoice_id).first()
    if invoice is None:
        raise Http404("No such invoice.")
    return invoice


def _check_version(invoice: Invoice, based_on: dt.datetime | None) -> None:
    if based_on is not None and invoice.xero_updated_at is not None and invoice.xero_updated_at != based_on:
        raise ChangeRefused(
            "This invoice changed in Xero after you opened it (see its history). Review it and try again.",
            conflict=True,
        )


@transaction.atomic
def invoice_change_request(
    *,
    organisation: Organisation,
    invoice_id: int,
    action: str,
    user,
    based_on: dt.datetime | None,
    edit: InvoiceEdit | None = None,
) -> XeroInvoiceChange:
    """Check the rules, store the change with its Idempotency-Key and enqueue it. Raises ChangeRefused."""
    invoice = _invoice_for(organisation, invoice_id)
    refusal = invoice_change_refusal(invoice=invoice, action=action)
    if refusal:
        raise ChangeRefused(refusal)
    _check_version(invoice, based_on)
    connection = XeroConnection.objects.filter(organisation=organisation).exclude(tenant_id="").first()
    if connection is None:
        raise ChangeRefused("Xero is not connected.")
    if XeroInvoiceChange.objects.filter(invoice=invoice, state__in=[S.PENDING, S.SENDING]).exists():
        raise ChangeRefused("A change to this invoice is already on its way to Xero. Wait for it to finish.")
    if action == A.VOID:
        payload = {"InvoiceID": invoice.xero_invoice_id, "Status": "VOIDED"}
    elif action == A.DELETE:
        payload = {"InvoiceID": invoice.xero_invoice_id, "Status": "DELETED"}
    else:
        if edit is None:
            raise ChangeRefused("Nothing to change.")
        payload = _edit_payload(invoice, edit, XeroMapping.objects.filter(organisation=organisation).first())
    change = XeroInvoiceChange.objects.create(
        organisation=organisation,
        invoice=invoice,
        action=action,
        payload=payload,
        idempotency_key=f"coordinoter-change-{uuid.uuid4()}",
        based_on_xero_updated_at=invoice.xero_updated_at,
        requested_by=user,
    )
    InvoiceEvent.objects.create(
        invoice=invoice,
        organisation=organisation,
        source=InvoiceEvent.Source.COORDINOTER,
        kind=f"{action}_requested",
        message=f"{A(action).label} requested by {user}: sending to Xero",
        changes={"change_id": change.pk},
        actor=user,
    )
    logger.info(
        "invoices.outbound.requested",
        extra={
            "event": "invoices.outbound.requested",
            "organisation_id": organisation.pk,
            "invoice_id": invoice.pk,
            "change_id": change.pk,
            "action": action,
        },
    )
    operation = engine.operation_create(
        organisation_id=organisation.pk,
        tenant_id=connection.tenant_id,
        kind=INVOICE_CHANGE,
        payload=payload,
        subject_id=change.pk,
        requested_by=user,
        idempotency_key=change.idempotency_key,
    )
    engine.operation_enqueue(operation_id=operation.pk)
    return change


def invoice_change_operation(change: XeroInvoiceChange) -> OutboundOperation | None:
    return OutboundOperation.objects.filter(kind=INVOICE_CHANGE, subject_id=change.pk).first()


# ---------------------------------------------------------------- sending (the outbound engine's run)


def invoice_change_send(*, change_id: int) -> RunResult:
    """Run the change's outbound operation once (what its task does) and report where the change stands: its state
    after the run (skipped when nothing ran), and the engine's wait before the next run."""
    change = XeroInvoiceChange.objects.get(pk=change_id)
    operation = invoice_change_operation(change)
    if operation is None:
        return RunResult("skipped")
    result = engine.operation_run(operation_id=operation.pk)
    change.refresh_from_db()
    if result.state in ("busy", "noop", "early", "lost_lease"):
        return RunResult("skipped", retry_in=result.retry_in)
    return RunResult(change.state, retry_in=result.retry_in)


__all__ = [
    "ChangeRefused",
    "InvoiceEdit",
    "LineEdit",
    "invoice_change_refusal",
    "invoice_change_request",
    "invoice_change_send",
    "invoice_xero_status",
]
