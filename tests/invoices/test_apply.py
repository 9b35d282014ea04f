"""invoices.services.apply: a copy of an invoice or contact fetched from Xero is applied only if newer, and every
change lands on the invoice's history as "changed in Xero"."""

import copy
import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest

from invoices.created_in_xero.models import XeroCreatedInvoice
from invoices.models import Customer, InvoiceEvent, XeroMapping
from invoices.services.apply.contacts import contact_apply_from_xero
from invoices.services.apply.invoices import invoice_apply_from_xero, invoices_apply_from_xero
from invoices.services.apply.reading import xero_updated_at
from tests.factories import make_customer, make_organisation, make_pushed_invoice

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "xero" / "invoice_authorised.json"
XERO_ID = "0f0d5a46-9c4a-4f7e-8a39-2d2c4a7b1e01"
HELD = dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.UTC)


def xero_invoice(*, minutes_later: int = 0, **changes) -> dict:
    data = copy.deepcopy(json.loads(FIXTURE.read_text())["Invoices"][0])
    at = HELD + dt.timedelta(minutes=minutes_later)
    data["UpdatedDateUTC"] = f"/Date({int(at.timestamp() * 1000)}+0000)/"
    data.update(changes)
    return data


@pytest.fixture
def invoice(db):
    organisation = make_organisation()
    XeroMapping.objects.create(organisation=organisation, revenue_account_code="200", tax_type="OUTPUT")
    return make_pushed_invoice(
        organisation=organisation, xero_invoice_id=XERO_ID, xero_updated_at=HELD, number="INV-0001"
    )


def test_updated_date_is_read_from_ms_date_when_present():
    assert xero_updated_at({"UpdatedDateUTC": "/Date(1795510800000+0000)/"}) == HELD


def test_payment_is_applied_and_recorded_when_xero_copy_is_newer(invoice):
    outcome = invoice_apply_from_xero(
        organisation_id=invoice.organisation_id,
        source="webhook",
        data=xero_invoice(minutes_later=5, Status="PAID", AmountPaid=110.0, AmountDue=0.0),
    )
    invoice.refresh_from_db()
    assert outcome.outcome == "applied"
    assert (invoice.status, invoice.xero_status, invoice.amount_paid, invoice.amount_due) == (
        "PAID",
        "PAID",
        Decimal("110.00"),
        Decimal("0.00"),
    )
    assert invoice.xero_updated_at == HELD + dt.timedelta(minutes=5)
    event = InvoiceEvent.objects.get(invoice=invoice)
    assert event.source == "xero"
    assert event.kind == "changed_in_xero"
    assert event.message.startswith("changed in Xero: ")
    assert "status AUTHORISED → PAID" in event.message
    assert "amount paid 0.00 → 110.00" in event.message
    assert event.changes["status"] == ["AUTHORISED", "PAID"]


@pytest.mark.parametrize("status", ["VOIDED", "DELETED"])
def test_status_is_applied_when_voided_or_deleted_in_xero(invoice, status):
    invoice_apply_from_xero(
        organisation_id=invoice.organisation_id, source="webhook", data=xero_invoice(minutes_later=1, Status=status)
    )
    invoice.refresh_from_db()
    assert invoice.status == status
    assert f"status AUTHORISED → {status}" in InvoiceEvent.objects.get(invoice=invoice).message


def test_credit_is_applied_when_credited_in_xero(invoice):
    invoice_apply_from_xero(
        organisation_id=invoice.organisation_id,
        source="webhook",
        data=xero_invoice(minutes_later=1, AmountCredited=10.0, AmountDue=100.0),
    )
    invoice.refresh_from_db()
    assert (invoice.amount_credited, invoice.amount_due) == (Decimal("10.00"), Decimal("100.00"))


