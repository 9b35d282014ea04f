"""What a batch is made of: the typed inputs the form and the CSV build, the problems found in them, and the limits
and words both share."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from invoices.models import Invoice, InvoiceBatch

MAX_INVOICES_PER_BATCH = 5000
MAX_LINES_PER_INVOICE = 200
NUMBER_MAX_LENGTH = Invoice._meta.get_field("number").max_length
CREATABLE_STATUSES = (Invoice.Status.DRAFT, Invoice.Status.SUBMITTED, Invoice.Status.AUTHORISED)
_CURRENCY = re.compile(r"^[A-Z]{3}$")
NEGATIVE_TOTAL_MESSAGE = (
    "This invoice's total is below zero: Xero does not take negative invoices, use a credit note instead "
    "(type “Credit note”, with the amounts as positive numbers)."
)
NEGATIVE_CREDIT_NOTE_MESSAGE = (
    "A credit note's total cannot be below zero: enter the amounts to credit as positive numbers."
)
# What a batch line can be: an invoice (PUT /Invoices) or a credit note (PUT /CreditNotes, its own number space).
KIND_INVOICE, KIND_CREDIT_NOTE = "invoice", "credit_note"
KINDS = {KIND_INVOICE: "Invoice", KIND_CREDIT_NOTE: "Credit note"}
NOT_SYNCED_REASONS = {
    InvoiceBatch.Eligibility.BEFORE_CONNECTION: "Created before Xero was connected, so it is not synced to Xero.",
    InvoiceBatch.Eligibility.WHILE_DISCONNECTED: "Created while Xero was disconnected, so it is not synced to Xero.",
}


@dataclass(frozen=True)
class LineInput:
    description: str
    quantity: Decimal
    unit_amount: Decimal
    account_code: str = ""
    tax_type: str = ""


@dataclass(frozen=True)
class InvoiceInput:
    customer_name: str
    number: str
    issue_date: dt.date
    due_date: dt.date
    currency: str
    lines: Sequence[LineInput]
    customer_email: str = ""
    reference: str = ""
    line_amount_types: str = Invoice.LineAmountTypes.EXCLUSIVE
    status: str = Invoice.Status.AUTHORISED
    kind: str = KIND_INVOICE  # KIND_INVOICE | KIND_CREDIT_NOTE
    allocate_to: str = ""  # a credit note only: the number of an invoice of the same customer to allocate it to

    @property
    def is_credit_note(self) -> bool:
        return self.kind == KIND_CREDIT_NOTE


@dataclass(frozen=True)
class BatchProblem:
    """One thing wrong with the input: which invoice (0-based position, None for the batch), which of its lines
    (0-based, None for the invoice itself), which field, what."""

    index: int | None
    field: str
    message: str
    line: int | None = None


class BatchInvalid(Exception):
    def __init__(self, problems: list[BatchProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(p.message for p in problems))


@dataclass
class _Totals:
    tax_rate: Decimal = Decimal("0")
    tax_rates: dict[str, Decimal] = field(default_factory=dict)
