"""Race tests for the claims: two workers at once, one winner, no invoice in two chunks, no chunk sent twice."""

import threading

import pytest
import responses
from django.db import connections

from integrations.models import XeroConnection
from integrations.outbound.models import OutboundAttempt
from invoices.models import Invoice
from invoices.outbound.chunks import CHUNK_KIND
from invoices.services.push import push_chunk_send
from invoices.services.push.common import chunks
from invoices.services.push.dispatch import push_chunks_create
from tests.factories import echo_invoices, make_connected_organisation
from tests.invoices.conftest import INVOICES_URL

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("push_settings")]


def race(target, workers: int = 2) -> list:
    barrier = threading.Barrier(workers)
    results, errors = [], []

    def run():
        try:
            barrier.wait()
            results.append(target())
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, errors
    return results


def test_two_workers_claiming_at_once_never_put_an_invoice_in_two_chunks(org_a, enqueued):
    make_connected_organisation(organisation=org_a, invoices=120)
    tenant = XeroConnection.objects.get(organisation=org_a).tenant_id
    mapping = org_a.xero_mapping
    results = race(
        lambda: push_chunks_create(organisation_id=org_a.pk, tenant_id=tenant, mapping=mapping, max_chunks=2), workers=4
    )
    # A tenant's chunks are built one at a time: 50, 50 and 20, however the workers interleave.
    assert sum(len(ids) for ids in results) == chunks().count() == 3
    assert all(len(chunk.payload["Invoices"]) <= 50 for chunk in chunks())
    carried = [e["InvoiceNumber"] for chunk in chunks() for e in chunk.payload["Invoices"]]
    assert len(carried) == len(set(carried)) == 120
    for chunk in chunks():
        assert set(chunk.invoices.values_list("number", flat=True)) == {
            e["InvoiceNumber"] for e in chunk.payload["Invoices"]
        }
    assert set(Invoice.objects.values_list("sync_state", flat=True)) == {Invoice.SyncState.IN_FLIGHT}


def test_never_more_than_five_chunks_in_flight_however_many_dispatchers_race(org_a, enqueued):
    make_connected_organisation(organisation=org_a, invoices=600)
    tenant = XeroConnection.objects.get(organisation=org_a).tenant_id
    mapping = org_a.xero_mapping
    race(
        lambda: push_chunks_create(organisation_id=org_a.pk, tenant_id=tenant, mapping=mapping, max_chunks=5), workers=4
    )
    assert chunks().count() == 5


def test_two_workers_sending_the_same_chunk_make_one_call(org_a, enqueued):
    make_connected_organisation(organisation=org_a, invoices=3)
    tenant = XeroConnection.objects.get(organisation=org_a).tenant_id
    [chunk_id] = push_chunks_create(
        organisation_id=org_a.pk, tenant_id=tenant, mapping=org_a.xero_mapping, max_chunks=1
    )
    with responses.RequestsMock(assert_all_requests_are_fired=False) as xero:
        xero.add_callback(responses.PUT, INVOICES_URL, callback=echo_invoices)
        outcomes = sorted(r.state for r in race(lambda: push_chunk_send(chunk_id=chunk_id), workers=3))
        puts = [c for c in xero.calls if c.request.method == "PUT"]
    assert len(puts) == 1
    assert outcomes.count("done") == 1 and set(outcomes) <= {"done", "busy", "noop"}
    assert OutboundAttempt.objects.filter(operation__kind=CHUNK_KIND).count() == 1
    assert set(Invoice.objects.values_list("sync_state", flat=True)) == {Invoice.SyncState.SYNCED}


def test_a_builder_that_loses_the_last_slot_leaves_no_partial_chunk_behind(org_a, enqueued, monkeypatch):
    """Two workers refill a tenant's last free slot at once while 80 invoices wait. The tenant's chunks are built one
    at a time (counted, then claimed, under the tenant's organisation row), so the slot gets a chunk of 50 and the
    other worker builds nothing. Before, both claimed invoices first (SKIP LOCKED): the second took the 30 the first
    had not locked, won the count and sent a chunk of 30 while the first's 50 were dropped (seen as 11 chunks for
    500 invoices in tests/reliability/test_push_live.py)."""
    from integrations.outbound.models import OutboundOperation
    from invoices.services.push import dispatch
    from invoices.services.push.dispatch import push_organisation_dispatch

    make_connected_organisation(organisation=org_a, invoices=330)
    push_organisation_dispatch(organisation_id=org_a.pk)  # five chunks of 50 in flight, 80 invoices waiting
    OutboundOperation.objects.filter(pk=chunks().order_by("pk").first().pk).update(state="done")  # one slot free
    before = set(chunks().values_list("pk", flat=True))
    tenant = XeroConnection.objects.get(organisation=org_a).tenant_id
    mapping = org_a.xero_mapping
    real_map = dispatch.mappers.invoice_to_xero_payload
    first_building, release = threading.Event(), threading.Event()
    builder = {}

    def slow_map(*args, **kwargs):
        if threading.current_thread().name == "first":
            first_building.set()
            release.wait(10)
        return real_map(*args, **kwargs)

    monkeypatch.setattr(dispatch.mappers, "invoice_to_xero_payload", slow_map)

    def build(name):
        try:
            builder[name] = push_chunks_create(
                organisation_id=org_a.pk, tenant_id=tenant, mapping=mapping, max_chunks=1
            )
        finally:
            connections.close_all()

    first = threading.Thread(target=build, args=("first",), name="first")
    first.start()
    assert first_building.wait(10)
    second = threading.Thread(target=build, args=("second",), name="second")
    second.start()
    second.join(1)  # it waits for the tenant's row now; before, it built its chunk meanwhile
    release.set()
    first.join(10)
    second.join(10)
    built = chunks().exclude(pk__in=before)
    assert [len(chunk.payload["Invoices"]) for chunk in built] == [50]
    assert (builder["first"], builder["second"]) == ([built.get().pk], [])
    assert Invoice.objects.filter(organisation=org_a, sync_state=Invoice.SyncState.PENDING).count() == 30
