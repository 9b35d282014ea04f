"""Thin tasks of the two-way sync on the invoices side: send one stored change to Xero; sweep stuck ones.

Found by autodiscovery (coordinoter/celery.py searches each app for `xero_tasks`; invoices/tasks.py belongs to
the push pipeline). They run on the
`webhooks` queue with the rest of the two-way sync.
"""

from celery import shared_task

from coordinoter import queue
from invoices.services import outbound


@shared_task(acks_late=True, queue="webhooks", ignore_result=True)
def send_invoice_change(*, change_id: int) -> None:
    result = outbound.invoice_change_send(change_id=change_id)
    if result.retry_after is not None:
        # Never sleep to throttle: the same stored change (same Idempotency-Key) goes again later.
        queue.enqueue(send_invoice_change, kwargs={"change_id": change_id}, countdown=result.retry_after)


@shared_task(acks_late=True, queue="webhooks", ignore_result=True)
def sweep_invoice_changes() -> None:
    outbound.invoice_changes_sweep()
