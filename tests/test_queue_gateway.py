"""coordinoter/queue.py, the one enqueue gateway: Celery with a broker, one in-process runner without one."""

import ast
import threading
import time
from pathlib import Path

import pytest
from django.db import transaction

from coordinoter import queue
from coordinoter.celery import app
from tests.conftest import Enqueued

ROOT = Path(__file__).resolve().parents[1]
GATEWAY = ROOT / "coordinoter" / "queue.py"
PUBLISHING = {"delay", "apply_async"}


def publishing_calls(source: str) -> list[int]:
    """Lines that call `<anything>.delay(...)` or `<anything>.apply_async(...)`."""
    return [
        node.lineno
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in PUBLISHING
    ]


def product_files() -> list[Path]:
    skipped = {".venv", "tests", "node_modules", ".git"}
    return [
        path
        for path in ROOT.rglob("*.py")
        if not skipped.intersection(path.relative_to(ROOT).parts) and path != GATEWAY
    ]


def test_no_product_code_publishes_a_task_when_outside_the_gateway():
    assert publishing_calls("push_chunk.apply_async((1,), countdown=3)\nx.delay(1)\n") == [1, 2]  # it can fail
    files = product_files()
    assert ROOT / "integrations" / "services" / "connection.py" in files
    offenders = {str(path.relative_to(ROOT)): lines for path in files if (lines := publishing_calls(path.read_text()))}
    assert offenders == {}, "queue through coordinoter.queue.enqueue / enqueue_on_commit"


# ---------------------------------------------------------------- with a broker


def test_enqueue_publishes_ids_with_the_countdown_when_a_broker_is_set(enqueued):
    from integrations.outbound.tasks import run_operation

    queue.enqueue(run_operation, args=(7,), countdown=30)
    assert enqueued == [Enqueued("integrations.outbound.tasks.run_operation", (7,), {}, 30.0)]


def test_countdown_is_capped_below_the_brokers_visibility_timeout_when_long(enqueued):
    from invoices.tasks import push_chunk

    queue.enqueue(push_chunk, args=(7,), countdown=86400)
    assert enqueued == [Enqueued("invoices.tasks.push_chunk", (7,), {}, queue.MAX_COUNTDOWN_SECONDS)]


def test_fail_fast_publishes_once_on_a_connection_that_gives_up_when_asked(enqueued):
    from integrations.webhooks.tasks import process_webhook_inbox

    queue.enqueue(process_webhook_inbox, kwargs={"organisation_id": 3}, fail_fast=True)
    (published,) = enqueued
    assert published.kwargs == {"organisation_id": 3}
    assert published.options["retry"] is False
    assert published.options["connection"].transport_options["max_retries"] == 0
    queue.fail_fast_connection_drop()


@pytest.mark.django_db
def test_enqueue_on_commit_queues_nothing_when_the_transaction_rolls_back(enqueued, django_capture_on_commit_callbacks):
    from invoices.tasks import push_organisation

    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            queue.enqueue_on_commit(push_organisation, args=(1,))
            transaction.set_rollback(True)
        with transaction.atomic():
            queue.enqueue_on_commit(push_organisation, args=(2,), countdown=5)
    assert [(item.args, item.countdown) for item in enqueued] == [((2,), 5.0)]


# ---------------------------------------------------------------- without a broker: the in-process runner


class FakeTask:
    def __init__(self, name, calls):
        self.name, self.calls = name, calls

    def apply(self, args=(), kwargs=None):
        self.calls.append((self.name, args, kwargs, threading.get_ident()))


def wait_for(condition, seconds=5.0):
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return condition()


@pytest.fixture
def beat_schedule():
    """Set the beat schedule for one test (celery's conf is not monkeypatch-friendly), then put it back."""
    previous = app.conf.beat_schedule

    def use(schedule):
        app.conf.beat_schedule = schedule

    yield use
    app.conf.beat_schedule = previous


@pytest.fixture
def no_beat(beat_schedule):
    beat_schedule({})


def test_tasks_run_on_one_thread_in_due_order_when_in_process(settings, no_beat):
    settings.TASKS_IN_PROCESS = True
    calls = []
    queue.enqueue(FakeTask("late", calls), args=(1,), countdown=0.3)
    queue.enqueue(FakeTask("soon", calls), kwargs={"change_id": 2})
    assert wait_for(lambda: len(calls) == 2)
    assert [(name, args, kwargs) for name, args, kwargs, _ in calls] == [
        ("soon", (), {"change_id": 2}),
        ("late", (1,), {}),
    ]
    assert len({thread for *_, thread in calls}) == 1
    assert threading.get_ident() not in {thread for *_, thread in calls}  # never the caller's thread


def test_enqueue_returns_at_once_and_the_runner_holds_the_task_until_due_when_in_process(settings, no_beat):
    settings.TASKS_IN_PROCESS = True
    calls = []
    started = time.monotonic()
    queue.enqueue(FakeTask("later", calls), args=(5,), countdown=120)
    assert time.monotonic() - started < 0.1
    (held,) = queue.runner.pending()
    assert (held.task, held.args) == ("later", (5,))
    assert 119 < held.due - queue.runner.now() <= 120
    assert calls == []


def test_stop_ends_the_thread_and_drops_what_it_holds_when_asked(settings, no_beat):
    settings.TASKS_IN_PROCESS = True
    calls = []
    queue.enqueue(FakeTask("never", calls), countdown=60)
    thread = queue.runner._thread
    queue.runner_stop()
    assert not thread.is_alive()
    assert queue.runner.pending() == [] and calls == []


def test_beat_jobs_run_at_their_intervals_when_in_process(settings, monkeypatch, beat_schedule):
    settings.TASKS_IN_PROCESS = True
    calls = []
    beat_schedule({"tick": {"task": "tests.tick", "schedule": 0.2}})
    monkeypatch.setattr(queue, "_task_named", lambda name: FakeTask(name, calls))
    started = time.monotonic()
    queue.runner.ensure_started()
    assert wait_for(lambda: len(calls) >= 3)
    assert time.monotonic() - started >= 0.55  # first due one interval after start, as beat does
    assert {name for name, *_ in calls} == {"tests.tick"}


def test_every_beat_entry_is_run_by_the_runner_when_in_process():
    runner = queue.InProcessRunner()
    schedule = runner._schedule()
    assert {entry.name for entry in schedule} == set(app.conf.beat_schedule)
    assert {entry.name for entry in schedule} >= {
        "push-sweep",
        "xero-webhook-sweep",
        "outbound-sweep",
        "xero-housekeeping",
        "xero-reconcile",
        "xero-keepalive",
    }
    for entry in schedule:
        assert queue._task_named(entry.task).name == entry.task  # registered (autodiscovery, no CELERY_IMPORTS)
        assert entry.every > 0


@pytest.mark.django_db
def test_the_first_request_starts_the_runner_when_in_process(embedded_mode, client, no_beat):
    assert queue.runner._thread is None or not queue.runner._thread.is_alive()
    client.get("/healthz")
    assert queue.runner._thread is not None and queue.runner._thread.is_alive()


@pytest.mark.django_db
def test_no_request_starts_the_runner_when_a_broker_is_set(settings, client):
    settings.TASKS_IN_PROCESS = False
    client.get("/healthz")
    assert queue.runner._thread is None or not queue.runner._thread.is_alive()
