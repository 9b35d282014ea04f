"""A worker keeps its database connection between tasks (coordinoter/task_db.py, CELERY_DB_REUSE_MAX): Celery's
Django fix-up, as a worker runs it around each task, no longer closes a healthy connection; one past CONN_MAX_AGE, or
one that saw an error and no longer answers, is closed as Django closes it after a request."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from celery.fixups.django import DjangoWorkerFixup
from celery.signals import task_postrun, task_prerun
from django.db import connection

from coordinoter.celery import app

pytestmark = pytest.mark.django_db(transaction=True)


class _Task:
    def __init__(self, *, eager: bool) -> None:
        self.request = SimpleNamespace(is_eager=eager)


def _run_as_worker(fixup: DjangoWorkerFixup, *, eager: bool = False) -> None:
    """What a worker does around one task: the fix-up's hooks and the signals' receivers (ours among them)."""
    task = _Task(eager=eager)
    fixup.on_task_prerun(sender=task)
    task_prerun.send(sender=task, task_id="t", task=task, args=(), kwargs={})
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    fixup.on_task_postrun(sender=task)
    task_postrun.send(sender=task, task_id="t", task=task, args=(), kwargs={})


@pytest.fixture
def fixup():
    fixup = DjangoWorkerFixup(app)
    yield fixup
    connection.close()


def test_a_worker_keeps_its_connection_from_one_task_to_the_next(fixup):
    connection.ensure_connection()
    opened = connection.connection
    for _ in range(5):
        _run_as_worker(fixup)
    assert connection.connection is opened


def test_a_connection_older_than_conn_max_age_is_closed_after_a_task(fixup):
    connection.ensure_connection()
    opened = connection.connection
    connection.close_at = time.monotonic() - 1  # as if CONN_MAX_AGE had passed
    _run_as_worker(fixup)
    assert connection.connection is not opened  # closed, and the next task's first query opened a new one


def test_a_connection_that_saw_an_error_and_no_longer_answers_is_replaced(fixup):
    connection.ensure_connection()
    opened = connection.connection
    opened.close()  # the server went away under it
    connection.errors_occurred = True
    _run_as_worker(fixup)
    assert connection.connection is not opened
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)
