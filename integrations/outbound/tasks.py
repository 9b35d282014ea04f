"""Thin tasks of the outbound engine: run one operation (rescheduling itself when told to wait), and the sweep."""

from celery import shared_task

from coordinoter import queue
from integrations.outbound import engine


# On the `webhooks` queue with the rest of the two-way sync: a person waiting on an edit or a void is never queued
# behind a big push on `xero`.
@shared_task(acks_late=True, queue="webhooks", ignore_result=True)
def run_operation(operation_id: int) -> None:
    result = engine.operation_run(operation_id=operation_id)
    if result.retry_in is not None:
        # Never sleep: the same stored operation (same Idempotency-Key) goes again later.
        queue.enqueue(run_operation, args=(operation_id,), countdown=result.retry_in)


@shared_task(acks_late=True, queue="webhooks", ignore_result=True)
def sweep_operations() -> None:
    engine.operations_sweep()
