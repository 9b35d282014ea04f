"""The documented CSV format (its columns, limits and sample, also rendered on the upload page) and what reading a
file gives: the invoices, or every bad row."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field

from invoices.services.batches.inputs import BatchProblem, InvoiceInput

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
