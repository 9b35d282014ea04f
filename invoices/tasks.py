"""Thin tasks: load by id, call one service, reschedule when it says so. All run on the `xero` queue.

Nothing here sleeps: a service that must wait returns the wait, and the task queues itself again with that
countdown (`run_later`). Without a broker (the embedded `make run`) the same happens on a timer thread.
"""

import threading

from celery import current_app, shared_task
from django.db import connections

from invoices.services import push


@shared_task(acks_late=True, ignore_result=True)
def push_organisation(*, organisation_id: int) -> None:
    result = push.push_organisation_dispatch(organisation_id=organisation_id)
    if result.retry_in is not None:
        run_later(push_organisation, countdown=result.retry_in, organisation_id=organisation_id)


@shared_task(acks_late=True, ignore_result=True)
def push_chunk(*, chunk_id: int) -> None:
    result = push.push_chunk_send(chunk_id=chunk_id)
    if result.retry_in is not None:
        run_later(push_chunk, countdown=result.retry_in, chunk_id=chunk_id)


@shared_task(acks_late=True, ignore_result=True)
def push_sweep() -> None:
    push.push_sweep()


def run_later(task, *, countdown: float = 0.0, **kwargs) -> None:
    """Queue `task(**kwargs)` to run after `countdown` seconds."""
    countdown = max(0.0, float(countdown))
    if current_app.conf.task_always_eager:
        timer = threading.Timer(countdown, _run_in_thread, args=(task, kwargs))
        timer.daemon = True
        timer.start()
        return
    task.apply_async(kwargs=kwargs, countdown=countdown or None)


def _run_in_thread(task, kwargs: dict) -> None:
    try:
        task.apply(kwargs=kwargs)
    finally:
        connections.close_all()