def test_lines_and_dates_are_applied_when_edited_in_xero(invoice):
    data = xero_invoice(
        minutes_later=2,
        DueDateString="2026-11-30T00:00:00",
        Reference="PO 7",
        SubTotal=250.0,
        TotalTax=25.0,
        Total=275.0,
        AmountDue=275.0,
    )
    data["LineItems"] = [
        {"Description": "Service", "Quantity": 1.0, "UnitAmount": 100.0, "AccountCode": "200", "TaxType": "OUTPUT"},
        {"Description": "Call-out fee", "Quantity": 3.0, "UnitAmount": 50.0, "AccountCode": "260", "TaxType": "OUTPUT"},
    ]
    invoice_apply_from_xero(organisation_id=invoice.organisation_id, source="webhook", data=data)
    invoice.refresh_from_db()
    lines = list(invoice.lines.values_list("description", "quantity", "unit_amount", "account_code", "tax_type"))
    # The org's default account and tax type stay implicit, as our own lines keep them; an override is kept.
    assert lines == [
        ("Service", Decimal("1"), Decimal("100"), "", ""),
        ("Call-out fee", Decimal("3"), Decimal("50"), "260", ""),
    ]
    assert (invoice.due_date, invoice.reference, invoice.total) == (dt.date(2026, 11, 30), "PO 7", Decimal("275.00"))
    message = InvoiceEvent.objects.get(invoice=invoice).message
    assert "lines edited" in message and "due date 2026-11-15 → 2026-11-30" in message


def test_nothing_changes_when_xero_copy_is_older(invoice):
    outcome = invoice_apply_from_xero(
        organisation_id=invoice.organisation_id, source="webhook", data=xero_invoice(minutes_later=-10, Status="VOIDED")
    )
    invoice.refresh_from_db()
    assert outcome.outcome == "stale"
    assert invoice.status == "AUTHORISED"
    assert not InvoiceEvent.objects.exists()


def test_nothing_is_recorded_when_same_version_applied_twice(invoice):
    data = xero_invoice(minutes_later=3, Status="PAID", AmountPaid=110.0, AmountDue=0.0)
    first = invoice_apply_from_xero(organisation_id=invoice.organisation_id, source="webhook", data=data)
    second = invoice_apply_from_xero(organisation_id=invoice.organisation_id, source="webhook", data=data)
    assert (first.outcome, second.outcome) == ("applied", "unchanged")
    assert InvoiceEvent.objects.filter(invoice=invoice).count() == 1


def test_newest_state_wins_when_versions_arrive_out_of_order(invoice):
    paid = xero_invoice(minutes_later=10, Status="PAID", AmountPaid=110.0, AmountDue=0.0)
    part_paid = xero_invoice(minutes_later=5, AmountPaid=50.0, AmountDue=60.0)
    outcomes = invoices_apply_from_xero(
        organisation_id=invoice.organisation_id, source="webhook", resources=[paid, part_paid]
    )
    invoice.refresh_from_db()
    assert [o.outcome for o in outcomes] == ["applied", "stale"]
    assert (invoice.status, invoice.amount_paid) == ("PAID", Decimal("110.00"))


def test_only_version_moves_when_nothing_we_hold_changed(invoice):
    outcome = invoice_apply_from_xero(
        organisation_id=invoice.organisation_id,
        source="webhook",
        data=xero_invoice(minutes_later=1, SentToContact=True),
    )
    invoice.refresh_from_db()
    assert outcome.outcome == "unchanged"
    assert invoice.xero_updated_at == HELD + dt.timedelta(minutes=1)
    assert not InvoiceEvent.objects.exists()


def test_invoice_is_recorded_as_created_in_xero_when_not_ours(invoice):
    data = xero_invoice(InvoiceID="aaaaaaaa-0000-4000-8000-000000000001", InvoiceNumber="INV-9001")
    outcome = invoice_apply_from_xero(organisation_id=invoice.organisation_id, source="webhook", data=data)
    created = XeroCreatedInvoice.objects.get()
    assert outcome.outcome == "created_in_xero"
    assert (created.number, created.contact_name, created.total, created.status) == (
        "INV-9001",
        "Harbour View",
        Decimal("110.00"),
        "AUTHORISED",
    )
    later = invoice_apply_from_xero(
        organisation_id=invoice.organisation_id,
        source="webhook",
        data={**data, "Status": "PAID", "AmountDue": 0, "UpdatedDateUTC": "/Date(1795520000000+0000)/"},
    )
    created.refresh_from_db()
    assert (later.outcome, created.status, created.amount_due) == ("applied", "PAID", Decimal("0.00"))


