"""Send a batch that was not synced (created before Xero was connected, or while it was disconnected) on purpose.

The help article's rule stays: such a batch never goes to Xero by itself. An admin reviews what would be created
(how many invoices, for whom, the totals, and every line the organisation's Xero chart would refuse) and confirms;
its invoices then become pending and go through the push like any other.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Prefetch
from django.utils import timezone

from integrations.models import XeroConnection
from integrations.selectors import xero_connection_for
from invoices.models import CreditNote, Invoice, InvoiceBatch, InvoiceEvent, InvoiceLine
from invoices.services.batches import batch_problems
from invoices.services.credit_notes import credit_note_sync_state_set
from invoices.services.fix import invoice_input_of
from invoices.services.mapping import mapping_for
from invoices.sync_states import sync_state_update
from organisations.models import Organisation

logger = logging.getLogger(__name__)

S = Invoice.SyncState
CREATED_WHEN = {
    InvoiceBatch.Eligibility.BEFORE_CONNECTION: "created before Xero was connected",
    InvoiceBatch.Eligibility.WHILE_DISCONNECTED: "created while Xero was disconnected",
}


@dataclass(frozen=True)
class ReviewProblem:
    invoice_id: int
    number: str
    line: int | None  # 1-based, None for the invoice itself
    message: str


@dataclass(frozen=True)
class BatchSendReview:
    """What sending the batch would create in Xero, and what stops it (`blocker`, or `problems` to fix first)."""

    count: int
    customers: list[tuple[str, int, str, Decimal]]  # name, invoices, currency, total
    totals: list[tuple[str, Decimal]]  # currency, total
    problems: list[ReviewProblem] = field(default_factory=list)
    blocker: str = ""
    tenant_name: str = ""

    @property
    def can_send(self) -> bool:
        return not self.blocker and not self.problems and self.count > 0


class BatchSendRefused(Exception):
    pass


def batch_is_unsent(batch: InvoiceBatch) -> bool:
    return batch.eligibility != InvoiceBatch.Eligibility.ELIGIBLE


def _blocker(*, organisation: Organisation, batch: InvoiceBatch) -> str:
    if not batch_is_unsent(batch):
        return "This batch already syncs to Xero."
    connection = xero_connection_for(organisation)
    if connection is None or not connection.is_usable:
        if connection is not None and connection.status == XeroConnection.Status.NEEDS_RECONNECT:
            return "Xero needs reconnecting first: reconnect on Manage Integrations, then send the batch."
        return "Connect Xero first on Manage Integrations: there is nowhere to send the batch yet."
    if mapping_for(organisation) is None:
        return "Choose the default revenue account and tax rate (the Xero mapping) first: lines use them."
    return ""


def batch_send_review(*, organisation: Organisation, batch: InvoiceBatch) -> BatchSendReview:
    invoices = list(
        Invoice.objects.filter(organisation=organisation, batch=batch, sync_state=S.NOT_SYNCED)
        .select_related("customer")
        .prefetch_related(Prefetch("lines", queryset=InvoiceLine.objects.order_by("position", "pk")))
        .order_by("number")
    )
    per_customer: dict[tuple[str, str], list] = defaultdict(lambda: [0, Decimal("0")])
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for invoice in invoices:
        row = per_customer[(invoice.customer.name, invoice.currency)]
        row[0] += 1
        row[1] += invoice.total
        totals[invoice.currency] += invoice.total
    blocker = _blocker(organisation=organisation, batch=batch)
    problems: list[ReviewProblem] = []
    if invoices and not blocker:
        inputs = [invoice_input_of(invoice, list(invoice.lines.all())) for invoice in invoices]
        for problem in batch_problems(
            organisation=organisation, name=batch.name, invoices=inputs, existing=[i.pk for i in invoices]
        ):
            if problem.index is None:
                continue
            invoice = invoices[problem.index]
            line = problem.line + 1 if problem.line is not None else None
            problems.append(ReviewProblem(invoice.pk, invoice.number, line, problem.message))
    connection = xero_connection_for(organisation)
    return BatchSendReview(
        count=len(invoices),
        customers=sorted(
            ((name, n, currency, total) for (name, currency), (n, total) in per_customer.items()),
            key=lambda row: row[0].casefold(),
        ),
        totals=sorted(totals.items()),
        problems=problems,
        blocker=blocker or ("" if invoices else "There are no invoices left in this batch to send."),
        tenant_name=connection.tenant_name if connection else "",
    )


def batch_send_to_xero(*, organisation: Organisation, batch_id: int, user: AbstractBaseUser) -> int:
    """Send a not-synced batch now: its invoices become pending and the push takes them. Checked again first (the
    chart may have changed since the review). Returns how many invoices go; raises BatchSendRefused."""
    batch = InvoiceBatch.objects.filter(organisation=organisation, pk=batch_id).first()
    if batch is None:
        from django.http import Http404

        raise Http404("No such batch.")
    review = batch_send_review(organisation=organisation, batch=batch)
    if not review.can_send:
        raise BatchSendRefused(review.blocker or f"{len(review.problems)} line(s) would be refused by Xero: fix them.")
    with transaction.atomic():
        batch = InvoiceBatch.objects.select_for_update().get(pk=batch.pk)
        if not batch_is_unsent(batch):
            raise BatchSendRefused("This batch was just sent to Xero.")
        reason = CREATED_WHEN.get(batch.eligibility, "")
        batch.eligibility_at_creation = batch.eligibility
        batch.eligibility = InvoiceBatch.Eligibility.ELIGIBLE
        batch.sent_to_xero_at = timezone.now()
        batch.sent_to_xero_by = user
        batch.save(update_fields=["eligibility_at_creation", "eligibility", "sent_to_xero_at", "sent_to_xero_by"])
        invoices = list(
            Invoice.objects.select_for_update(of=("self",)).filter(batch=batch, sync_state=S.NOT_SYNCED).order_by("pk")
        )
        sync_state_update(
            Invoice.objects.filter(pk__in=[i.pk for i in invoices]),
            [S.NOT_SYNCED],
            S.PENDING,
            sync_errors=[],
            updated_at=timezone.now(),
        )
        # The batch's credit notes go with it (their allocations follow once both documents are in Xero).
        for note in CreditNote.objects.select_for_update(of=("self",)).filter(batch=batch, sync_state=S.NOT_SYNCED):
            credit_note_sync_state_set(note, S.PENDING, errors=[])
        InvoiceEvent.objects.bulk_create(
            [
                InvoiceEvent(
                    invoice=invoice,
                    organisation=organisation,
                    source=InvoiceEvent.Source.COORDINOTER,
                    kind="sent_to_xero",
                    message=f"Sent to Xero by {user} after review; the batch was {reason}."[:500],
                    actor=user,
                )
                for invoice in invoices
            ]
        )
        organisation_id = organisation.pk
        transaction.on_commit(lambda: _enqueue(organisation_id))
    logger.info(
        "invoices.batch.sent_to_xero",
        extra={
            "event": "invoices.batch.sent_to_xero",
            "organisation_id": organisation.pk,
            "batch_id": batch.pk,
            "invoices": len(invoices),
        },
    )
    return len(invoices)


def _enqueue(organisation_id: int) -> None:
    from invoices.services.push import push_enqueue_for_organisation

    push_enqueue_for_organisation(organisation_id=organisation_id)
