"""Read an invoice batch from CSV: one row per line; rows sharing an invoice_number make one invoice.

Every bad row is reported (row number as a spreadsheet shows it, column, message) and nothing is imported
unless every row is good. No database access: the service checks numbers against the organisation.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from invoices.models import Invoice
from invoices.services.batches import (
    CREATABLE_STATUSES,
    KIND_CREDIT_NOTE,
    KIND_INVOICE,
    BatchProblem,
    InvoiceInput,
    LineInput,
    line_quantity_problem,
)
from organisations.locale import ISO, Locale, NumberUnreadable, date_read, decimal_comma_read

MAX_BYTES = 2 * 1024 * 1024
MAX_ROWS = 5000
MAX_ERRORS_SHOWN = 200

# (column, required, what it holds) - the documented format, also rendered on the upload page.
COLUMNS: list[tuple[str, bool, str]] = [
    ("invoice_number", True, "Unique per organisation. Repeat it on several rows to give an invoice several lines."),
    ("customer_name", True, "An existing customer (matched ignoring case and Unicode form) or a new one."),
    ("customer_email", False, "Used when the customer is new."),
    (
        "issue_date",
        True,
        "YYYY-MM-DD, or your organisation's date format (Settings); empty: today where your organisation is.",
    ),
    ("due_date", True, "YYYY-MM-DD or your organisation's date format, on or after the issue date."),
    ("currency", True, "Three-letter code: one of the currencies enabled in your Xero organisation (e.g. AUD)."),
    ("reference", False, "Shown on the invoice in Xero."),
    ("status", False, "DRAFT, SUBMITTED or AUTHORISED (default AUTHORISED)."),
    ("line_amount_types", False, "Exclusive, Inclusive or NoTax (default Exclusive)."),
    ("description", True, "The line's description."),
    (
        "quantity",
        False,
        "Number above zero, up to 4 decimals, a point as decimal separator unless your organisation's locale "
        "uses a comma (default 1).",
    ),
    (
        "unit_amount",
        True,
        "Price per unit, up to 4 decimals, a point as decimal separator (a comma in a decimal-comma locale), "
        "no currency sign. "
        "An invoice's total cannot be below zero: make it a credit note (type “credit note”, positive amounts).",
    ),
    ("account_code", False, "Overrides the default revenue account: one of your active revenue accounts in Xero."),
    (
        "tax_type",
        False,
        "Overrides the default tax rate: one of your Xero tax rates for sales (its TaxType, e.g. OUTPUT2).",
    ),
    # Added after the first fourteen, so files written for those still read the same.
    (
        "type",
        False,
        "“invoice” (the default) or “credit note”: a credit note has its own numbers (e.g. CN-0001) and "
        "positive amounts.",
    ),
    (
        "allocate_to",
        False,
        "Credit notes only: the number of an approved invoice of the same customer (in this file or sent before) "
        "to allocate the credit to once both are in Xero.",
    ),
]
COLUMN_NAMES = [name for name, _, _ in COLUMNS]
REQUIRED = [name for name, required, _ in COLUMNS if required]
INVOICE_FIELDS = (
    "type",
    "allocate_to",
    "customer_name",
    "customer_email",
    "issue_date",
    "due_date",
    "currency",
    "reference",
    "status",
    "line_amount_types",
)
SAMPLE_ROWS = [
    [
        "INV-1001",
        "Harbour View Aged Care",
        "accounts@harbourview.example",
        "2026-11-01",
        "2026-11-15",
        "AUD",
        "PO 4471",
        "AUTHORISED",
        "Exclusive",
        "Care coordination, November",
        "12",
        "85.00",
        "",
        "",
        "invoice",
        "",
    ],
    [
        "INV-1001",
        "Harbour View Aged Care",
        "",
        "2026-11-01",
        "2026-11-15",
        "AUD",
        "PO 4471",
        "AUTHORISED",
        "Exclusive",
        "After-hours call-outs",
        "3",
        "120.50",
        "",
        "",
        "invoice",
        "",
    ],
    [
        "INV-1002",
        "Wattle Street Clinic",
        "ap@wattle.example",
        "2026-11-01",
        "2026-11-30",
        "NZD",
        "",
        "DRAFT",
        "Inclusive",
        "Monthly subscription",
        "1",
        "99.9950",
        "",
        "",
        "invoice",
        "",
    ],
]
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_CURRENCY = re.compile(r"^[A-Za-z]{3}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_AMOUNT_TYPES = {v.lower(): v for v in Invoice.LineAmountTypes.values}
_KINDS = {"": KIND_INVOICE, "invoice": KIND_INVOICE, "credit note": KIND_CREDIT_NOTE, "credit_note": KIND_CREDIT_NOTE}


@dataclass(frozen=True)
class RowError:
    row: int  # 1 is the header row, as in a spreadsheet
    column: str
    message: str


@dataclass
class CsvBatch:
    invoices: list[InvoiceInput] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    rows: int = 0
    invoice_rows: list[int] = field(default_factory=list)  # first row of each invoice, for the service's problems
    line_rows: list[list[int]] = field(default_factory=list)  # each invoice's lines' rows, for line problems

    @property
    def ok(self) -> bool:
        return not self.errors

    def errors_for(self, problems: Iterable[BatchProblem]) -> list[RowError]:
        return [
            RowError(
                row=self._row_of(p), column="invoice_number" if p.field == "number" else p.field, message=p.message
            )
            for p in problems
        ]

    def _row_of(self, problem: BatchProblem) -> int:
        if problem.index is None:
            return 1
        if problem.line is not None and problem.index < len(self.line_rows):
            rows = self.line_rows[problem.index]
            if problem.line < len(rows):
                return rows[problem.line]
        return self.invoice_rows[problem.index]


def sample_csv() -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMN_NAMES)
    writer.writerows(SAMPLE_ROWS)
    return out.getvalue()


# Thousands grouped by commas with a point for the decimals ("1,250.00") is unambiguous; any other comma is not:
# "12,50" is 12.50 in much of Europe and 1250 to a reader of "1,250". The organisation has no locale setting yet.
_GROUPED = re.compile(r"^[+-]?\d{1,3}(,\d{3})+\.\d+$")
DECIMAL_COMMA_MESSAGE = (
    "“{text}”: use a point as the decimal separator (12.50, not 12,50), without thousands separators."
)


def _decimal(
    text: str,
    *,
    column: str,
    row: int,
    errors: list[RowError],
    default: Decimal | None = None,
    locale: Locale = ISO,
) -> Decimal | None:
    if not text:
        if default is None:
            errors.append(RowError(row, column, "Required."))
        return default
    if locale.decimal_comma:
        try:
            text = str(decimal_comma_read(text))
        except NumberUnreadable as exc:
            errors.append(RowError(row, column, exc.message))
            return None
    elif "," in text:
        if not _GROUPED.match(text):
            errors.append(RowError(row, column, DECIMAL_COMMA_MESSAGE.format(text=text[:40])))
            return None
        text = text.replace(",", "")
    try:
        value = Decimal(text)
    except InvalidOperation:
        errors.append(RowError(row, column, f"“{text[:40]}” is not a number."))
        return None
    if not value.is_finite():
        errors.append(RowError(row, column, f"“{text[:40]}” is not a number."))
        return None
    if value.as_tuple().exponent < -4:  # type: ignore[operator]
        errors.append(RowError(row, column, "Use at most 4 decimal places."))
        return None
    if abs(value) >= Decimal("1e10"):
        errors.append(RowError(row, column, "That number is too large: at most 10 digits before the decimal point."))
        return None
    return value


def _date(
    text: str, *, column: str, row: int, errors: list[RowError], locale: Locale = ISO, default: dt.date | None = None
) -> dt.date | None:
    if not text:
        if default is None:
            errors.append(RowError(row, column, f"Required ({locale.date_help})."))
        return default
    if not _DATE.match(text):
        # The locale's own format (03/12/2026 in en-AU); a day and month that could be swapped are read its way.
        reading = date_read(text, locale)
        if reading is None:
            errors.append(RowError(row, column, f"“{text[:40]}” is not a date in the form {locale.date_help}."))
            return None
        return reading.value
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        errors.append(RowError(row, column, f"{text} is not a real date."))
        return None


def parse_batch_csv(
    raw: bytes,
    *,
    max_rows: int = MAX_ROWS,
    max_bytes: int = MAX_BYTES,
    locale: Locale = ISO,
    today: dt.date | None = None,
) -> CsvBatch:
    """`locale`: the organisation's (dates and decimal commas); `today`: its today, for an empty issue_date."""
    result = CsvBatch()
    errors = result.errors
    if len(raw) > max_bytes:
        errors.append(
            RowError(
                0,
                "",
                f"The file is {len(raw) / 1024 / 1024:.1f} MB; the limit is "
                f"{max_bytes // 1024 // 1024} MB. Split it into several batches.",
            )
        )
        return result
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        errors.append(RowError(0, "", "The file is not UTF-8 text. Save it as “CSV UTF-8” and upload it again."))
        return result
    first_line = text.split("\n", 1)[0]
    # A spreadsheet in a decimal-comma locale saves "CSV" with semicolons between the cells.
    delimiter = ";" if ";" in first_line and "," not in first_line else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except (StopIteration, csv.Error):
        errors.append(RowError(1, "", "The file is empty. The first row must name the columns."))
        return result
    columns = [h.strip().lower() for h in header]
    unknown = [c for c in columns if c and c not in COLUMN_NAMES]
    for name in unknown:
        errors.append(RowError(1, name, "Unknown column. See the list of columns below."))
    for name in REQUIRED:
        if name not in columns:
            errors.append(RowError(1, name, "Missing column."))
    duplicates = {c for c in columns if c and columns.count(c) > 1}
    for name in sorted(duplicates):
        errors.append(RowError(1, name, "This column appears twice."))
    if errors:
        return result

    groups: dict[str, dict] = {}
    order: list[str] = []
    row_number = 1
    try:
        for cells in reader:
            row_number += 1
            if not any(c.strip() for c in cells):
                continue
            result.rows += 1
            if result.rows > max_rows:
                errors.insert(
                    0,
                    RowError(
                        row_number, "", f"The file has more than {max_rows:,} rows. Split it into several batches."
                    ),
                )
                return result
            if len(cells) > len(columns):
                errors.append(
                    RowError(
                        row_number, "", f"This row has {len(cells)} cells but the header names {len(columns)} columns."
                    )
                )
                continue
            values = {name: (cells[i].strip() if i < len(cells) else "") for i, name in enumerate(columns) if name}
            nul = [name for name, value in values.items() if "\x00" in value]
            if nul:
                # PostgreSQL cannot store a NUL character in text; a spreadsheet never shows it.
                errors.extend(
                    RowError(row_number, name, "Holds a NUL character (byte 0), which is not text: remove it.")
                    for name in nul
                )
                continue
            _read_row(values, row_number, groups, order, errors, locale=locale, today=today)
    except csv.Error as exc:
        errors.append(RowError(row_number + 1, "", f"The file could not be read as CSV here: {exc}."))
        return result
    if result.rows == 0:
        errors.append(RowError(2, "", "The file has a header but no rows."))
    if errors:
        return result
    for key in order:
        group = groups[key]
        result.invoices.append(
            InvoiceInput(lines=group.pop("lines"), **{k: v for k, v in group.items() if not k.startswith("_")})
        )
        result.invoice_rows.append(group["_row"])
        result.line_rows.append(group["_line_rows"])
    return result


