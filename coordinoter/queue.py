"""The one enqueue gateway: every service queues background work through `enqueue` / `enqueue_on_commit`.

With a broker (REDIS_URL set) a task goes to Celery (`apply_async`) and real workers run it; beat runs the schedule.
Without one (`make run`, settings.TASKS_IN_PROCESS) one daemon thread of the process stands in for both: it holds a
heap of (due time, task, args, kwargs), runs each task when it is due, one at a time (SQLite has one writer), and
runs the beat schedule of coordinoter/celery.py at its intervals. A request never runs a task inline and never
waits on a retry: a task that must come back later queues itself again with a countdown, here as with Celery.

Tasks take ids, never model instances (habit 3), so the same arguments serialise to JSON for Celery.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.signals import request_started
from django.db import close_old_connections, transaction

from coordinoter.logging import request_id_var

logger = logging.getLogger(__name__)

# A longer wait (a tenant stopped for the day, a disconnect backing off) is taken in steps: the task wakes, finds it
# is early and queues itself again. Redis redelivers a message still unacknowledged after the broker's visibility
# timeout (1 h), and a countdown is held unacknowledged by the worker, so no countdown may come near it.
MAX_COUNTDOWN_SECONDS = 600.0


def in_process() -> bool:
    """True without a broker: tasks run on this process's runner thread. Read at call time (tests flip it)."""
    return bool(getattr(settings, "TASKS_IN_PROCESS", False))


def enqueue(
    task: Any,
    *,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    countdown: float | None = 0.0,
    retry: bool = True,
    fail_fast: bool = False,
) -> None:
    """Queue `task(*args, **kwargs)` to run after `countdown` seconds (capped at MAX_COUNTDOWN_SECONDS).

    With a broker, publishing may raise (broker down); callers that must not fail catch it. `retry=False` publishes
    once instead of retrying; `fail_fast=True` also uses a connection that gives up at once (kombu would otherwise
    retry connecting for about 6 s: too long for an answer Xero waits for). In process nothing raises.
    """
    seconds = min(MAX_COUNTDOWN_SECONDS, max(0.0, float(countdown or 0.0)))
    if in_process():
        runner.submit(task, args=tuple(args), kwargs=dict(kwargs or {}), countdown=seconds)
        return
    options: dict[str, Any] = {}
    if seconds:
        options["countdown"] = seconds
    if not retry or fail_fast:
        options["retry"] = False
    if fail_fast:
        options["connection"] = _fail_fast_connection()
    try:
        task.apply_async(args=tuple(args), kwargs=dict(kwargs or {}), **options)
    except Exception:
        if fail_fast:
            fail_fast_connection_drop()
        raise


def enqueue_on_commit(
    task: Any,
    *,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    countdown: float | None = 0.0,
) -> None:
    """`enqueue` once the current transaction commits (at once outside one); a rollback queues nothing."""
    args, kwargs = tuple(args), dict(kwargs or {})
    transaction.on_commit(lambda: enqueue(task, args=args, kwargs=kwargs, countdown=countdown))


# ---------------------------------------------------------------- with a broker: a publisher that fails fast

_publisher = threading.local()


def _fail_fast_connection():
    """A broker connection that gives up at once instead of retrying for seconds. One per thread and broker URL."""
    from celery import current_app

    url = current_app.conf.broker_write_url or current_app.conf.broker_url
    cached = getattr(_publisher, "connection", None)
    if cached is not None and cached[0] == url:
        return cached[1]
    options = {**(current_app.conf.broker_transport_options or {}), "max_retries": 0}
    connection = current_app.connection_for_write(url, connect_timeout=1, transport_options=options)
    _publisher.connection = (url, connection)
    return connection


def fail_fast_connection_drop() -> None:
    """Forget this thread's fail-fast connection (after a failure, or when a test points the broker elsewhere)."""
    cached = getattr(_publisher, "connection", None)
    _publisher.connection = None
    if cached is not None:
        with contextlib.suppress(Exception):  # it is being thrown away
            cached[1].release()


# ---------------------------------------------------------------- without a broker: the in-process runner


@dataclass(frozen=True)
class Queued:
    """One task the runner holds: `due` is on the runner's clock (time.monotonic())."""

    due: float
    task: str
    args: tuple
    kwargs: dict


@dataclass
class _Periodic:
    name: str  # the beat entry's name
    task: str  # the task's registered name
    every: float
    next_at: float


def _interval_seconds(schedule: Any) -> float | None:
    if isinstance(schedule, int | float):
        return float(schedule)
    if isinstance(schedule, dt.timedelta):
        return schedule.total_seconds()
    run_every = getattr(schedule, "run_every", None)  # celery.schedules.schedule
    return run_every.total_seconds() if isinstance(run_every, dt.timedelta) else None


