import datetime as dt
import json
from decimal import Decimal
from types import SimpleNamespace

import pytest

from invoices import mappers
from invoices.mappers import (
    MappingRequired,
    contact_outcomes,
    contact_payload,
    invoice_outcomes,
    invoice_to_xero_payload,
    invoice_totals,
    line_totals,
    needs_four_decimal_units,
    parse_xero_datetime,
    revenue_accounts,
    revenue_tax_rates,
)

D = Decimal


def line(quantity="1", unit="100.00", description="Consulting", account_code="", tax_type=""):
    return SimpleNamespace(
        quantity=D(quantity), unit_amount=D(unit), description=description, account_code=account_code, tax_type=tax_type
    )


def invoice(**overrides):
    values = dict(
        number="INV-0001",
        reference="PO 12",
        issue_date=dt.date(2026, 11, 1),
        due_date=dt.date(2026, 11, 15),
        currency="NZD",
        line_amount_types="Exclusive",
        status="AUTHORISED",
    )
    values.update(overrides)
    return SimpleNamespace(**values)


MAPPING = SimpleNamespace(revenue_account_code="200", tax_type="OUTPUT2")


# ---------------------------------------------------------------- rounding


def test_line_amount_rounds_half_up_when_exclusive():
    result = line_totals(quantity=D("3"), unit_amount=D("0.125"), line_amount_types="Exclusive", tax_rate=D("15"))
    assert result.line_amount == D("0.38")  # 0.375 -> 0.38, not banker's 0.38/0.37
    assert result.tax_amount == D("0.06")  # 0.057 -> 0.06
    assert result.net_amount == D("0.38")


def test_tax_is_rounded_per_line_when_exclusive():
    lines = [line(unit="0.33"), line(unit="0.33"), line(unit="0.33")]
    totals = invoice_totals(lines, line_amount_types="Exclusive", tax_rate=D("15"))
    # per line: 0.33 * 15% = 0.0495 -> 0.05; three lines 0.15 (on the sum it would be 0.1485 -> 0.15 too)
    assert totals.subtotal == D("0.99")
    assert totals.total_tax == D("0.15")
    assert totals.total == D("1.14")


def test_tax_per_line_differs_from_tax_on_total_when_many_small_lines():
    lines = [line(unit="0.10")] * 10
    totals = invoice_totals(lines, line_amount_types="Exclusive", tax_rate=D("15"))
    # 0.015 -> 0.02 per line (half up) = 0.20, whereas 15% of 1.00 would be 0.15
    assert totals.total_tax == D("0.20")
    assert totals.total == D("1.20")


def test_tax_is_extracted_from_gross_when_inclusive():
    result = line_totals(quantity=D("1"), unit_amount=D("115.00"), line_amount_types="Inclusive", tax_rate=D("15"))
    assert result.line_amount == D("115.00")
    assert result.tax_amount == D("15.00")
    assert result.net_amount == D("100.00")


def test_invoice_total_equals_gross_lines_when_inclusive():
    lines = [line(quantity="2", unit="9.99"), line(quantity="1", unit="0.05")]
    totals = invoice_totals(lines, line_amount_types="Inclusive", tax_rate=D("10"))
    # 19.98 * 10/110 = 1.8163 -> 1.82 ; 0.05 * 10/110 = 0.0045 -> 0.00
    assert totals.total_tax == D("1.82")
    assert totals.subtotal == D("18.21")
    assert totals.total == D("20.03")


def test_no_tax_is_charged_when_no_tax():
    lines = [line(quantity="1.5", unit="33.3333")]
    totals = invoice_totals(lines, line_amount_types="NoTax", tax_rate=D("20"))
    assert totals == mappers.InvoiceTotals(subtotal=D("50.00"), total_tax=D("0.00"), total=D("50.00"))


def test_four_dp_unit_amount_rounds_line_to_two_dp_when_exclusive():
    # 3 x 1.2345 = 3.7035 -> 3.70 (half up on the third decimal 3)
    result = line_totals(quantity=D("3"), unit_amount=D("1.2345"), line_amount_types="Exclusive", tax_rate=D("10"))
    assert result.line_amount == D("3.70")
    assert result.tax_amount == D("0.37")


def test_four_dp_quantity_and_unit_round_half_up_when_exactly_half():
    # 0.5 x 0.0125 = 0.00625 -> 0.01
    assert line_totals(quantity=D("0.5"), unit_amount=D("0.0125"), line_amount_types="NoTax").line_amount == D("0.01")


def test_line_uses_its_own_tax_rate_when_tax_type_overridden():
    lines = [line(unit="100"), line(unit="100", tax_type="ZERORATEDOUTPUT")]
    totals = invoice_totals(
        lines, line_amount_types="Exclusive", tax_rate=D("15"), tax_rates={"ZERORATEDOUTPUT": D("0")}
    )
    assert totals.total_tax == D("15.00")
    assert totals.total == D("215.00")


