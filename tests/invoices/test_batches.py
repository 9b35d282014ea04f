from decimal import Decimal
from unittest import mock

import pytest

from invoices.models import Customer, Invoice, InvoiceBatch, InvoiceEvent, InvoiceLine, XeroMapping
from invoices.services.batches.create import batch_create
from invoices.services.batches.inputs import BatchInvalid
from invoices.services.batches.numbering import invoice_numbers_suggest
from tests.factories import (
    chart_read_from_xero,
    make_batch,
    make_connection,
    make_customer,
    make_invoice_input,
    make_line_input,
)

pytestmark = pytest.mark.django_db

S = Invoice.SyncState
E = InvoiceBatch.Eligibility


def create(org, user=None, invoices=None, name="November services", source="form"):
    return batch_create(
        organisation=org, user=user, name=name, invoices=invoices or [make_invoice_input()], source=source
    )


# ---------------------------------------------------------------- eligibility


def test_batch_is_not_synced_when_xero_never_connected(org_a, admin_a, enqueued, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        batch = create(org_a, admin_a)
    assert batch.eligibility == E.BEFORE_CONNECTION
    assert list(batch.invoices.values_list("sync_state", flat=True)) == [S.NOT_SYNCED]
    assert enqueued == []


def test_invoices_start_pending_and_push_is_enqueued_on_commit_when_connected(
    org_a, admin_a, enqueued, django_capture_on_commit_callbacks
):
    make_connection(organisation=org_a)
    with django_capture_on_commit_callbacks(execute=True):
        batch = create(org_a, admin_a, invoices=[make_invoice_input("INV-1"), make_invoice_input("INV-2")])
        assert enqueued == []  # nothing leaves before the commit
    assert batch.eligibility == E.ELIGIBLE
    assert set(batch.invoices.values_list("sync_state", flat=True)) == {S.PENDING}
    assert [(e.name, e.args) for e in enqueued] == [("invoices.tasks.push_organisation", (org_a.pk,))]


def test_batch_is_not_synced_when_created_while_disconnected(
    org_a, admin_a, enqueued, django_capture_on_commit_callbacks
):
    make_connection(organisation=org_a, status="disconnected")
    with django_capture_on_commit_callbacks(execute=True):
        batch = create(org_a, admin_a)
    assert batch.eligibility == E.WHILE_DISCONNECTED
    assert batch.invoices.get().sync_state == S.NOT_SYNCED
    assert enqueued == []


def test_batch_is_not_synced_when_created_after_xero_revoked_the_connection(org_a, admin_a, enqueued):
    make_connection(organisation=org_a, status="revoked_in_xero")
    assert create(org_a, admin_a).eligibility == E.WHILE_DISCONNECTED


def test_batch_waits_to_sync_when_connection_needs_reconnect(
    org_a, admin_a, enqueued, django_capture_on_commit_callbacks
):
    make_connection(organisation=org_a, status="needs_reconnect")
    with django_capture_on_commit_callbacks(execute=True):
        batch = create(org_a, admin_a)
    assert batch.eligibility == E.ELIGIBLE
    assert batch.invoices.get().sync_state == S.PENDING


def test_eligibility_stays_as_decided_when_xero_connects_later(org_a, admin_a, enqueued):
    batch = create(org_a, admin_a)
    make_connection(organisation=org_a)
    batch.refresh_from_db()
    assert batch.eligibility == E.BEFORE_CONNECTION
    assert batch.invoices.get().sync_state == S.NOT_SYNCED


# ---------------------------------------------------------------- customers, numbers, totals, history


def test_customer_is_matched_ignoring_case_when_it_exists(org_a, admin_a):
    existing = make_customer(organisation=org_a, name="Harbour View Aged Care")
    create(
        org_a,
        admin_a,
        invoices=[
            make_invoice_input("INV-1", customer="harbour view AGED care"),
            make_invoice_input("INV-2", customer="New Clinic", customer_email="ap@new.test"),
        ],
    )
    assert Invoice.objects.get(number="INV-1").customer == existing
    new = Customer.objects.get(organisation=org_a, name="New Clinic")
    assert new.email == "ap@new.test"
    assert Customer.objects.filter(organisation=org_a).count() == 2


def test_customer_is_not_shared_when_another_organisation_has_the_same_name(org_a, org_b, admin_a):
    theirs = make_customer(organisation=org_b, name="Harbour View")
    create(org_a, admin_a)
    mine = Invoice.objects.get(organisation=org_a).customer
    assert mine != theirs and mine.organisation == org_a


def test_batch_is_refused_when_number_is_used_in_the_organisation(org_a, admin_a):
    make_batch(organisation=org_a)
    taken = Invoice.objects.get(organisation=org_a).number
    with pytest.raises(BatchInvalid) as caught:
        create(org_a, admin_a, invoices=[make_invoice_input("INV-NEW"), make_invoice_input(taken.lower())])
    (problem,) = caught.value.problems
    assert problem.index == 1 and problem.field == "number"
    assert "already used" in problem.message
    assert InvoiceBatch.objects.filter(organisation=org_a).count() == 1


def test_number_is_accepted_when_only_another_organisation_uses_it(org_a, org_b, admin_a):
    make_batch(organisation=org_b)
    theirs = Invoice.objects.get(organisation=org_b).number
    create(org_a, admin_a, invoices=[make_invoice_input(theirs)])
    assert Invoice.objects.filter(number=theirs).count() == 2


def test_batch_is_refused_when_number_repeats_within_it(org_a, admin_a):
    with pytest.raises(BatchInvalid) as caught:
        create(org_a, admin_a, invoices=[make_invoice_input("INV-7"), make_invoice_input("inv-7")])
    assert [p.index for p in caught.value.problems] == [1]


def test_nothing_is_written_when_any_invoice_is_bad(org_a, admin_a):
    import datetime as dt

    bad = make_invoice_input("INV-2", due_date=dt.date(2026, 10, 1), currency="dollars", lines=[])
    with pytest.raises(BatchInvalid) as caught:
        create(org_a, admin_a, invoices=[make_invoice_input("INV-1"), bad])
    assert {p.field for p in caught.value.problems} == {"due_date", "currency", "lines"}
    assert not InvoiceBatch.objects.exists() and not Invoice.objects.exists() and not Customer.objects.exists()


def test_nothing_is_half_written_when_insert_fails_midway(org_a, admin_a):
    with (
        mock.patch("invoices.services.batches.documents.InvoiceEvent.objects.bulk_create", side_effect=RuntimeError),
        pytest.raises(RuntimeError),
    ):
        create(org_a, admin_a, invoices=[make_invoice_input("INV-1"), make_invoice_input("INV-2")])
    assert not InvoiceBatch.objects.exists() and not Invoice.objects.exists() and not InvoiceLine.objects.exists()


def test_batch_is_refused_when_name_is_blank(org_a, admin_a):
    with pytest.raises(BatchInvalid) as caught:
        create(org_a, admin_a, name="  ")
    assert caught.value.problems[0].field == "name"


def test_lines_and_totals_are_stored_when_created(org_a, admin_a, enqueued):
    make_connection(organisation=org_a)
    chart_read_from_xero(org_a)  # the lines' own account and tax rate are checked against it
    batch = create(
        org_a,
        admin_a,
        invoices=[
            make_invoice_input(
                "INV-1",
                lines=[
                    make_line_input("Care hours", "12", "85.00"),
                    make_line_input("Call-outs", "3", "120.555", account_code="260", tax_type="EXEMPTOUTPUT"),
                ],
            )
        ],
    )
    invoice = batch.invoices.get()
    assert [(li.position, li.description, li.account_code, li.tax_type) for li in invoice.lines.all()] == [
        (1, "Care hours", "", ""),
        (2, "Call-outs", "260", "EXEMPTOUTPUT"),
    ]
    # no default tax rate chosen yet, EXEMPTOUTPUT is 0%: 1020.00 + 361.665 -> 361.67
    assert (invoice.subtotal, invoice.total_tax, invoice.total) == (Decimal("1381.67"), 0, Decimal("1381.67"))
    assert invoice.amount_due == invoice.total
    assert batch.created_by == admin_a and batch.source == "form"


def test_totals_include_tax_when_tax_rates_were_read_from_xero(org_a, admin_a, enqueued):
    make_connection(organisation=org_a)
    XeroMapping.objects.create(organisation=org_a, revenue_account_code="200", tax_type="OUTPUT")
    chart_read_from_xero(org_a)  # OUTPUT 10%, EXEMPTOUTPUT 0%
    batch = create(
        org_a,
        admin_a,
        invoices=[
            make_invoice_input(
                "INV-1", lines=[make_line_input(unit="0.05"), make_line_input(unit="100", tax_type="EXEMPTOUTPUT")]
            ),
            make_invoice_input("INV-2", line_amount_types="Inclusive", lines=[make_line_input(unit="110.00")]),
        ],
    )
    first, second = batch.invoices.order_by("number")
    assert (first.subtotal, first.total_tax, first.total) == (Decimal("100.05"), Decimal("0.01"), Decimal("100.06"))
    assert (second.subtotal, second.total_tax, second.total) == (Decimal("100.00"), Decimal("10.00"), Decimal("110.00"))


def test_created_event_is_recorded_for_each_invoice_when_created(org_a, admin_a):
    batch = create(org_a, admin_a, invoices=[make_invoice_input("INV-1"), make_invoice_input("INV-2")])
    events = InvoiceEvent.objects.filter(invoice__batch=batch)
    assert events.count() == 2
    assert {(e.kind, e.actor_id, e.organisation_id) for e in events} == {("created", admin_a.pk, org_a.pk)}
    assert "before Xero was connected" in events.first().message


def test_next_numbers_continue_the_latest_when_numbers_exist(org_a):
    assert invoice_numbers_suggest(organisation=org_a, count=2) == ["INV-0001", "INV-0002"]
    make_batch(organisation=org_a)
    latest = Invoice.objects.get(organisation=org_a).number  # INV-000nn
    prefix, digits = latest[:4], latest[4:]
    assert invoice_numbers_suggest(organisation=org_a) == [f"{prefix}{int(digits) + 1:0{len(digits)}d}"]
    assert invoice_numbers_suggest(organisation=org_a, after="ACME-0099") == ["ACME-0100"]
