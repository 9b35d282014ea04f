"""Payments as Xero reports them on the invoice (issue 12, item 10): each one's date, amount and reference is stored
by the applier (added, changed, removed in Xero) and shown on the invoice."""

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse

from invoices.models import Payment, XeroMapping
from invoices.services.apply.invoices import invoice_apply_from_xero
from tests.factories import PASSWORD, make_membership, make_pushed_invoice, make_user
from tests.invoices.test_apply import HELD, XERO_ID, xero_invoice

pytestmark = pytest.mark.django_db
FIRST, SECOND = "8a9b6a5e-0000-4000-8000-00000000aa01", "8a9b6a5e-0000-4000-8000-00000000aa02"


def xero_payment(payment_id: str, *, day: dt.date, amount: float, reference: str = "") -> dict:
    at = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    return {
        "PaymentID": payment_id,
        "Date": f"/Date({int(at.timestamp() * 1000)}+0000)/",
        "Amount": amount,
        "Reference": reference,
        "CurrencyRate": 1.0,
        "HasAccount": True,
        "HasValidationErrors": False,
    }


@pytest.fixture
def invoice(org_a):
    XeroMapping.objects.create(organisation=org_a, revenue_account_code="200", tax_type="OUTPUT")
    return make_pushed_invoice(organisation=org_a, xero_invoice_id=XERO_ID, xero_updated_at=HELD, number="INV-0001")


def apply(invoice, minutes_later: int, **changes):
    return invoice_apply_from_xero(
        organisation_id=invoice.organisation_id,
        source="webhook",
        data=xero_invoice(minutes_later=minutes_later, **changes),
    )


def rows(invoice):
    return list(invoice.payments.order_by("date").values_list("xero_payment_id", "date", "amount", "reference"))


def test_each_payment_is_stored_with_its_date_amount_and_reference_when_xero_reports_it(invoice):
    apply(
        invoice,
        5,
        Status="AUTHORISED",
        AmountPaid=60.0,
        AmountDue=50.0,
        Payments=[
            xero_payment(FIRST, day=dt.date(2026, 11, 20), amount=50.0, reference="EFT 1187"),
            xero_payment(SECOND, day=dt.date(2026, 11, 22), amount=10.0),
        ],
    )
    assert rows(invoice) == [
        (FIRST, dt.date(2026, 11, 20), Decimal("50.00"), "EFT 1187"),
        (SECOND, dt.date(2026, 11, 22), Decimal("10.00"), ""),
    ]


def test_payment_removed_or_changed_in_xero_follows_when_a_newer_copy_is_applied(invoice):
    apply(invoice, 5, Payments=[xero_payment(FIRST, day=dt.date(2026, 11, 20), amount=50.0, reference="EFT")])
    apply(invoice, 9, Payments=[xero_payment(SECOND, day=dt.date(2026, 11, 23), amount=110.0, reference="Card")])
    assert rows(invoice) == [(SECOND, dt.date(2026, 11, 23), Decimal("110.00"), "Card")]
    outcome = apply(
        invoice, 12, Payments=[xero_payment(SECOND, day=dt.date(2026, 11, 23), amount=110.0, reference="Visa")]
    )
    assert outcome.outcome == "applied"  # only the reference changed in Xero
    assert rows(invoice)[0][3] == "Visa"


def test_payments_are_kept_when_a_summary_without_payments_is_applied(invoice):
    apply(invoice, 5, Payments=[xero_payment(FIRST, day=dt.date(2026, 11, 20), amount=50.0)])
    data = xero_invoice(minutes_later=9)
    data.pop("Payments")
    invoice_apply_from_xero(organisation_id=invoice.organisation_id, source="reconcile", data=data)
    assert [r[0] for r in rows(invoice)] == [FIRST]


def test_invoice_shows_each_payment_on_the_batch_page(client, invoice, org_a):
    apply(
        invoice,
        5,
        AmountPaid=60.0,
        AmountDue=50.0,
        Payments=[
            xero_payment(FIRST, day=dt.date(2026, 11, 20), amount=50.0, reference="EFT 1187"),
            xero_payment(SECOND, day=dt.date(2026, 11, 22), amount=10.0),
        ],
    )
    user = make_user(email="books@a.test")
    make_membership(user=user, organisation=org_a, role="accountant")
    assert client.login(username=user.email, password=PASSWORD)
    page = client.get(reverse("invoices:batch_detail", args=[invoice.batch_id])).content.decode()
    table = page.split('aria-label="Payments on invoice INV-0001"', 1)[1].split("</table>", 1)[0]
    assert "2026-11-20" in table and "AUD 50.00" in table and "EFT 1187" in table
    assert "2026-11-22" in table and "AUD 10.00" in table


def test_payments_of_another_organisation_are_never_touched(invoice, org_b):
    other = make_pushed_invoice(organisation=org_b, xero_invoice_id="other-id", xero_updated_at=HELD)
    Payment.objects.create(
        organisation=org_b, invoice=other, xero_payment_id=FIRST, date=dt.date(2026, 11, 1), amount=Decimal("5")
    )
    apply(invoice, 5, Payments=[])
    assert other.payments.count() == 1