def test_unknown_line_amount_types_is_rejected_when_given():
    with pytest.raises(ValueError):
        line_totals(quantity=D("1"), unit_amount=D("1"), line_amount_types="Gross")


def test_four_decimal_units_are_detected_when_unit_has_more_than_two_dp():
    assert needs_four_decimal_units([line(unit="1.2345")])
    assert not needs_four_decimal_units([line(unit="1.20")])


# ---------------------------------------------------------------- payloads


def test_payload_has_xero_shape_when_mapping_defaults_apply():
    payload = invoice_to_xero_payload(
        invoice(), [line(quantity="2", unit="12.5")], mapping=MAPPING, contact_id="c0ffee00-0000-4000-8000-000000000001"
    )
    assert payload == {
        "Type": "ACCREC",
        "Contact": {"ContactID": "c0ffee00-0000-4000-8000-000000000001"},
        "InvoiceNumber": "INV-0001",
        "Reference": "PO 12",
        "Date": "2026-11-01",
        "DueDate": "2026-11-15",
        "CurrencyCode": "NZD",
        "LineAmountTypes": "Exclusive",
        "Status": "AUTHORISED",
        "LineItems": [
            {"Description": "Consulting", "Quantity": 2, "UnitAmount": 12.5, "AccountCode": "200", "TaxType": "OUTPUT2"}
        ],
    }
    json.dumps(payload)  # serialisable as is


def test_payload_never_carries_tax_amount_when_built():
    payload = invoice_to_xero_payload(invoice(), [line(), line(unit="1.2345")], mapping=MAPPING, contact_id="x")
    assert all("TaxAmount" not in item and "LineAmount" not in item for item in payload["LineItems"])
    assert payload["LineItems"][1]["UnitAmount"] == 1.2345


def test_line_overrides_win_when_line_has_account_and_tax_type():
    payload = invoice_to_xero_payload(
        invoice(), [line(account_code="260", tax_type="EXEMPTOUTPUT")], mapping=MAPPING, contact_id="x"
    )
    assert payload["LineItems"][0]["AccountCode"] == "260"
    assert payload["LineItems"][0]["TaxType"] == "EXEMPTOUTPUT"


def test_payload_is_refused_when_no_mapping_and_no_overrides():
    with pytest.raises(MappingRequired):
        invoice_to_xero_payload(invoice(), [line()], mapping=None, contact_id="x")


def test_payload_is_built_without_mapping_when_every_line_overrides():
    payload = invoice_to_xero_payload(
        invoice(), [line(account_code="200", tax_type="OUTPUT2")], mapping=None, contact_id="x"
    )
    assert payload["LineItems"][0]["AccountCode"] == "200"


def test_tax_type_is_left_to_xero_when_no_tax_and_no_override():
    payload = invoice_to_xero_payload(
        invoice(line_amount_types="NoTax"),
        [line()],
        mapping=SimpleNamespace(revenue_account_code="200", tax_type=""),
        contact_id="x",
    )
    assert "TaxType" not in payload["LineItems"][0]


def test_payload_is_refused_when_contact_id_missing():
    with pytest.raises(ValueError):
        invoice_to_xero_payload(invoice(), [line()], mapping=MAPPING, contact_id="")


def test_contact_payload_keys_on_contact_number_when_built():
    customer = SimpleNamespace(name="Acme Ltd", email="ap@acme.test", contact_number="COORD-7")
    assert contact_payload(customer) == {"Name": "Acme Ltd", "ContactNumber": "COORD-7", "EmailAddress": "ap@acme.test"}
    assert "EmailAddress" not in contact_payload(SimpleNamespace(name="B", email="", contact_number="COORD-8"))


# ---------------------------------------------------------------- parsing


def test_ms_date_with_offset_is_aware_when_parsed():
    value = parse_xero_datetime("/Date(1419937200000+1300)/")
    assert value.utcoffset() == dt.timedelta(hours=13)
    assert value == dt.datetime(2014, 12, 30, 11, 0, tzinfo=dt.UTC)


def test_ms_date_without_offset_is_utc_when_parsed():
    value = parse_xero_datetime("/Date(1439434356790)/")
    assert value.utcoffset() == dt.timedelta(0)
    assert value == dt.datetime(2015, 8, 13, 2, 52, 36, 790000, tzinfo=dt.UTC)


def test_negative_offset_is_applied_when_parsed():
    assert parse_xero_datetime("/Date(0-0530)/").utcoffset() == -dt.timedelta(hours=5, minutes=30)


def test_garbage_date_is_none_when_parsed():
    assert parse_xero_datetime("2024-01-01") is None
    assert parse_xero_datetime(None) is None


