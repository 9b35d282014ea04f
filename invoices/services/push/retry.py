import logging

from django.db import transaction
from django.utils import timezone

from invoices.models import Invoice, InvoiceBatch, InvoiceEvent
from invoices.outbound.chunks import chunks_settle
from invoices.services.push.dispatch import push_enqueue_for_organisation
from invoices.sync_states import sync_state_move
from organisations.models import Organisation

logger = logging.getLogger(__name__)

S = Invoice.SyncState


@transaction.atomic
def invoices_retry_failed(
    *, organisation: Organisation, batch: InvoiceBatch, user, invoice_ids: list[int] | None = None
) -> int:
    """Failed invoices of the batch (or only `invoice_ids`) go back to pending; who retried is recorded.

    A failed invoice was never created in Xero (Xero rejected it), so it goes out again in a new chunk with a
    new Idempotency-Key. Returns how many were retried.
    """
    qs = Invoice.objects.select_for_update().filter(
        organisation=organisation, batch=batch, sync_state__in=[S.FAILED, S.NEEDS_ATTENTION]
    )
    if invoice_ids is not None:
        qs = qs.filter(pk__in=invoice_ids)
    invoices = list(qs.order_by("pk"))
    if not invoices:
        return 0
    now = timezone.now()
    in_doubt = {invoice.chunk_id for invoice in invoices if invoice.sync_state == S.NEEDS_ATTENTION}
    for invoice in invoices:
        sync_state_move(invoice, S.PENDING)
        invoice.sync_errors = []
        invoice.updated_at = now
    Invoice.objects.bulk_update(invoices, ["sync_state", "sync_errors", "updated_at"])
    chunks_settle(organisation_id=organisation.pk, chunk_ids=in_doubt, reason=f"Its invoices were retried by {user}.")
    InvoiceEvent.objects.bulk_create(
        [
            InvoiceEvent(
                invoice=invoice,
                organisation=organisation,
                source=InvoiceEvent.Source.COORDINOTER,
                kind="retried",
                message=f"Retry requested by {user}",
                actor=user,
            )
            for invoice in invoices
        ]
    )
    logger.info(
        "push.retry_failed",
        extra={
            "event": "push.retry_failed",
            "organisation_id": organisation.pk,
            "batch_id": batch.pk,
            "count": len(invoices),
            "user_id": getattr(user, "pk", None),
        },
    )
    push_enqueue_for_organisation(organisation_id=organisation.pk)
    return len(invoices)
