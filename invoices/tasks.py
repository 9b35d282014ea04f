"""Thin tasks: load by id, call one service, reschedule when it says so. All run on the `xero` queue.

Nothing here sleeps: a service that must wait returns the wait, and the task queues itself again with that
countdown (`run_later`). Without a broker (the embedded `make run`) one background thread of the web process
runs the queued tasks in due order, one at a time (SQLite has one writer), and the sweeper every
PUSH_SWEEP_SECONDS, since beat does not run there.
"""

import heapq
import itertools
import logging
import threading
import time

from celery import current_app, shared_task
from django.conf import settings
from django.db import close_old_connections

from invoices.services import push

logger = logging.getLogger(__name__)

# A longer wait (a tenant stopped for the day) is taken in steps: the task wakes, finds it is early and queues
# itself again. Redis redelivers a message still unacknowledged after the broker's visibility timeout (1 h),
# so no countdown may come near it.
MAX_COUNTDOWN_SECONDS = 600.0


@shared_task(acks_late=True, ignore_result=True)
def push_organisation(organisation_id: int) -> None:
    result = push.push_organisation_dispatch(organisation_id=organisation_id)
    if result.retry_in is not None:
        run_later(push_organisation, organisation_id, countdown=result.retry_in)


@shared_task(acks_late=True, ignore_result=True)
def push_chunk(chunk_id: int) -> None:
    result = push.push_chunk_send(chunk_id=chunk_id)
    if result.retry_in is not None:
        run_later(push_chunk, chunk_id, countdown=result.retry_in)


@shared_task(acks_late=True, ignore_result=True)
def push_sweep() -> None:
    push.push_sweep()


def run_later(task, *args, countdown: float = 0.0) -> None:
    """Queue `task(*args)` (ids, like every task here) to run after `countdown` seconds."""
    countdown = min(MAX_COUNTDOWN_SECONDS, max(0.0, float(countdown)))
    if current_app.conf.task_always_eager:
        _local.submit(countdown, task, args)
        return
    task.apply_async(args=args, countdown=countdown or None)


class _LocalRunner:
    """The embedded stand-in for a worker and beat: a heap of (due, task) run by one daemon thread."""

    def __init__(self) -> None:
        self._heap: list = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def submit(self, countdown: float, task, args: tuple) -> None:
        with self._wake:
            heapq.heappush(self._heap, (time.monotonic() + countdown, next(self._order), task, args))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="push-local-runner", daemon=True)
                self._thread.start()
            self._wake.notify()

    def stop(self, timeout: float = 5.0) -> None:
        """Forget what is queued and end the thread (tests end each test's runner; the process ends it anyway)."""
        with self._wake:
            thread, self._thread = self._thread, None
            self._heap.clear()
            self._wake.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self) -> None:
        me = threading.current_thread()
        next_sweep = time.monotonic() + settings.PUSH_SWEEP_SECONDS
        while True:
            with self._wake:
                if self._thread is not me:
                    return  # stopped
                now = time.monotonic()
                due = self._heap[0][0] if self._heap else next_sweep
                if min(due, next_sweep) > now:
                    self._wake.wait(timeout=min(due, next_sweep) - now)
                    continue
                if self._heap and self._heap[0][0] <= now:
                    _, _, task, args = heapq.heappop(self._heap)
                else:
                    task, args, next_sweep = push_sweep, (), now + settings.PUSH_SWEEP_SECONDS
            try:
                close_old_connections()
                task.apply(args=args)
            except Exception:  # noqa: BLE001 - the runner must outlive one task's bug, like a worker does
                logger.exception(
                    "push.local_runner_failed", extra={"event": "push.local_runner_failed", "task": task.name}
                )


_local = _LocalRunner()


def local_runner_stop() -> None:
    """End the embedded runner's thread and drop what it holds (between tests; never needed with a broker)."""
    _local.stop()
