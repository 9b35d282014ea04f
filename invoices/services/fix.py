"""Fix, cancel or resend an invoice that is not in Xero: failed, needs attention, waiting or not synced.

Xero refused it (or never saw it), so the invoice is ours alone: its customer, dates, reference and lines (with their
own account and tax rate) are edited here, checked exactly as a new batch is (`batches.batch_problems`), and the push
builds the next payload from the lines as they are then. Cancelling removes it and frees its number; a
`CancelledInvoice` keeps what it was and who cancelled it. Every step writes the invoice's history with the person.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.http import Http404
from django.utils import timezone

from invoices import mappers
from invoices.models import CancelledInvoice, Invoice, InvoiceEvent, InvoiceLine, customer_name_key
from invoices.services.batches import (
    BatchProblem,
    InvoiceInput,
    LineInput,
    _customers,
    _totals_context,
    batch_problems,
)
from invoices.sync_states import INVOICE_CANCELLABLE, sync_state_remove
from organisations.models import Organisation

logger = logging.getLogger(__name__)

S = Invoice.SyncState
# Not in Xero and not on its way there right now: a person may change it, remove it or send it again.
FIXABLE = INVOICE_CANCELLABLE
RESENDABLE = (S.FAILED, S.NEEDS_ATTENTION)


@dataclass(frozen=True)
class InvoiceFix:
    customer_name: str
    issue_date: dt.date
    due_date: dt.date
    reference: str
    lines: Sequence[LineInput]
    customer_email: str = ""


class FixRefused(Exception):
    """The invoice cannot be changed now (it is being sent, or it is in Xero): the message says why."""


class FixInvalid(Exception):
    def __init__(self, problems: list[BatchProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(p.message for p in problems))


def invoice_fix_refusal(*, invoice: Invoice) -> str | None:
    """Why this invoice cannot be edited or cancelled here; None when it can."""
    if invoice.sync_state in FIXABLE:
        return None
    if invoice.sync_state == S.IN_FLIGHT:
        return "It is being sent to Xero right now. Wait for Xero's answer, then fix it if Xero refuses it."
    return "It is in Xero: change it there, or with Edit, Void or Delete on the batch page."


def invoice_resend_refusal(*, invoice: Invoice) -> str | None:
    if invoice.sync_state in RESENDABLE:
        return None
    if invoice.sync_state == S.PENDING:
        return "It is already waiting to be sent, with its current lines."
    if invoice.sync_state == S.NOT_SYNCED:
        return "Its batch is not synced to Xero: an admin sends the whole batch with Send to Xero."
    return invoice_fix_refusal(invoice=invoice)


def invoice_input_of(invoice: Invoice, lines: Sequence[InvoiceLine]) -> InvoiceInput:
    """A stored invoice as the batch checks take it."""
    return InvoiceInput(
        customer_name=invoice.customer.name,
        number=invoice.number,
        issue_date=invoice.issue_date,
        due_date=invoice.due_date,
        currency=invoice.currency,
        reference=invoice.reference,
        line_amount_types=invoice.line_amount_types,
        status=invoice.status,
        lines=[
            LineInput(
                description=line.description,
                quantity=line.quantity,
                unit_amount=line.unit_amount,
                account_code=line.account_code,
                tax_type=line.tax_type,
            )
            for line in lines
        ],
    )


def _get(organisation: Organisation, invoice_id: int, *, lock: bool = False) -> Invoice:
    qs = Invoice.objects.filter(organisation=organisation, pk=invoice_id)
    if lock:
        qs = qs.select_for_update(of=("self",))
    invoice = qs.select_related("customer", "batch").first()
    if invoice is None:
        raise Http404("No such invoice.")
    return invoice


def _line_dict(line: InvoiceLine | LineInput) -> dict[str, str]:
    return {
        "description": line.description,
        "quantity": mappers.plain_decimal(Decimal(line.quantity)),
        "unit_amount": mappers.plain_decimal(Decimal(line.unit_amount), min_places=2),
        "account_code": line.account_code or "",
        "tax_type": line.tax_type or "",
    }


def _line_text(line: dict[str, str]) -> str:
    own = " · ".join(v for v in (line["account_code"], line["tax_type"]) if v)
    return f"{line['description'][:50]} × {line['quantity']} @ {line['unit_amount']}" + (f" ({own})" if own else "")


def invoice_fix(
    *, organisation: Organisation, invoice_id: int, user: AbstractBaseUser, fix: InvoiceFix, resend: bool = False
) -> Invoice:
    """Edit an invoice that is not in Xero (and, with `resend`, send it again at once). Raises FixInvalid with every
    problem (the same checks as a new batch: the Xero chart, amounts, dates), or FixRefused."""
    invoice = _get(organisation, invoice_id)
    refusal = invoice_fix_refusal(invoice=invoice) or (invoice_resend_refusal(invoice=invoice) if resend else None)
    if refusal:
        raise FixRefused(refusal)
    wanted = InvoiceInput(
        customer_name=fix.customer_name.strip(),
        customer_email=fix.customer_email.strip(),
        number=invoice.number,
        issue_date=fix.issue_date,
        due_date=fix.due_date,
        currency=invoice.currency,
        reference=fix.reference.strip(),
        line_amount_types=invoice.line_amount_types,
        status=invoice.status,
        lines=[
            LineInput(
                description=line.description.strip(),
                quantity=line.quantity,
                unit_amount=line.unit_amount,
                account_code=(line.account_code or "").strip(),
                tax_type=(line.tax_type or "").strip(),
            )
            for line in fix.lines
        ],
    )
    # Checked before the lock: the chart may have to be read from Xero, and no Xero call is made under a lock.
    problems = batch_problems(
        organisation=organisation, name=invoice.batch.name, invoices=[wanted], existing=[invoice.pk]
    )
    if problems:
        raise FixInvalid(problems)
    totals_context = _totals_context(organisation=organisation)
    with transaction.atomic():
        invoice = _get(organisation, invoice_id, lock=True)
        refusal = invoice_fix_refusal(invoice=invoice) or (invoice_resend_refusal(invoice=invoice) if resend else None)
        if refusal:  # sent, or answered by Xero, while the person was editing
            raise FixRefused(refusal)
        before_lines = [_line_dict(line) for line in invoice.lines.all()]
        after_lines = [_line_dict(line) for line in wanted.lines]
        customer = _customers(organisation=organisation, invoices=[wanted])[customer_name_key(wanted.customer_name)]
        changes: dict[str, list] = {}
        for field, after in (
            ("customer", customer.name),
            ("issue_date", wanted.issue_date.isoformat()),
            ("due_date", wanted.due_date.isoformat()),
            ("reference", wanted.reference),
        ):
            before = invoice.customer.name if field == "customer" else getattr(invoice, field)
            before = before.isoformat() if isinstance(before, dt.date) else before
            if before != after:
                changes[field] = [before, after]
        if before_lines != after_lines:
            changes["lines"] = [before_lines, after_lines]
        if changes:
            totals = mappers.invoice_totals(
                wanted.lines,
                line_amount_types=invoice.line_amount_types,
                tax_rate=totals_context.tax_rate,
                tax_rates=totals_context.tax_rates,
            )
            invoice.customer = customer
            invoice.issue_date, invoice.due_date, invoice.reference = (
                wanted.issue_date,
                wanted.due_date,
                wanted.reference,
            )
            invoice.subtotal, invoice.total_tax, invoice.total = totals.subtotal, totals.total_tax, totals.total
            invoice.amount_due = totals.total
            invoice.save(
                update_fields=[
                    "customer",
                    "issue_date",
                    "due_date",
                    "reference",
                    "subtotal",
                    "total_tax",
                    "total",
                    "amount_due",
                    "updated_at",
                ]
            )
            if "lines" in changes:
                invoice.lines.all().delete()
                InvoiceLine.objects.bulk_create(
                    [
                        InvoiceLine(
                            invoice=invoice,
                            position=position,
                            description=line.description,
                            quantity=line.quantity,
                            unit_amount=line.unit_amount,
                            account_code=line.account_code,
                            tax_type=line.tax_type,
                        )
                        for position, line in enumerate(wanted.lines, start=1)
                    ]
                )
            InvoiceEvent.objects.create(
                invoice=invoice,
                organisation=organisation,
                source=InvoiceEvent.Source.COORDINOTER,
                kind="edited",
                message=f"Edited by {user}: {_summary(changes)}"[:500],
                changes=changes,
                actor=user,
            )
        if resend:
            _resend(organisation=organisation, invoice=invoice, user=user)
    logger.info(
        "invoices.fix.edited",
        extra={
            "event": "invoices.fix.edited",
            "organisation_id": organisation.pk,
            "invoice_id": invoice.pk,
            "fields": sorted(changes),
            "resend": resend,
        },
    )
    return invoice


def _summary(changes: dict[str, list]) -> str:
    labels = {"customer": "customer", "issue_date": "date", "due_date": "due date", "reference": "reference"}
    parts = []
    for field, (before, after) in changes.items():
        if field == "lines":
            parts.append(
                f"lines ({len(before)} → {len(after)}): "
                + "; ".join(_line_text(line) for line in after[:3])
                + ("…" if len(after) > 3 else "")
            )
        else:
            parts.append(f"{labels[field]} {before or '—'} → {after or '—'}")
    return ", ".join(parts) or "no change"


def _resend(*, organisation: Organisation, invoice: Invoice, user: AbstractBaseUser) -> None:
    # The push engine owns retries: failed/needs attention -> pending, who asked, enqueued on commit. The next
    # chunk is built from the invoice's lines as they are now, under a new Idempotency-Key.
    from invoices.services.push import invoices_retry_failed

    invoices_retry_failed(organisation=organisation, batch=invoice.batch, user=user, invoice_ids=[invoice.pk])


@transaction.atomic
def invoice_resend(*, organisation: Organisation, invoice_id: int, user: AbstractBaseUser) -> Invoice:
    """Send a failed (or needs-attention) invoice again, as it is now. Raises FixRefused."""
    invoice = _get(organisation, invoice_id, lock=True)
    refusal = invoice_resend_refusal(invoice=invoice)
    if refusal:
        raise FixRefused(refusal)
    _resend(organisation=organisation, invoice=invoice, user=user)
    return invoice


@transaction.atomic
def invoice_cancel(*, organisation: Organisation, invoice_id: int, user: AbstractBaseUser) -> CancelledInvoice:
    """Remove an invoice that is not in Xero; its number is free again. Raises FixRefused."""
    invoice = _get(organisation, invoice_id, lock=True)
    refusal = invoice_fix_refusal(invoice=invoice)
    if refusal:
        raise FixRefused(refusal)
    sync_state_remove(invoice)
    history = [
        {
            "at": event.created_at.isoformat(),
            "when": timezone.localtime(event.created_at).strftime("%Y-%m-%d %H:%M:%S %Z"),
            "source": event.get_source_display(),
            "kind": event.kind,
            "message": event.message,
            "actor": getattr(event.actor, "email", "") if event.actor_id else "",
        }
        for event in invoice.events.select_related("actor").order_by("-created_at", "-pk")
    ]
    cancelled = CancelledInvoice.objects.create(
        organisation=organisation,
        batch=invoice.batch,
        number=invoice.number,
        customer_name=invoice.customer.name,
        currency=invoice.currency,
        total=invoice.total,
        sync_state=invoice.sync_state,
        history=history,
        cancelled_by=user,
    )
    invoice.delete()
    logger.info(
        "invoices.fix.cancelled",
        extra={
            "event": "invoices.fix.cancelled",
            "organisation_id": organisation.pk,
            "batch_id": cancelled.batch_id,
            "number": cancelled.number,
            "sync_state": cancelled.sync_state,
        },
    )
    return cancelled
