"""The invoices app's models, one module per concern; every model (and `customer_name_key`) is importable from here,
and importing this package is how Django sees them all in the invoices app (app_label `invoices`, tables unchanged).

- `customers`: `Customer`, `customer_name_key`
- `batches`: `InvoiceBatch`
- `invoices`: `Invoice`, `DocumentLine` (abstract), `InvoiceLine`, `XeroMapping`
- `events`: `DocumentEvent` (abstract), `InvoiceEvent`
- `payments`: `Payment`; `cancelled`: `CancelledInvoice`
- `credit_notes`: `CreditNote`, `CreditNoteLine`, `CreditNoteAllocation`, `CreditNoteEvent`
- invoices/created_in_xero/models.py: `XeroCreatedInvoice`, `XeroContactVersion`, `XeroInvoiceChange`
"""

# In the order Django saw the models when they were one module (their registration order, and so the order of each
# model's reverse relations, stays as it was).
# isort: off
from invoices.models.customers import Customer, customer_name_key
from invoices.models.batches import InvoiceBatch
from invoices.models.invoices import DocumentLine, Invoice, InvoiceLine, XeroMapping
from invoices.models.events import DocumentEvent, InvoiceEvent
from invoices.models.payments import Payment
from invoices.models.cancelled import CancelledInvoice
from invoices.models.credit_notes import CreditNote, CreditNoteAllocation, CreditNoteEvent, CreditNoteLine
from invoices.created_in_xero.models import XeroContactVersion, XeroCreatedInvoice, XeroInvoiceChange
# isort: on

__all__ = [
    "CancelledInvoice",
    "CreditNote",
    "CreditNoteAllocation",
    "CreditNoteEvent",
    "CreditNoteLine",
    "Customer",
    "DocumentEvent",
    "DocumentLine",
    "Invoice",
    "InvoiceBatch",
    "InvoiceEvent",
    "InvoiceLine",
    "Payment",
    "XeroContactVersion",
    "XeroCreatedInvoice",
    "XeroInvoiceChange",
    "XeroMapping",
    "customer_name_key",
]
