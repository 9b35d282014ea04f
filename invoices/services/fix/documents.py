"""Fix, cancel or resend a document that is not in Xero: failed, needs attention, waiting or not synced.

One implementation for both kinds of document a batch holds, an invoice and a credit note (`DocumentKind` says how
they differ: their models, whether they have a due date, when they may be changed, how they are sent again).
Xero refused it (or never saw it), so the document is ours alone: its customer, dates, reference and lines (with
their own account and tax rate) are edited here, checked exactly as a new batch is (`batches.batch_problems`), and
the next send is built from the lines as they are then. Cancelling removes it and frees its number; a
`CancelledInvoice` keeps what it was and who cancelled it. Every step writes the document's history with the person.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import models, transaction
from django.http import Http404
from django.utils import timezone

from invoices import mappers
from invoices.models import CancelledInvoice, Invoice, InvoiceEvent, customer_name_key
from invoices.services.batches import (
    KIND_INVOICE,
    BatchProblem,
    InvoiceInput,
    LineInput,
    _customers,
    _totals_context,
    batch_problems,
)
from invoices.sync_states import CREDIT_NOTE_CANCELLABLE, INVOICE_CANCELLABLE, sync_state_remove
from organisations.models import Organisation

logger = logging.getLogger(__name__)

S = Invoice.SyncState
# Not in Xero and not on its way there right now: a person may change it, remove it or send it again.
FIXABLE = INVOICE_CANCELLABLE | CREDIT_NOTE_CANCELLABLE
RESENDABLE = (S.FAILED, S.NEEDS_ATTENTION)
IN_FLIGHT_REFUSAL = "It is being sent to Xero right now. Wait for Xero's answer, then fix it if Xero refuses it."


@dataclass(frozen=True)
class DocumentFix:
    customer_name: str
    issue_date: dt.date
    reference: str
    lines: Sequence[LineInput]
    due_date: dt.date | None = None  # an invoice's; a credit note has none
    customer_email: str = ""


InvoiceFix = DocumentFix


@dataclass(frozen=True)
class DocumentKind:
    """What fixing, cancelling and resending one kind of document needs to know about it; the rest (its lines and
    history, its label, whether it has a due date) follows from its model."""

    model: type[models.Model]
    in_xero_refusal: str  # why it cannot be changed here once it is in Xero
    resend: Callable[..., None]  # (organisation=, document=, user=): on its way again, under the lock
    # (document=, user=) before a cancel removes it: its writes to Xero withdrawn; a refusal's reason if one cannot be.
    withdraw: Callable[..., str | None] | None = None
    # States it may be cancelled in but not edited, each with the reason.
    not_editable: Mapping[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:  # "invoice" | "credit note"
        return str(self.model._meta.verbose_name)

    @property
    def name(self) -> str:  # as CancelledInvoice.document and the batch checks (batches.KIND_*) say it
        return self.label.replace(" ", "_")

    @property
    def parent(self) -> str:  # the foreign key of its lines and its events
        return self.model.lines.field.name

    @property
    def line_model(self) -> type[models.Model]:
        return self.model.lines.field.model

    @property
    def event_model(self) -> type[models.Model]:
        return self.model.events.field.model

    @property
    def has_due_date(self) -> bool:
        return any(f.name == "due_date" for f in self.model._meta.fields)


class FixRefused(Exception):
    """The document cannot be changed now (it is being sent, or it is in Xero): the message says why."""


class FixInvalid(Exception):
    def __init__(self, problems: list[BatchProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(p.message for p in problems))


def cancel_refusal(kind: DocumentKind, document: Any) -> str | None:
    """Why this document cannot be cancelled here; None when it can."""
    if document.sync_state in FIXABLE:
        return None
    if document.sync_state == S.IN_FLIGHT:
        return IN_FLIGHT_REFUSAL
    return kind.in_xero_refusal


def fix_refusal(kind: DocumentKind, document: Any) -> str | None:
    """Why this document cannot be edited here; None when it can."""
    return kind.not_editable.get(document.sync_state) or cancel_refusal(kind, document)


def resend_refusal(kind: DocumentKind, document: Any) -> str | None:
    if document.sync_state in RESENDABLE:
        return None
    if document.sync_state == S.PENDING:
        return "It is already waiting to be sent, with its current lines."
    if document.sync_state == S.NOT_SYNCED:
        return "Its batch is not synced to Xero: an admin sends the whole batch with Send to Xero."
    return cancel_refusal(kind, document)


def document_input_of(kind: DocumentKind, document: Any, lines: Sequence[Any]) -> InvoiceInput:
    """A stored document as the batch checks take it."""
    return InvoiceInput(
        customer_name=document.customer.name,
        number=document.number,
        issue_date=document.issue_date,
        due_date=document.due_date if kind.has_due_date else document.issue_date,
        currency=document.currency,
        reference=document.reference,
        line_amount_types=document.line_amount_types,
        status=document.status,
        kind=kind.name,
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


def document_get(kind: DocumentKind, organisation: Organisation, document_id: int, *, lock: bool = False) -> Any:
    qs = kind.model.objects.filter(organisation=organisation, pk=document_id)
    if lock:
        qs = qs.select_for_update(of=("self",))
    document = qs.select_related("customer", "batch").first()
    if document is None:
        raise Http404(f"No such {kind.label}.")
    return document


def document_event(
    kind: DocumentKind, document: Any, *, event: str, message: str, actor: Any, changes: dict | None = None
) -> None:
    """One entry of the document's history, said as a person did it in Coordinoter."""
    kind.event_model.objects.create(
        **{kind.parent: document},
        organisation_id=document.organisation_id,
        source=InvoiceEvent.Source.COORDINOTER,
        kind=event,
        message=message[:500],
        changes=changes or {},
        actor=actor,
    )


