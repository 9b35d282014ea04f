"""The push pipeline with Xero mocked by `responses`: every path of a chunk, claims, retries."""

from unittest import mock

import pytest

from invoices.models import Invoice, InvoiceBatch, InvoiceEvent
from invoices.services.push import invoices_retry_failed
from tests.factories import make_batch

S = Invoice.SyncState
pytestmark = pytest.mark.django_db(transaction=True)


def test_retry_failed_records_the_actor_and_enqueues_when_invoices_failed(org_a, accountant_a):
    batch = make_batch(organisation=org_a, invoices=3, eligibility=InvoiceBatch.Eligibility.ELIGIBLE,
                       sync_state=S.FAILED)
    one, two, three = batch.invoices.order_by("pk")
    Invoice.objects.filter(pk=three.pk).update(sync_state=S.SYNCED)
    Invoice.objects.filter(pk=one.pk).update(sync_errors=["Account code is not valid"])
    with mock.patch("invoices.tasks.push_organisation.delay") as delay:
        count = invoices_retry_failed(organisation=org_a, batch=batch, user=accountant_a)
    assert count == 2
    delay.assert_called_once_with(organisation_id=org_a.pk)
    one.refresh_from_db()
    assert one.sync_state == S.PENDING and one.sync_errors == []
    events = InvoiceEvent.objects.filter(kind="retried")
    assert {e.invoice_id for e in events} == {one.pk, two.pk}
    assert all(e.actor_id == accountant_a.pk for e in events)


def test_retry_failed_touches_only_the_given_ids_when_ids_given(org_a, accountant_a):
    batch = make_batch(organisation=org_a, invoices=2, eligibility=InvoiceBatch.Eligibility.ELIGIBLE,
                       sync_state=S.FAILED)
    one, two = batch.invoices.order_by("pk")
    with mock.patch("invoices.tasks.push_organisation.delay"):
        assert invoices_retry_failed(organisation=org_a, batch=batch, user=accountant_a,
                                     invoice_ids=[two.pk]) == 1
    one.refresh_from_db()
    assert one.sync_state == S.FAILED


def test_retry_failed_ignores_another_organisations_invoices(org_a, org_b, accountant_a):
    batch = make_batch(organisation=org_b, invoices=1, eligibility=InvoiceBatch.Eligibility.ELIGIBLE,
                       sync_state=S.FAILED)
    with mock.patch("invoices.tasks.push_organisation.delay") as delay:
        assert invoices_retry_failed(organisation=org_a, batch=batch, user=accountant_a) == 0
    delay.assert_not_called()
