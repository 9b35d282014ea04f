"""Lines are checked against the organisation's own Xero before anything is created (issue 12, items 1 and 7): account
codes among its ACTIVE revenue accounts, tax types among the rates that apply to sales, the currency its base
currency, quantities above zero, amounts and totals within what our columns and Xero hold, and no negative
invoice ("use a credit note"). Nothing is created while any line is wrong."""

import pytest
import responses
from django.conf import settings

from invoices.models import Customer, Invoice, InvoiceBatch
from invoices.services.batches.create import batch_create
from invoices.services.batches.inputs import NEGATIVE_TOTAL_MESSAGE, BatchInvalid
from invoices.services.batches.validation import batch_problems
from tests.factories import chart_read_from_xero, make_connection, make_invoice_input, make_line_input

pytestmark = pytest.mark.django_db


def problems(org, *invoices):
    return {
        (p.index, p.line, p.field, p.message) for p in batch_problems(organisation=org, name="B", invoices=invoices)
    }


def fields(org, *invoices):
    return {(p.index, p.line, p.field) for p in batch_problems(organisation=org, name="B", invoices=invoices)}


@pytest.fixture
def connected(org_a):
    make_connection(organisation=org_a, base_currency="AUD")
    chart_read_from_xero(org_a)
    return org_a


def test_unknown_account_is_refused_on_its_line_when_the_chart_is_known(connected):
    found = problems(connected, make_invoice_input(lines=[make_line_input(), make_line_input(account_code="999")]))
    assert (0, 1, "account_code", "Account 999 is not one of your active revenue accounts in Xero.") in found


@pytest.mark.parametrize("code", ["210", "400"])
def test_archived_or_expense_account_is_refused_when_given_on_a_sales_line(connected, code):
    assert (0, 0, "account_code") in fields(connected, make_invoice_input(lines=[make_line_input(account_code=code)]))


def test_unknown_tax_type_is_refused_on_its_line_when_the_chart_is_known(connected):
    found = problems(connected, make_invoice_input(lines=[make_line_input(tax_type="NOPE")]))
    assert (0, 0, "tax_type", "Tax rate NOPE is not one of your Xero tax rates for sales.") in found


@pytest.mark.parametrize("tax", ["INPUT", "TAX001"])
def test_purchase_or_deleted_tax_rate_is_refused_when_given_on_a_sales_line(connected, tax):
    assert (0, 0, "tax_type") in fields(connected, make_invoice_input(lines=[make_line_input(tax_type=tax)]))


def test_known_account_and_tax_are_accepted_when_active_for_sales(connected):
    assert (
        problems(connected, make_invoice_input(lines=[make_line_input(account_code="260", tax_type="EXEMPTOUTPUT")]))
        == set()
    )


def test_currency_not_enabled_in_xero_is_refused_when_the_currencies_are_known(connected):
    found = problems(connected, make_invoice_input(currency="XYZ"), make_invoice_input("INV-2", currency="EUR"))
    assert (0, None, "currency", "XYZ is not enabled in your Xero organisation: use one of AUD, NZD, USD.") in found
    assert (1, None, "currency") in {p[:3] for p in found}
    assert problems(connected, make_invoice_input("INV-3", currency="AUD")) == set()


def test_currency_enabled_in_xero_is_accepted_when_other_than_the_base_currency(connected):
    # GET /Currencies (issue 12, item 1): the organisation's enabled currencies, not only its base currency.
    assert problems(connected, make_invoice_input(currency="NZD"), make_invoice_input("INV-2", currency="USD")) == set()


def test_currency_is_read_from_xero_once_and_cached_when_checking_batches(org_a):
    import json
    from pathlib import Path

    make_connection(organisation=org_a, base_currency="AUD")
    body = json.loads((Path(__file__).resolve().parents[1] / "fixtures/xero/currencies.json").read_text())
    with responses.RequestsMock() as mocked:
        call = mocked.get(f"{settings.XERO_API_URL}/Currencies", json=body)
        assert problems(org_a, make_invoice_input(currency="USD")) == set()
        assert problems(org_a, make_invoice_input(currency="NZD")) == set()
        assert problems(org_a, make_invoice_input(currency="AUD")) == set()  # the base currency never asks Xero
    assert call.call_count == 1