class InProcessRunner:
    """The embedded stand-in for workers and beat: a heap of (due, task) run by one daemon thread, in due order."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._heap: list[tuple[float, int, Any, tuple, dict, str]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._periodic: list[_Periodic] | None = None

    # ------------------------------------------------------------ what callers use
    def submit(self, task: Any, *, args: tuple = (), kwargs: dict | None = None, countdown: float = 0.0) -> None:
        request_id = request_id_var.get()
        with self._wake:
            item = (self._clock() + countdown, next(self._order), task, tuple(args), dict(kwargs or {}), request_id)
            heapq.heappush(self._heap, item)
            self._start_locked()
            self._wake.notify()

    def ensure_started(self) -> None:
        """Start the thread (and so the beat schedule) if it is not running."""
        with self._wake:
            self._start_locked()

    def pending(self) -> list[Queued]:
        """What the runner holds, soonest first (support, tests)."""
        with self._wake:
            items = sorted(self._heap)
        return [Queued(due, getattr(task, "name", repr(task)), args, kwargs) for due, _, task, args, kwargs, _ in items]

    def now(self) -> float:
        return self._clock()

    def stop(self, timeout: float = 5.0) -> None:
        """Forget what is queued and end the thread (tests end each test's runner; the process ends it anyway)."""
        with self._wake:
            thread, self._thread = self._thread, None
            self._heap.clear()
            self._periodic = None
            self._wake.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    # ------------------------------------------------------------ the thread
    def _start_locked(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="tasks-in-process", daemon=True)
            self._thread.start()

    def _schedule(self) -> list[_Periodic]:
        """The beat schedule of coordinoter/celery.py, each entry first due one interval from now (as beat does)."""
        from coordinoter.celery import app

        now, entries = self._clock(), []
        for name, entry in (app.conf.beat_schedule or {}).items():
            every = _interval_seconds(entry.get("schedule"))
            if every is None or every <= 0:
                logger.warning(
                    "tasks.in_process.schedule_skipped",
                    extra={"event": "tasks.in_process.schedule_skipped", "entry": name},
                )
                continue
            entries.append(_Periodic(name=name, task=entry["task"], every=every, next_at=now + every))
        return entries

    def _next(self, me: threading.Thread) -> tuple[Any, tuple, dict, str] | None:
        """Wait for the next due task (queued or periodic); None once stopped."""
        with self._wake:
            while True:
                if self._thread is not me:
                    return None
                if self._periodic is None:
                    self._periodic = self._schedule()
                now = self._clock()
                if self._heap and self._heap[0][0] <= now:
                    _, _, task, args, kwargs, request_id = heapq.heappop(self._heap)
                    return task, args, kwargs, request_id
                periodic = min(self._periodic, key=lambda p: p.next_at, default=None)
                if periodic is not None and periodic.next_at <= now:
                    periodic.next_at = now + periodic.every
                    return _task_named(periodic.task), (), {}, "-"
                due = [self._heap[0][0]] if self._heap else []
                if periodic is not None:
                    due.append(periodic.next_at)
                self._wake.wait(timeout=(min(due) - now) if due else None)

    def _run(self) -> None:
        me = threading.current_thread()
        while True:
            picked = self._next(me)
            if picked is None:
                return
            task, args, kwargs, request_id = picked
            token = request_id_var.set(request_id)  # the id of the request that queued it, as across Celery
            try:
                close_old_connections()
                task.apply(args=args, kwargs=kwargs)
            except Exception:  # noqa: BLE001 - the runner must outlive one task's bug, like a worker does
                logger.exception(
                    "tasks.in_process.failed",
                    extra={"event": "tasks.in_process.failed", "task": getattr(task, "name", repr(task))},
                )
            finally:
                request_id_var.reset(token)
                close_old_connections()


def _task_named(name: str) -> Any:
    from celery import current_app

    if name not in current_app.tasks:
        current_app.loader.import_default_modules()  # autodiscovery, as a worker does at start
    return current_app.tasks[name]


runner = InProcessRunner()


def runner_stop() -> None:
    """End the in-process runner's thread and drop what it holds (between tests; never needed with a broker)."""
    runner.stop()


def _start_with_the_first_request(**_: Any) -> None:
    # Beat's schedule must run in `make run` even when nothing was queued yet; the first request served starts the
    # runner (the autoreloader's parent process and management commands serve none, so they never start it).
    if in_process():
        runner.ensure_started()


request_started.connect(_start_with_the_first_request, weak=False, dispatch_uid="coordinoter.queue.runner")
