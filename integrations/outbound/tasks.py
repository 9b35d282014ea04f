"""Thin tasks of the outbound engine: run one operation (rescheduling itself when told to wait), and the sweep."""

from celery import shared_task

from integrations.outbound import engine

# A longer wait is taken in steps (Redis redelivers an unacknowledged message after its visibility timeout).
MAX_COUNTDOWN_SECONDS = 600.0


@shared_task(acks_late=True, queue="xero", ignore_result=True)
def run_operation(operation_id: int) -> None:
    result = engine.operation_run(operation_id=operation_id)
    if result.retry_in is not None:
        countdown = min(MAX_COUNTDOWN_SECONDS, max(0.0, result.retry_in))
        run_operation.apply_async(args=(operation_id,), countdown=countdown or None)


@shared_task(acks_late=True, queue="xero", ignore_result=True)
def sweep_operations() -> None:
    engine.operations_sweep()
