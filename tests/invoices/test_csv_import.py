import csv
import io
from decimal import Decimal
from pathlib import Path

import pytest

from invoices.csv_import.columns import COLUMN_NAMES, sample_csv
from invoices.csv_import.parse import parse_batch_csv

CSV_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "csv"


def read(name: str) -> bytes:
    return (CSV_DIR / name).read_bytes()


def build(*rows: list[str], header: list[str] | None = None) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header or COLUMN_NAMES)
    writer.writerows(rows)
    return out.getvalue().encode()


ROW = ["INV-1", "Acme", "", "2026-11-01", "2026-11-15", "AUD", "", "", "", "Work", "1", "10", "", ""]


def test_rows_with_the_same_number_become_one_invoice_when_parsed():
    result = parse_batch_csv(read("good_batch.csv"))
    assert result.ok, result.errors
    first, second = result.invoices
    assert first.number == "INV-2001" and first.customer_name == "Harbour View Aged Care"
    assert [(li.description, li.quantity, li.unit_amount, li.account_code) for li in first.lines] == [
        ("Care coordination", Decimal("12"), Decimal("85.00"), ""),
        ("After-hours call-outs", Decimal("3"), Decimal("120.50"), "260"),
    ]
    assert (second.currency, second.status, second.line_amount_types) == ("NZD", "DRAFT", "Inclusive")
    assert second.lines[0].unit_amount == Decimal("99.9950") and second.lines[0].tax_type == "EXEMPTOUTPUT"
    assert result.invoice_rows == [2, 4]


def test_every_bad_row_is_reported_with_row_and_column_when_rows_are_bad():
    result = parse_batch_csv(read("bad_rows.csv"))
    assert not result.ok and result.invoices == []
    found = {(e.row, e.column) for e in result.errors}
    assert {(2, "customer_email"), (2, "due_date")} <= found
    assert {
        (3, "issue_date"),
        (3, "currency"),
        (3, "status"),
        (3, "line_amount_types"),
        (3, "description"),
        (3, "quantity"),
        (3, "unit_amount"),
        (3, "account_code"),
    } <= found
    assert {(5, "customer_name"), (5, "currency"), (5, "unit_amount")} <= found
    assert {(6, "invoice_number"), (6, "issue_date")} <= found
    assert not any(e.row == 4 for e in result.errors)
    messages = {(e.row, e.column): e.message for e in result.errors}
    assert messages[(5, "customer_name")] == "Differs from row 4 of invoice INV-3003 (“Kestrel Property Group”)."
    assert messages[(5, "unit_amount")] == "Use at most 4 decimal places."
    assert messages[(3, "issue_date")] == "“01/11/2026” is not a date in the form YYYY-MM-DD."
    assert messages[(6, "issue_date")] == "2026-02-30 is not a real date."


def test_missing_and_unknown_columns_are_reported_when_header_is_wrong():
    header = [
        "invoice_number",
        "customer",
        "issue_date",
        "due_date",
        "currency",
        "description",
        "unit_amount",
        "unit_amount",
    ]
    result = parse_batch_csv(build(header=header))
    assert {(e.row, e.column, e.message) for e in result.errors} == {
        (1, "customer", "Unknown column. See the list of columns below."),
        (1, "customer_name", "Missing column."),
        (1, "unit_amount", "This column appears twice."),
    }


def test_file_is_refused_when_it_has_too_many_rows():
    result = parse_batch_csv(build(*[[f"INV-{i}", *ROW[1:]] for i in range(6)]), max_rows=5)
    assert not result.ok and result.invoices == []
    assert "more than 5 rows" in result.errors[0].message


def test_file_is_refused_when_it_is_too_large():
    result = parse_batch_csv(b"x" * 101, max_bytes=100)
    assert "limit" in result.errors[0].message


def test_file_is_refused_when_not_utf8():
    result = parse_batch_csv("invoice_number\nFaktura Å\n".encode("utf-16"))
    assert "UTF-8" in result.errors[0].message


def test_file_is_refused_when_it_has_no_rows():
    assert parse_batch_csv(build()).errors[0].message == "The file has a header but no rows."
    assert parse_batch_csv(b"").errors[0].row == 1


def test_utf8_bom_and_blank_lines_are_accepted_when_saved_by_excel():
    raw = "\ufeff".encode() + build(ROW) + b"\r\n,,,,\r\n"
    result = parse_batch_csv(raw)
    assert result.ok and len(result.invoices) == 1


def test_defaults_apply_when_optional_cells_are_blank():
    (invoice,) = parse_batch_csv(build(ROW)).invoices
    assert (invoice.status, invoice.line_amount_types, invoice.lines[0].quantity) == (
        "AUTHORISED",
        "Exclusive",
        Decimal("1"),
    )


def test_zero_quantity_is_refused_when_given():
    row = ROW.copy()
    row[10] = "0"
    assert parse_batch_csv(build(row)).errors[0].column == "quantity"


def test_sample_csv_parses_cleanly_when_downloaded():
    result = parse_batch_csv(sample_csv().encode())
    assert result.ok and len(result.invoices) == 2 and sum(len(i.lines) for i in result.invoices) == 3


def test_service_problems_point_at_first_row_of_invoice_when_mapped():
    from invoices.services.batches.inputs import BatchProblem

    result = parse_batch_csv(read("good_batch.csv"))
    (error,) = result.errors_for([BatchProblem(1, "number", "Invoice number INV-2002 is already used.")])
    assert (error.row, error.column) == (4, "invoice_number")


# ---------------------------------------------------------------- issue 12, item 7: numbers and bytes


def _cell(column: str, value: str) -> bytes:
    row = ROW.copy()
    row[COLUMN_NAMES.index(column)] = value
    return build(row)


@pytest.mark.parametrize("text", ["12,50", "1,5", "1,250", "1.250,00"])
def test_decimal_comma_is_refused_when_an_amount_uses_one(text):
    result = parse_batch_csv(_cell("unit_amount", text))
    assert not result.ok and result.invoices == []
    ((row, column, message),) = {(e.row, e.column, e.message) for e in result.errors}
    assert (row, column) == (2, "unit_amount")
    assert "use a point as the decimal separator" in message


def test_decimal_comma_is_refused_when_a_quantity_uses_one():
    (error,) = parse_batch_csv(_cell("quantity", "2,5")).errors
    assert error.column == "quantity" and "decimal separator" in error.message


def test_thousands_separator_is_read_when_a_point_marks_the_decimals():
    (invoice,) = parse_batch_csv(_cell("unit_amount", "1,250.00")).invoices
    assert invoice.lines[0].unit_amount == Decimal("1250.00")


@pytest.mark.parametrize("column", ["customer_name", "description", "reference", "invoice_number"])
def test_nul_byte_is_refused_on_its_row_and_column_when_a_cell_holds_one(column):
    result = parse_batch_csv(_cell(column, "Acme\x00 Ltd"))
    assert not result.ok and result.invoices == []
    assert (2, column) in {(e.row, e.column) for e in result.errors}
    assert any("NUL" in e.message for e in result.errors)


def test_negative_quantity_is_refused_when_given():
    (error,) = parse_batch_csv(_cell("quantity", "-3")).errors
    assert error.column == "quantity" and "use a credit note" in error.message


def test_line_problems_point_at_their_own_row_when_mapped():
    from invoices.services.batches.inputs import BatchProblem

    result = parse_batch_csv(read("good_batch.csv"))
    (error,) = result.errors_for([BatchProblem(0, "account_code", "Account 999 is not ...", line=1)])
    assert (error.row, error.column) == (3, "account_code")
