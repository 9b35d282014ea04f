"""Writing a valid batch's rows: the batch, its invoices and credit notes with their lines, the `created` events and
the allocations asked for."""

from __future__ import annotations

from collections.abc import Sequence

from django.contrib.auth.models import AbstractBaseUser
from django.db.models.functions import Lower

from invoices import mappers
from invoices.models import (
    CreditNote,
    CreditNoteAllocation,
    CreditNoteLine,
    Customer,
    Invoice,
    InvoiceBatch,
    InvoiceEvent,
    InvoiceLine,
    customer_name_key,
)
from invoices.services.batches.inputs import NOT_SYNCED_REASONS, InvoiceInput, _Totals
from invoices.sync_states import sync_state_begin
from organisations.models import Organisation


def _customers(*, organisation: Organisation, invoices: Sequence[InvoiceInput]) -> dict[str, Customer]:
    """Existing customers matched by their canonical name key (customer_name_key) within the organisation; the rest
    created. Keyed by that same key, computed in Python both for the lookup and for the match."""
    wanted: dict[str, InvoiceInput] = {}
    for inv in invoices:
        wanted.setdefault(customer_name_key(inv.customer_name), inv)
    found = {c.name_key: c for c in Customer.objects.filter(organisation=organisation, name_key__in=list(wanted))}
    for key, inv in wanted.items():
        if key not in found:
            found[key] = Customer.objects.create(
                organisation=organisation, name=inv.customer_name.strip()[:255], email=inv.customer_email.strip()
            )
    return found


def _write(
    *,
    organisation: Organisation,
    user: AbstractBaseUser | None,
    name: str,
    invoices: Sequence[InvoiceInput],
    source: str,
    eligibility: str,
    totals_context: _Totals,
) -> InvoiceBatch:
    batch = InvoiceBatch.objects.create(
        organisation=organisation,
        name=name[:200],
        source=source,
        eligibility=eligibility,
        created_by=user if user else None,
    )
    customers = _customers(organisation=organisation, invoices=invoices)
    credit_notes = [inv for inv in invoices if inv.is_credit_note]
    invoices = [inv for inv in invoices if not inv.is_credit_note]
    eligible = eligibility == InvoiceBatch.Eligibility.ELIGIBLE
    rows = []
    for inv in invoices:
        fields = _document_fields(inv, batch=batch, customers=customers, totals=totals_context)
        rows.append(
            Invoice(
                **fields,
                sync_state=sync_state_begin(eligible=eligible),
                due_date=inv.due_date,
                amount_due=fields["total"],
            )
        )
    created = Invoice.objects.bulk_create(rows, batch_size=500)
    lines = [
        InvoiceLine(
            invoice=invoice,
            position=position,
            description=line.description.strip(),
            quantity=line.quantity,
            unit_amount=line.unit_amount,
            account_code=line.account_code.strip(),
            tax_type=line.tax_type.strip(),
        )
        for invoice, inv in zip(created, invoices, strict=True)
        for position, line in enumerate(inv.lines, start=1)
    ]
    InvoiceLine.objects.bulk_create(lines, batch_size=1000)
    message = NOT_SYNCED_REASONS.get(eligibility, "Created; waiting to be sent to Xero.")
    InvoiceEvent.objects.bulk_create(
        [
            InvoiceEvent(
                invoice=invoice,
                organisation=organisation,
                source=InvoiceEvent.Source.COORDINOTER,
                kind="created",
                message=message,
                actor=user if user else None,
                changes={"batch": batch.pk, "source": source},
            )
            for invoice in created
        ],
        batch_size=1000,
    )
    _write_credit_notes(
        batch=batch,
        user=user,
        credit_notes=credit_notes,
        customers=customers,
        invoices={invoice.number.lower(): invoice for invoice in created},
        eligible=eligible,
        totals_context=totals_context,
    )
    return batch


def _document_fields(
    inv: InvoiceInput, *, batch: InvoiceBatch, customers: dict[str, Customer], totals: _Totals
) -> dict:
    """What an invoice and a credit note of the batch store alike: who, which numbers and dates, and the totals
    with Xero's rounding."""
    computed = mappers.invoice_totals(
        inv.lines, line_amount_types=inv.line_amount_types, tax_rate=totals.tax_rate, tax_rates=totals.tax_rates
    )
    return {
        "organisation": batch.organisation,
        "batch": batch,
        "customer": customers[customer_name_key(inv.customer_name)],
        "number": inv.number.strip(),
        "reference": inv.reference.strip(),
        "currency": inv.currency,
        "issue_date": inv.issue_date,
        "line_amount_types": inv.line_amount_types,
        "status": inv.status,
        "subtotal": computed.subtotal,
        "total_tax": computed.total_tax,
        "total": computed.total,
    }


def _write_credit_notes(
    *,
    batch: InvoiceBatch,
    user: AbstractBaseUser | None,
    credit_notes: Sequence[InvoiceInput],
    customers: dict[str, Customer],
    invoices: dict[str, Invoice],
    eligible: bool,
    totals_context: _Totals,
) -> None:
    """The batch's credit notes, their lines, and the allocations asked for (waiting until both are in Xero)."""
    if not credit_notes:
        return
    organisation = batch.organisation
    notes = []
    for inv in credit_notes:
        fields = _document_fields(inv, batch=batch, customers=customers, totals=totals_context)
        notes.append(CreditNote(**fields, sync_state=sync_state_begin(eligible=eligible)))
    created = CreditNote.objects.bulk_create(notes)
    CreditNoteLine.objects.bulk_create(
        [
            CreditNoteLine(
                credit_note=note,
                position=position,
                description=line.description.strip(),
                quantity=line.quantity,
                unit_amount=line.unit_amount,
                account_code=line.account_code.strip(),
                tax_type=line.tax_type.strip(),
            )
            for note, inv in zip(created, credit_notes, strict=True)
            for position, line in enumerate(inv.lines, start=1)
        ]
    )
    targets = {inv.allocate_to.strip().lower() for inv in credit_notes if inv.allocate_to.strip()}
    earlier = {
        number.lower(): invoice
        for invoice in Invoice.objects.filter(organisation=organisation)
        .annotate(lowered=Lower("number"))
        .filter(lowered__in=[t for t in targets if t not in invoices])
        for number in [invoice.number]
    }
    allocations = [
        CreditNoteAllocation(
            organisation=organisation,
            credit_note=note,
            invoice=invoices.get(inv.allocate_to.strip().lower()) or earlier[inv.allocate_to.strip().lower()],
            requested_by=user if user else None,
        )
        for note, inv in zip(created, credit_notes, strict=True)
        if inv.allocate_to.strip()
    ]
    CreditNoteAllocation.objects.bulk_create(allocations)
    InvoiceEvent.objects.bulk_create(
        [
            InvoiceEvent(
                invoice=allocation.invoice,
                organisation=organisation,
                source=InvoiceEvent.Source.COORDINOTER,
                kind="credit_requested",
                message=f"Credit note {allocation.credit_note.number} to be allocated to it once both are in Xero.",
                actor=user if user else None,
                changes={"credit_note_id": allocation.credit_note.pk},
            )
            for allocation in allocations
        ]
    )