def _read_row(
    values: dict[str, str],
    row: int,
    groups: dict[str, dict],
    order: list[str],
    errors: list[RowError],
    *,
    locale: Locale = ISO,
    today: dt.date | None = None,
) -> None:
    before = len(errors)
    number = values.get("invoice_number", "")
    kind = _KINDS.get(" ".join(values.get("type", "").lower().replace("-", " ").split()))
    if not values.get("type", "").strip() and number:
        # A later row of a credit note may leave its type blank, like its other document-level cells.
        credit_key = f"{KIND_CREDIT_NOTE}:{number.lower()}"
        if credit_key in groups and f"{KIND_INVOICE}:{number.lower()}" not in groups:
            kind = KIND_CREDIT_NOTE
    # Invoices and credit notes have their own numbers: INV-1 and a credit note INV-1 are two documents.
    group_key = f"{kind}:{number.lower()}"
    existing = groups.get(group_key) if number and kind else None
    if existing is not None:
        # Later rows of an invoice may leave its invoice-level cells blank (they take the first row's values),
        # but must not contradict the first row.
        for name in INVOICE_FIELDS:
            given, first = values.get(name, ""), existing["_raw"].get(name, "")
            if not given:
                values[name] = first
            elif given.lower() != first.lower():
                errors.append(
                    RowError(
                        row, name, f"Differs from row {existing['_row']} of invoice {existing['number']} (“{first}”)."
                    )
                )
    if kind is None:
        errors.append(RowError(row, "type", f"“{values.get('type', '')[:40]}”: use “invoice” or “credit note”."))
    allocate_to = values.get("allocate_to", "")
    if len(allocate_to) > 255:
        errors.append(RowError(row, "allocate_to", "At most 255 characters."))
    if not number:
        errors.append(RowError(row, "invoice_number", "Required."))
    elif len(number) > 255:
        errors.append(RowError(row, "invoice_number", "At most 255 characters."))
    customer = values.get("customer_name", "")
    if not customer:
        errors.append(RowError(row, "customer_name", "Required."))
    elif len(customer) > 255:
        errors.append(RowError(row, "customer_name", "At most 255 characters."))
    email = values.get("customer_email", "")
    if email and not _EMAIL.match(email):
        errors.append(RowError(row, "customer_email", f"“{email[:60]}” is not an email address."))
    issue = _date(
        values.get("issue_date", ""), column="issue_date", row=row, errors=errors, locale=locale, default=today
    )
    due = _date(values.get("due_date", ""), column="due_date", row=row, errors=errors, locale=locale)
    if issue and due and due < issue:
        errors.append(RowError(row, "due_date", "The due date is before the issue date."))
    currency = values.get("currency", "")
    if not _CURRENCY.match(currency):
        errors.append(
            RowError(
                row, "currency", "Use a three-letter currency code such as AUD." if currency else "Required (e.g. AUD)."
            )
        )
    status = (values.get("status", "") or Invoice.Status.AUTHORISED).upper()
    if status not in CREATABLE_STATUSES:
        errors.append(RowError(row, "status", "Use DRAFT, SUBMITTED or AUTHORISED."))
    amount_types = _AMOUNT_TYPES.get((values.get("line_amount_types", "") or "Exclusive").lower())
    if amount_types is None:
        errors.append(RowError(row, "line_amount_types", "Use Exclusive, Inclusive or NoTax."))
    reference = values.get("reference", "")
    if len(reference) > 255:
        errors.append(RowError(row, "reference", "At most 255 characters."))
    description = values.get("description", "")
    if not description:
        errors.append(RowError(row, "description", "Required."))
    elif len(description) > 4000:
        errors.append(RowError(row, "description", "At most 4,000 characters."))
    quantity = _decimal(
        values.get("quantity", ""), column="quantity", row=row, errors=errors, default=Decimal("1"), locale=locale
    )
    quantity_problem = line_quantity_problem(quantity)
    if quantity_problem:
        errors.append(RowError(row, "quantity", quantity_problem))
    unit_amount = _decimal(values.get("unit_amount", ""), column="unit_amount", row=row, errors=errors, locale=locale)
    account_code = values.get("account_code", "")
    if len(account_code) > 10:
        errors.append(RowError(row, "account_code", "Xero account codes have at most 10 characters."))
    tax_type = values.get("tax_type", "")
    if len(tax_type) > 50:
        errors.append(RowError(row, "tax_type", "At most 50 characters."))
    if len(errors) > before or not number:
        return

    invoice = {
        "customer_name": customer,
        "customer_email": email,
        "issue_date": issue,
        "due_date": due,
        "currency": currency.upper(),
        "reference": reference,
        "status": status,
        "line_amount_types": amount_types,
        "kind": kind,
        "allocate_to": allocate_to,
    }
    key = group_key
    group = groups.get(key)
    if group is None:
        groups[key] = {
            "number": number,
            **invoice,
            "lines": [],
            "_row": row,
            "_line_rows": [],
            "_raw": {name: values.get(name, "") for name in INVOICE_FIELDS},
        }
        order.append(key)
        group = groups[key]
    group["_line_rows"].append(row)
    group["lines"].append(
        LineInput(
            description=description,
            quantity=quantity,
            unit_amount=unit_amount,
            account_code=account_code,
            tax_type=tax_type,
        )
    )