def test_foreign_currency_is_refused_with_the_reason_when_xero_cannot_be_reached(org_a):
    make_connection(organisation=org_a, base_currency="AUD")
    with responses.RequestsMock() as mocked:
        mocked.get(f"{settings.XERO_API_URL}/Currencies", status=503)
        found = problems(org_a, make_invoice_input(currency="NZD"))
    ((_, _, field, message),) = found
    assert field == "currency" and message.startswith("We can't check NZD against your Xero:")
    assert message.endswith("Use AUD.")


def test_override_is_refused_with_the_reason_when_xero_cannot_be_reached(org_a):
    make_connection(organisation=org_a)
    with responses.RequestsMock() as mocked:
        mocked.get(f"{settings.XERO_API_URL}/Accounts", status=503)
        found = problems(org_a, make_invoice_input(lines=[make_line_input(account_code="200")]))
    ((index, line_index, field, message),) = found
    assert (index, line_index, field) == (0, 0, "account_code")
    assert "couldn't reach Xero" in message and "Leave it empty to use your default" in message


def test_override_is_refused_with_the_reason_when_xero_is_not_connected(org_a):
    ((*_, field, message),) = problems(org_a, make_invoice_input(lines=[make_line_input(tax_type="OUTPUT")]))
    assert field == "tax_type" and "Connect Xero first" in message


def test_lines_without_overrides_never_ask_xero_when_created(org_a):
    make_connection(organisation=org_a)
    with responses.RequestsMock() as mocked:  # any call to Xero would fail the test
        assert problems(org_a, make_invoice_input(lines=[make_line_input(), make_line_input("Travel")])) == set()
        assert len(mocked.calls) == 0


def test_negative_quantity_is_refused_when_given(connected):
    found = problems(connected, make_invoice_input(lines=[make_line_input(quantity="-2")]))
    assert (0, 0, "quantity", "Quantities cannot be negative: to take an amount back, use a credit note.") in found


def test_negative_total_is_refused_as_an_invoice_when_lines_add_up_below_zero(connected):
    found = problems(
        connected, make_invoice_input(lines=[make_line_input(unit="10"), make_line_input("Refund", unit="-25")])
    )
    assert (0, None, "lines", NEGATIVE_TOTAL_MESSAGE) in found
    assert NEGATIVE_TOTAL_MESSAGE.startswith(
        "This invoice's total is below zero: Xero does not take negative invoices, use a credit note instead"
    )


def test_discount_line_is_accepted_when_the_total_stays_positive(connected):
    assert (
        problems(
            connected, make_invoice_input(lines=[make_line_input(unit="100"), make_line_input("Discount", unit="-10")])
        )
        == set()
    )


def test_line_amount_is_refused_when_quantity_times_unit_price_overflows(connected):
    big = make_invoice_input(lines=[make_line_input(quantity="9999999999", unit="9999999999")])
    assert (0, 0, "unit_amount") in fields(connected, big)


def test_invoice_total_is_refused_when_lines_add_up_past_what_xero_holds(connected):
    lines = [make_line_input(f"Part {i}", quantity="1000", unit="999999999") for i in range(2)]
    assert (0, None, "lines") in fields(connected, make_invoice_input(lines=lines))


def test_nothing_is_created_when_one_line_of_many_is_wrong(connected, admin_a):
    good = make_invoice_input("INV-1")
    bad = make_invoice_input(
        "INV-2", customer="Émile Care", lines=[make_line_input(), make_line_input(account_code="999")]
    )
    with pytest.raises(BatchInvalid):
        batch_create(organisation=connected, user=admin_a, name="B", invoices=[good, bad], source="form")
    assert not (InvoiceBatch.objects.exists() or Invoice.objects.exists() or Customer.objects.exists())
