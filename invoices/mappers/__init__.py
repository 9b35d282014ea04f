"""Pure functions between our invoices and Xero's JSON. No I/O, no writes. One module per concern, every name
importable from here:

- `totals`: Xero's rounding of lines and invoices, the bounds of our amount columns
- `payloads`: our invoices, credit notes and customers as the JSON Xero takes
- `answers`: Xero's answers read into our terms (its datetimes, the outcome of each element)
- `choices`: the revenue accounts and tax rates the mapping page offers
"""

from invoices.mappers.answers import (
    EMPTY_XERO_ID,
    ContactOutcome,
    InvoiceOutcome,
    contact_outcome,
    contact_outcomes,
    invoice_outcome,
    invoice_outcomes,
    parse_xero_datetime,
)
from invoices.mappers.choices import (
    REVENUE_ACCOUNT_TYPES,
    AccountChoice,
    TaxRateChoice,
    revenue_accounts,
    revenue_tax_rates,
)
from invoices.mappers.payloads import (
    MappingRequired,
    contact_payload,
    credit_note_to_xero_payload,
    invoice_to_xero_payload,
    line_item_payload,
    needs_four_decimal_units,
    plain_decimal,
)
from invoices.mappers.totals import (
    EXCLUSIVE,
    FOUR_DP,
    HUNDRED,
    INCLUSIVE,
    LINE_AMOUNT_TYPES,
    MAX_QUANTITY,
    MAX_TOTAL,
    MAX_UNIT_AMOUNT,
    NO_TAX,
    TWO_DP,
    ZERO,
    InvoiceTotals,
    LineTotals,
    invoice_totals,
    line_amount,
    line_totals,
    round_money,
)

__all__ = [
    "AccountChoice",
    "ContactOutcome",
    "EMPTY_XERO_ID",
    "EXCLUSIVE",
    "FOUR_DP",
    "HUNDRED",
    "INCLUSIVE",
    "InvoiceOutcome",
    "InvoiceTotals",
    "LINE_AMOUNT_TYPES",
    "LineTotals",
    "MAX_QUANTITY",
    "MAX_TOTAL",
    "MAX_UNIT_AMOUNT",
    "MappingRequired",
    "NO_TAX",
    "REVENUE_ACCOUNT_TYPES",
    "TWO_DP",
    "TaxRateChoice",
    "ZERO",
    "contact_outcome",
    "contact_outcomes",
    "contact_payload",
    "credit_note_to_xero_payload",
    "invoice_outcome",
    "invoice_outcomes",
    "invoice_to_xero_payload",
    "invoice_totals",
    "line_amount",
    "line_item_payload",
    "line_totals",
    "needs_four_decimal_units",
    "parse_xero_datetime",
    "plain_decimal",
    "revenue_accounts",
    "revenue_tax_rates",
    "round_money",
]
