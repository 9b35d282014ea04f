"""Thin tasks: load by id, call one service, reschedule when it says so. All run on the `xero` queue.

Nothing here sleeps: a service that must wait returns the wait, and the task queues itself again with that
countdown through the one gateway (coordinoter/queue.py), on Celery with a broker or on the in-process runner
without one.
"""

from celery import shared_task

from coordinoter import queue
from invoices.services import push


@shared_task(acks_late=True, ignore_result=True)
def push_organisation(organisation_id: int) -> None:
    result = push.push_organisation_dispatch(organisation_id=organisation_id)
    if result.retry_in is not None:
        queue.enqueue(push_organisation, args=(organisation_id,), countdown=result.retry_in)


@shared_task(acks_late=True, ignore_result=True)
def push_chunk(chunk_id: int) -> None:
    result = push.push_chunk_send(chunk_id=chunk_id)
    if result.retry_in is not None:
        queue.enqueue(push_chunk, args=(chunk_id,), countdown=result.retry_in)


@shared_task(acks_late=True, ignore_result=True)
def push_sweep() -> None:
    push.push_sweep()


@shared_task(ignore_result=True)
def failure_digest_all() -> int:
    """Beat `failure-digest`: one digest per organisation with invoices that failed or need attention since its
    last one (invoices.services.digest)."""
    from invoices.services import digest

    sent = 0
    for organisation_id in digest.failure_digest_organisation_ids():
        sent += bool(digest.failure_digest_send(organisation_id=organisation_id))
    return sent
