"""coordinoter/prepared.py: a statement compiled once gives what the ORM gives, with each run's own values."""

import datetime as dt
from unittest import mock

import pytest
from django.db import connection, transaction
from django.db.models.sql.compiler import SQLCompiler
from django.db.transaction import TransactionManagementError
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from coordinoter.prepared import Bind, Prepared
from integrations.outbound.models import OutboundOperation
from invoices.models import Invoice
from tests.factories import make_connected_organisation, make_organisation

pytestmark = pytest.mark.django_db

S = Invoice.SyncState


def _operation(organisation, **fields) -> OutboundOperation:
    return OutboundOperation.objects.create(
        organisation=organisation,
        tenant_id="tenant",
        kind="invoice_chunk",
        payload={"Invoices": []},
        idempotency_key=f"key-{OutboundOperation.objects.count()}",
        **fields,
    )


def test_rows_come_back_as_the_orm_gives_them_with_each_runs_values():
    first, second = make_organisation(name="First"), make_organisation(name="Second")
    connection_first, _ = make_connected_organisation(organisation=first, invoices=1)
    one, two = _operation(first), _operation(second)
    statement = Prepared(
        lambda: OutboundOperation.objects.select_related("organisation__xero_connection").filter(pk=Bind("pk"))
    )

    [row] = statement.rows(pk=one.pk)
    [other] = statement.rows(pk=two.pk)

    assert (row.pk, row.idempotency_key, row.payload) == (one.pk, one.idempotency_key, {"Invoices": []})
    assert row.organisation.name == "First" and row.organisation.xero_connection.pk == connection_first.pk
    assert (other.pk, other.organisation.name) == (two.pk, "Second")
    assert list(statement.rows(pk=0)) == []


def test_a_statement_is_compiled_once():
    organisation = make_organisation()
    operation = _operation(organisation)
    statement = Prepared(lambda: OutboundOperation.objects.filter(pk=Bind("pk")).values_list("state", flat=True))
    assert list(statement.rows(pk=operation.pk)) == ["pending"]

    with mock.patch.object(SQLCompiler, "as_sql", side_effect=AssertionError("compiled again")):
        assert list(statement.rows(pk=operation.pk)) == ["pending"]


def test_many_ids_bind_as_a_list_and_an_empty_list_selects_nothing():
    organisation = make_organisation()
    _, batch = make_connected_organisation(organisation=organisation, invoices=3)
    ids = sorted(batch.invoices.values_list("pk", flat=True))
    statement = Prepared(
        lambda: (
            Invoice.objects.filter(pk__in=Bind("ids", many=True), sync_state=Bind("state"))
            .order_by("pk")
            .values_list("pk", "total")
        )
    )

    assert [pk for pk, _ in statement.rows(ids=ids[:2], state=S.PENDING)] == ids[:2]
    assert [str(total) for _, total in statement.rows(ids=ids, state=S.PENDING)] == ["110.00"] * 3
    assert list(statement.rows(ids=[], state=S.PENDING)) == []
    assert list(statement.rows(ids=ids, state=S.IN_FLIGHT)) == []


def test_an_update_sets_prepared_values_and_counts_what_it_matched():
    organisation = make_organisation()
    _, batch = make_connected_organisation(organisation=organisation, invoices=3)
    chunk = _operation(organisation)
    ids = sorted(batch.invoices.values_list("pk", flat=True))
    statement = Prepared(lambda: Invoice.objects.filter(pk__in=Bind("ids", many=True), sync_state__in=[S.PENDING]))
    now = timezone.now()

    moved = statement.update(
        {"sync_state": S.IN_FLIGHT, "chunk": chunk, "sync_errors": ["one", "ü"], "updated_at": now}, ids=ids[:2]
    )
    again = statement.update({"sync_state": S.IN_FLIGHT, "chunk": chunk, "sync_errors": [], "updated_at": now}, ids=ids)

    assert (moved, again) == (2, 1)
    rows = {invoice.pk: invoice for invoice in Invoice.objects.filter(pk__in=ids)}
    assert [rows[pk].sync_state for pk in ids] == [S.IN_FLIGHT] * 3
    assert [rows[pk].chunk_id for pk in ids] == [chunk.pk] * 3
    assert [rows[pk].sync_errors for pk in ids] == [["one", "ü"], ["one", "ü"], []]
    assert rows[ids[0]].updated_at == now


def test_an_update_compares_aware_datetimes_as_the_orm_does():
    organisation = make_organisation()
    now = timezone.now()
    due, later = (
        _operation(organisation, next_attempt_at=now),
        _operation(organisation, next_attempt_at=now + dt.timedelta(hours=1)),
    )
    statement = Prepared(lambda: OutboundOperation.objects.filter(pk=Bind("pk"), next_attempt_at__lte=Bind("now")))

    assert statement.update({"state": "sending"}, pk=due.pk, now=now) == 1
    assert statement.update({"state": "sending"}, pk=later.pk, now=now) == 0


def test_an_update_across_tables_is_refused():
    statement = Prepared(lambda: Invoice.objects.filter(batch__name=Bind("name")))
    with pytest.raises(ValueError, match="its own table alone"):
        statement.update({"sync_state": S.PENDING}, name="x")


@pytest.mark.django_db(transaction=True)
def test_a_locking_read_needs_a_transaction_at_every_run():
    organisation = make_organisation()
    operation = _operation(organisation)
    statement = Prepared(lambda: OutboundOperation.objects.select_for_update().filter(pk=Bind("pk")))
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        assert [row.pk for row in statement.rows(pk=operation.pk)] == [operation.pk]
    assert "FOR UPDATE" in queries.captured_queries[-1]["sql"]
    with pytest.raises(TransactionManagementError):
        list(statement.rows(pk=operation.pk))


def test_a_run_is_not_chained_and_a_missing_value_is_named():
    statement = Prepared(lambda: OutboundOperation.objects.filter(pk=Bind("pk")))
    with pytest.raises(TypeError, match="iterate it"):
        statement.rows(pk=1).filter(state="done")
    with pytest.raises(TypeError, match="'pk'"):
        list(statement.rows())
