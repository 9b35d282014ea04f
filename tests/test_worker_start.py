"""coordinoter/worker_start.py: a worker compiles the prepared statements before its pool forks, and each child
connects before its first task; what cannot be reached is left to that task, and the worker still starts."""

import logging
import weakref
from unittest import mock

import pytest
from celery.signals import worker_init, worker_process_init
from django.db import connection, transaction
from django.db.models.sql.compiler import SQLCompiler

from coordinoter import prepared, worker_start
from coordinoter.celery import app
from integrations.outbound.models import OutboundOperation
from tests.factories import make_organisation

pytestmark = pytest.mark.django_db(transaction=True)  # the handlers close and open the connection


def _receivers(signal) -> list:
    return [r() if isinstance(r, weakref.ReferenceType) else r for _, r in signal.receivers]


def test_the_handlers_are_connected_to_the_worker_signals():
    assert worker_start.statements_compile in _receivers(worker_init)
    assert worker_start.connections_open in _receivers(worker_process_init)


def test_before_the_fork_every_statement_is_compiled_and_the_connection_closed():
    statement = prepared.Prepared(
        lambda: OutboundOperation.objects.select_for_update().filter(pk=prepared.Bind("pk")).values_list("state")
    )
    connection.ensure_connection()
    try:
        worker_start.statements_compile()
        assert connection.connection is None  # no child shares the parent's socket

        operation = OutboundOperation.objects.create(
            organisation=make_organisation(), tenant_id="t", kind="invoice_chunk", payload={}, idempotency_key="k"
        )
        with (
            mock.patch.object(SQLCompiler, "as_sql", side_effect=AssertionError("compiled at the first run")),
            transaction.atomic(),
        ):
            assert list(statement.rows(pk=operation.pk)) == [("pending",)]
    finally:
        prepared._STATEMENTS.remove(statement)


def test_a_database_that_cannot_be_reached_leaves_compiling_to_the_first_run(caplog):
    statement = prepared.Prepared(lambda: OutboundOperation.objects.filter(pk=prepared.Bind("pk")))
    try:
        with (
            mock.patch.object(prepared, "prepared_compile_all", side_effect=prepared.transaction.DatabaseError("down")),
            caplog.at_level(logging.WARNING, logger="coordinoter.worker_start"),
        ):
            worker_start.statements_compile()
        assert [r.getMessage() for r in caplog.records] == ["worker.compile_deferred"]
        assert statement._select is None
    finally:
        prepared._STATEMENTS.remove(statement)


def test_a_child_opens_its_connections_before_its_first_task(caplog):
    connection.close()
    with (
        mock.patch.object(app, "producer_or_acquire", wraps=app.producer_or_acquire) as acquired,
        caplog.at_level(logging.WARNING, logger="coordinoter.worker_start"),
    ):
        worker_start.connections_open()
    assert connection.connection is not None
    assert acquired.called
    assert caplog.records == []


def test_a_broker_that_is_down_is_reported_and_the_child_still_starts(caplog, monkeypatch):
    monkeypatch.setattr(app.conf, "broker_url", "redis://127.0.0.1:1/0")
    # Pools for the dead URL; the suite's own come back after.
    monkeypatch.setattr(app, "_pool", None)
    monkeypatch.setattr(app.amqp, "_producer_pool", None)
    with caplog.at_level(logging.WARNING, logger="coordinoter.worker_start"):
        worker_start.connections_open()
    deferred = [r for r in caplog.records if r.getMessage() == "worker.connect_deferred"]
    assert [r.service for r in deferred] == ["broker"]
    assert connection.connection is not None
