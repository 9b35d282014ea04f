"""Thin tasks for the webhook inbox and reconciliation: load by id, call one service, reschedule on a rate limit.

They run on the `webhooks` queue, so a big invoice push on `xero` never holds back what comes in from Xero. The
reconciliation fan-out and its passes run on `default` with the other background work (keep-alive, connection
checks): a page of 500 passes is never queued in front of a webhook or a person's edit (issue 15).
"""

from celery import shared_task
from django.conf import settings

from coordinoter import queue
from integrations.services import reconcile_cadence
from integrations.services import reconciliation as reconciliation_services
from integrations.webhooks import process, record, sweep


# Named as they were in integrations/webhook_tasks.py: queued messages and beat entries keep working.
@shared_task(
    name="integrations.webhook_tasks.process_webhook_inbox",
    bind=True,
    acks_late=True,
    queue="webhooks",
    ignore_result=True,
)
def process_webhook_inbox(self, *, organisation_id: int) -> None:
    result = process.webhook_inbox_process(organisation_id=organisation_id)
    if result.retry_after is not None:
        # Never sleep to throttle: come back when Xero (or the limiter) says to.
        record.webhook_processing_enqueue(organisation_ids=[organisation_id], countdown=result.retry_after)


@shared_task(
    name="integrations.webhook_tasks.sweep_webhook_inbox", acks_late=True, queue="webhooks", ignore_result=True
)
def sweep_webhook_inbox() -> None:
    sweep.webhook_inbox_sweep()
    sweep.webhook_events_purge()
    reconcile_cadence.webhook_gaps_overdue()


@shared_task(name="integrations.webhook_tasks.reconcile_all", acks_late=True, queue="default", ignore_result=True)
def reconcile_all() -> int:
    """Every XERO_RECONCILE_EVERY_SECONDS (beat): one page of due tenants, their passes spread over the interval."""
    due = reconciliation_services.reconciliation_organisation_ids()
    spacing = settings.XERO_RECONCILE_EVERY_SECONDS / max(1, len(due))
    for position, organisation_id in enumerate(due):
        queue.enqueue(reconcile_organisation, kwargs={"organisation_id": organisation_id}, countdown=position * spacing)
    return len(due)


@shared_task(
    name="integrations.webhook_tasks.reconcile_organisation",
    bind=True,
    acks_late=True,
    queue="default",
    ignore_result=True,
)
def reconcile_organisation(self, *, organisation_id: int) -> None:
    result = reconciliation_services.reconciliation_run(organisation_id=organisation_id)
    if result.retry_after is not None:
        queue.enqueue(reconcile_organisation, kwargs={"organisation_id": organisation_id}, countdown=result.retry_after)
    elif result.goes_on:
        queue.enqueue(reconcile_organisation, kwargs={"organisation_id": organisation_id}, countdown=1)
