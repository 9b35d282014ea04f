"""Create invoice batches (from the form or a CSV upload): one atomic service both go through.

`inputs` holds what a batch is made of, `numbering` the invoice numbers, `validation` every check made before
anything is written, `documents` the rows written and `create` the service itself. Every public name is importable
from here."""

from invoices.services.batches.create import _totals_context, batch_create, batch_eligibility_now
from invoices.services.batches.documents import _customers
from invoices.services.batches.inputs import (
    CREATABLE_STATUSES,
    KIND_CREDIT_NOTE,
    KIND_INVOICE,
    KINDS,
    MAX_INVOICES_PER_BATCH,
    MAX_LINES_PER_INVOICE,
    NEGATIVE_CREDIT_NOTE_MESSAGE,
    NEGATIVE_TOTAL_MESSAGE,
    NOT_SYNCED_REASONS,
    NUMBER_MAX_LENGTH,
    BatchInvalid,
    BatchProblem,
    InvoiceInput,
    LineInput,
)
from invoices.services.batches.numbering import invoice_numbers_suggest
from invoices.services.batches.validation import (
    LineChart,
    batch_problems,
    currency_problem,
    line_chart,
    line_quantity_problem,
)

__all__ = [
    "CREATABLE_STATUSES",
    "KINDS",
    "KIND_CREDIT_NOTE",
    "KIND_INVOICE",
    "MAX_INVOICES_PER_BATCH",
    "MAX_LINES_PER_INVOICE",
    "NEGATIVE_CREDIT_NOTE_MESSAGE",
    "NEGATIVE_TOTAL_MESSAGE",
    "NOT_SYNCED_REASONS",
    "NUMBER_MAX_LENGTH",
    "BatchInvalid",
    "BatchProblem",
    "InvoiceInput",
    "LineChart",
    "LineInput",
    "_customers",  # invoices.services.fix builds its invoice with the batch's own helpers
    "_totals_context",
    "batch_create",
    "batch_eligibility_now",
    "batch_problems",
    "currency_problem",
    "invoice_numbers_suggest",
    "line_chart",
    "line_quantity_problem",
]