def _line_dict(line: Any) -> dict[str, str]:
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


def _wanted(kind: DocumentKind, document: Any, fix: DocumentFix) -> InvoiceInput:
    return InvoiceInput(
        customer_name=fix.customer_name.strip(),
        customer_email=fix.customer_email.strip(),
        number=document.number,
        issue_date=fix.issue_date,
        due_date=(fix.due_date or fix.issue_date) if kind.has_due_date else fix.issue_date,
        currency=document.currency,
        reference=fix.reference.strip(),
        line_amount_types=document.line_amount_types,
        status=document.status,
        kind=kind.name,
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


def _refused(kind: DocumentKind, document: Any, *, resend: bool) -> None:
    refusal = fix_refusal(kind, document) or (resend_refusal(kind, document) if resend else None)
    if refusal:
        raise FixRefused(refusal)


def document_fix(
    *,
    kind: DocumentKind,
    organisation: Organisation,
    document_id: int,
    user: AbstractBaseUser,
    fix: DocumentFix,
    resend: bool = False,
) -> Any:
    """Edit a document that is not in Xero (and, with `resend`, send it again at once). Raises FixInvalid with every
    problem (the same checks as a new batch: the Xero chart, amounts, dates), or FixRefused."""
    document = document_get(kind, organisation, document_id)
    _refused(kind, document, resend=resend)
    wanted = _wanted(kind, document, fix)
    # Checked before the lock: the chart may have to be read from Xero, and no Xero call is made under a lock.
    own = {"existing": [document.pk]} if kind.name == KIND_INVOICE else {"existing_credit_notes": [document.pk]}
    problems = batch_problems(organisation=organisation, name=document.batch.name, invoices=[wanted], **own)
    if problems:
        raise FixInvalid(problems)
    totals_context = _totals_context(organisation=organisation)
    with transaction.atomic():
        document = document_get(kind, organisation, document_id, lock=True)
        _refused(kind, document, resend=resend)  # sent, or answered by Xero, while the person was editing
        customer = _customers(organisation=organisation, invoices=[wanted])[customer_name_key(wanted.customer_name)]
        changes = _changes(kind, document, wanted, customer_name=customer.name)
        if changes:
            _save(kind, document, wanted, customer=customer, totals_context=totals_context, lines="lines" in changes)
            document_event(
                kind,
                document,
                event="edited",
                message=f"Edited by {user}: {_summary(changes)}",
                actor=user,
                changes=changes,
            )
        if resend:
            kind.resend(organisation=organisation, document=document, user=user)
    logger.info(
        "invoices.fix.edited",
        extra={
            "event": "invoices.fix.edited",
            "organisation_id": organisation.pk,
            "document": kind.name,
            "document_id": document.pk,
            "fields": sorted(changes),
            "resend": resend,
        },
    )
    return document


def _changes(kind: DocumentKind, document: Any, wanted: InvoiceInput, *, customer_name: str) -> dict[str, list]:
    changes: dict[str, list] = {}
    fields = [("customer", customer_name), ("issue_date", wanted.issue_date.isoformat())]
    if kind.has_due_date:
        fields.append(("due_date", wanted.due_date.isoformat()))
    fields.append(("reference", wanted.reference))
    for name, after in fields:
        before = document.customer.name if name == "customer" else getattr(document, name)
        before = before.isoformat() if isinstance(before, dt.date) else before
        if before != after:
            changes[name] = [before, after]
    before_lines = [_line_dict(line) for line in document.lines.all()]
    after_lines = [_line_dict(line) for line in wanted.lines]
    if before_lines != after_lines:
        changes["lines"] = [before_lines, after_lines]
    return changes


def _save(kind: DocumentKind, document: Any, wanted: InvoiceInput, *, customer, totals_context, lines: bool) -> None:
    totals = mappers.invoice_totals(
        wanted.lines,
        line_amount_types=document.line_amount_types,
        tax_rate=totals_context.tax_rate,
        tax_rates=totals_context.tax_rates,
    )
    document.customer, document.issue_date, document.reference = customer, wanted.issue_date, wanted.reference
    document.subtotal, document.total_tax, document.total = totals.subtotal, totals.total_tax, totals.total
    fields = ["customer", "issue_date", "reference", "subtotal", "total_tax", "total", "updated_at"]
    if kind.has_due_date:
        document.due_date, document.amount_due = wanted.due_date, totals.total
        fields += ["due_date", "amount_due"]
    document.save(update_fields=fields)
    if lines:
        document.lines.all().delete()
        kind.line_model.objects.bulk_create(
            [
                kind.line_model(
                    **{kind.parent: document},
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


def _summary(changes: dict[str, list]) -> str:
    labels = {"customer": "customer", "issue_date": "date", "due_date": "due date", "reference": "reference"}
    parts = []
    for name, (before, after) in changes.items():
        if name == "lines":
            parts.append(
                f"lines ({len(before)} → {len(after)}): "
                + "; ".join(_line_text(line) for line in after[:3])
                + ("…" if len(after) > 3 else "")
            )
        else:
            parts.append(f"{labels[name]} {before or '—'} → {after or '—'}")
    return ", ".join(parts) or "no change"


@transaction.atomic
def document_resend(*, kind: DocumentKind, organisation: Organisation, document_id: int, user: AbstractBaseUser) -> Any:
    """Send a failed (or needs-attention) document again, as it is now. Raises FixRefused."""
    document = document_get(kind, organisation, document_id, lock=True)
    refusal = resend_refusal(kind, document)
    if refusal:
        raise FixRefused(refusal)
    kind.resend(organisation=organisation, document=document, user=user)
    return document


@transaction.atomic
def document_cancel(
    *, kind: DocumentKind, organisation: Organisation, document_id: int, user: AbstractBaseUser
) -> CancelledInvoice:
    """Remove a document that is not in Xero; its number is free again. Raises FixRefused."""
    document = document_get(kind, organisation, document_id, lock=True)
    refusal = cancel_refusal(kind, document) or (kind.withdraw(document=document, user=user) if kind.withdraw else None)
    if refusal:
        raise FixRefused(refusal)
    sync_state_remove(document)
    history = [
        {
            "at": event.created_at.isoformat(),
            "when": timezone.localtime(event.created_at).strftime("%Y-%m-%d %H:%M:%S %Z"),
            "source": event.get_source_display(),
            "kind": event.kind,
            "message": event.message,
            "actor": getattr(event.actor, "email", "") if event.actor_id else "",
        }
        for event in document.events.select_related("actor").order_by("-created_at", "-pk")
    ]
    cancelled = CancelledInvoice.objects.create(
        organisation=organisation,
        batch=document.batch,
        document=kind.name,
        number=document.number,
        customer_name=document.customer.name,
        currency=document.currency,
        total=document.total,
        sync_state=document.sync_state,
        history=history,
        cancelled_by=user,
    )
    document.delete()
    logger.info(
        "invoices.fix.cancelled",
        extra={
            "event": "invoices.fix.cancelled",
            "organisation_id": organisation.pk,
            "document": kind.name,
            "batch_id": cancelled.batch_id,
            "number": cancelled.number,
            "sync_state": cancelled.sync_state,
        },
    )
    return cancelled
