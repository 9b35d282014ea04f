"""Old path of invoices/created_in_xero/models.py, kept only for invoices/management/commands/seed_scale.py, which
another branch is editing; remove once that import reads `invoices.created_in_xero.models`."""

from invoices.created_in_xero.models import XeroContactVersion, XeroCreatedInvoice, XeroInvoiceChange

__all__ = ["XeroContactVersion", "XeroCreatedInvoice", "XeroInvoiceChange"]
