"""The push pipeline: pending invoices of one tenant become Xero invoices exactly once.

Public entry points (called by the UI): `push_enqueue_for_organisation` and `invoices_retry_failed`.
The engine behind them (dispatch, chunk send, limiter, sweeper) grows in this module.
"""

import logging

from django.db import transaction
from django.utils import timezone

from invoices.models import Invoice, InvoiceBatch, InvoiceEvent
from organisations.models import Organisation

logger = logging.getLogger(__name__)

S = Invoice.SyncState


def push_enqueue_for_organisation(*, organisation_id: int) -> None:
    """Ask a worker to push the organisation's pending invoices (after the current transaction commits)."""
    from invoices.tasks import push_organisation

    transaction.on_commit(lambda: push_organisation.delay(organisation_id=organisation_id))


@transaction.atomic
def invoices_retry_failed(*, organisation: Organisation, batch: InvoiceBatch, user,
                          invoice_ids: list[int] | None = None) -> int:
    """Failed invoices of the batch (or only `invoice_ids`) go back to pending; who retried is recorded."""
    qs = Invoice.objects.select_for_update().filter(organisation=organisation, batch=batch, sync_state=S.FAILED)
    if invoice_ids is not None:
        qs = qs.filter(pk__in=invoice_ids)
    invoices = list(qs.order_by("pk"))
    if not invoices:
        return 0
    now = timezone.now()
    for invoice in invoices:
        invoice.sync_state = S.PENDING
        invoice.sync_errors = []
        invoice.updated_at = now
    Invoice.objects.bulk_update(invoices, ["sync_state", "sync_errors", "updated_at"])
    InvoiceEvent.objects.bulk_create([
        InvoiceEvent(invoice=invoice, organisation=organisation, source=InvoiceEvent.Source.COORDINOTER,
                     kind="retried", message=f"Retry requested by {user}", actor=user)
        for invoice in invoices
    ])
    logger.info("push.retry_failed", extra={"organisation_id": organisation.pk, "batch_id": batch.pk,
                                            "count": len(invoices), "user_id": getattr(user, "pk", None)})
    push_enqueue_for_organisation(organisation_id=organisation.pk)
    return len(invoices)


def push_organisation_dispatch(*, organisation_id: int) -> int:
    """Fill the organisation's in-flight chunks (up to 5); returns how many chunks it created."""
    return 0