def test_created_in_xero_is_not_recorded_when_our_push_has_not_stored_its_id_yet(invoice):
    pending = make_pushed_invoice(organisation=invoice.organisation, xero_invoice_id="", number="INV-0002")
    data = xero_invoice(InvoiceID="bbbbbbbb-0000-4000-8000-000000000002", InvoiceNumber=pending.number)
    outcome = invoice_apply_from_xero(organisation_id=invoice.organisation_id, source="webhook", data=data)
    assert outcome.outcome == "awaiting_push"
    assert not XeroCreatedInvoice.objects.exists()


def test_bill_is_ignored_when_type_is_accpay(invoice):
    data = xero_invoice(InvoiceID="cccccccc-0000-4000-8000-000000000003", Type="ACCPAY")
    assert (
        invoice_apply_from_xero(organisation_id=invoice.organisation_id, source="webhook", data=data).outcome
        == "ignored"
    )
    assert not XeroCreatedInvoice.objects.exists()


def test_other_organisation_invoice_is_untouched_when_ids_match_elsewhere(invoice):
    other = make_organisation()
    outcome = invoice_apply_from_xero(
        organisation_id=other.pk, source="webhook", data=xero_invoice(minutes_later=5, Status="VOIDED")
    )
    invoice.refresh_from_db()
    assert invoice.status == "AUTHORISED"
    assert outcome.outcome == "created_in_xero"
    assert XeroCreatedInvoice.objects.get().organisation_id == other.pk


def _contact(**changes) -> dict:
    data = {
        "ContactID": "9b3c1a2d-0000-4000-8000-00000000c0c1",
        "Name": "Harbour View Pty",
        "EmailAddress": "accounts@harbour.test",
        "UpdatedDateUTC": "/Date(1795510800000+0000)/",
    }
    data.update(changes)
    return data


@pytest.fixture
def customer(db):
    organisation = make_organisation()
    customer = make_customer(organisation=organisation, name="Harbour View")
    Customer.objects.filter(pk=customer.pk).update(xero_contact_id="9b3c1a2d-0000-4000-8000-00000000c0c1")
    customer.refresh_from_db()
    return customer


def test_customer_name_and_email_update_when_contact_changed_in_xero(customer):
    outcome = contact_apply_from_xero(organisation_id=customer.organisation_id, source="webhook", data=_contact())
    customer.refresh_from_db()
    assert outcome.outcome == "applied"
    assert (customer.name, customer.email) == ("Harbour View Pty", "accounts@harbour.test")


def test_customer_keeps_newer_values_when_older_contact_arrives_later(customer):
    contact_apply_from_xero(organisation_id=customer.organisation_id, source="webhook", data=_contact())
    old = _contact(Name="Harbour View (old)", UpdatedDateUTC="/Date(1795500000000+0000)/")
    assert (
        contact_apply_from_xero(organisation_id=customer.organisation_id, source="webhook", data=old).outcome == "stale"
    )
    customer.refresh_from_db()
    assert customer.name == "Harbour View Pty"


def test_customer_name_is_kept_when_it_would_clash_with_another_customer(customer):
    make_customer(organisation=customer.organisation, name="Taken Name")
    outcome = contact_apply_from_xero(
        organisation_id=customer.organisation_id, source="webhook", data=_contact(Name="taken name")
    )
    customer.refresh_from_db()
    assert customer.name == "Harbour View"
    assert customer.email == "accounts@harbour.test"
    assert "another customer's" in outcome.summary


def test_contact_is_not_ours_when_no_customer_has_its_id(customer):
    outcome = contact_apply_from_xero(
        organisation_id=customer.organisation_id,
        source="webhook",
        data=_contact(ContactID="dddddddd-0000-4000-8000-000000000004"),
    )
    assert outcome.outcome == "not_ours"