def test_each_element_has_its_outcome_when_summarize_errors_false():
    body = {
        "Invoices": [
            {
                "InvoiceID": "11111111-1111-4111-8111-111111111111",
                "InvoiceNumber": "INV-1",
                "Status": "AUTHORISED",
                "StatusAttributeString": "OK",
                "UpdatedDateUTC": "/Date(1439434356790+0000)/",
                "SubTotal": 100.0,
                "TotalTax": 15.0,
                "Total": 115.0,
                "AmountDue": 115.0,
            },
            {
                "InvoiceID": "22222222-2222-4222-8222-222222222222",
                "InvoiceNumber": "INV-2",
                "Status": "DRAFT",
                "StatusAttributeString": "WARNING",
                "Warnings": [{"Message": "Only AUTHORISED can be emailed"}],
            },
            {
                "InvoiceID": mappers.EMPTY_XERO_ID,
                "InvoiceNumber": "INV-3",
                "Status": "AUTHORISED",
                "StatusAttributeString": "ERROR",
                "HasErrors": True,
                "ValidationErrors": [
                    {"Message": "Account code '999' is not a valid code for this document."},
                    {"Message": "Invoice # must be unique."},
                ],
            },
        ]
    }
    ok, warned, failed = invoice_outcomes(body)
    assert ok.invoice_id.startswith("1111") and ok.created and ok.total == D("115.0") and ok.updated_at
    assert warned.status_attribute == "WARNING" and warned.warnings == ["Only AUTHORISED can be emailed"]
    assert warned.created
    assert failed.invoice_id == "" and failed.has_errors and not failed.created
    assert failed.errors == ["Account code '999' is not a valid code for this document.", "Invoice # must be unique."]


def test_elements_are_read_when_body_is_a_validation_exception():
    body = {
        "ErrorNumber": 10,
        "Type": "ValidationException",
        "Elements": [{"InvoiceNumber": "INV-9", "ValidationErrors": [{"Message": "Contact is required"}]}],
    }
    (only,) = invoice_outcomes(body)
    assert only.number == "INV-9" and only.errors == ["Contact is required"]


def test_contact_outcomes_keep_ids_when_parsed():
    body = {"Contacts": [{"ContactID": "aaaa", "Name": "Acme", "ContactNumber": "COORD-1", "ContactStatus": "ACTIVE"}]}
    (contact,) = contact_outcomes(body)
    assert (contact.contact_id, contact.contact_number, contact.status) == ("aaaa", "COORD-1", "ACTIVE")


# ---------------------------------------------------------------- mapping choices


def test_only_active_revenue_accounts_are_offered_when_chart_is_mixed():
    body = {
        "Accounts": [
            {"Code": "200", "Name": "Sales", "Type": "REVENUE", "Class": "REVENUE", "Status": "ACTIVE"},
            {"Code": "260", "Name": "Other Revenue", "Type": "OTHERINCOME", "Class": "REVENUE", "Status": "ACTIVE"},
            {"Code": "270", "Name": "Interest", "Type": "SALES", "Class": "REVENUE", "Status": "ACTIVE"},
            {"Code": "201", "Name": "Old sales", "Type": "REVENUE", "Class": "REVENUE", "Status": "ARCHIVED"},
            {"Code": "400", "Name": "Advertising", "Type": "EXPENSE", "Class": "EXPENSE", "Status": "ACTIVE"},
            {"Code": "090", "Name": "Bank", "Type": "BANK", "Class": "ASSET", "Status": "ACTIVE"},
            {"Name": "No code", "Type": "REVENUE", "Class": "REVENUE", "Status": "ACTIVE"},
        ]
    }
    assert [a.code for a in revenue_accounts(body)] == ["200", "260", "270"]


def test_only_active_revenue_tax_rates_are_offered_when_rates_are_mixed():
    body = {
        "TaxRates": [
            {
                "Name": "GST on Income",
                "TaxType": "OUTPUT",
                "Status": "ACTIVE",
                "CanApplyToRevenue": True,
                "EffectiveRate": 10.0,
            },
            {
                "Name": "GST on Expenses",
                "TaxType": "INPUT",
                "Status": "ACTIVE",
                "CanApplyToRevenue": False,
                "EffectiveRate": 10.0,
            },
            {
                "Name": "Old rate",
                "TaxType": "TAX001",
                "Status": "DELETED",
                "CanApplyToRevenue": True,
                "EffectiveRate": 12.5,
            },
            {
                "Name": "GST Free Income",
                "TaxType": "EXEMPTOUTPUT",
                "Status": "ACTIVE",
                "CanApplyToRevenue": True,
                "DisplayTaxRate": 0,
            },
        ]
    }
    rates = revenue_tax_rates(body)
    assert [(r.tax_type, r.rate) for r in rates] == [("EXEMPTOUTPUT", D("0")), ("OUTPUT", D("10.0"))]
