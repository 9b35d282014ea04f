"""Apply what Xero holds to what we hold: invoices, contacts and credit notes fetched after a webhook, a reconciliation
poll or our own write. Only a copy newer than ours (Xero's UpdatedDateUTC) is applied, so running it twice, or with
deliveries out of order, leaves the newest state. Every change to an invoice is written to its history.

Registered with integrations through settings.XERO_RESOURCE_APPLIERS (the dependency runs invoices -> integrations).

`reading` reads Xero's JSON and compares it with ours, `invoices`, `contacts` and `credit_notes` apply it. Every public
name is importable from here, where settings.XERO_RESOURCE_APPLIERS names the appliers.
"""

from invoices.services.apply.contacts import contact_apply_from_xero, contacts_apply_from_xero
from invoices.services.apply.credit_notes import credit_notes_apply_from_xero, credit_notes_to_reconcile
from invoices.services.apply.invoices import (
    SOURCE_OUTBOUND,
    SOURCE_RECONCILE,
    SOURCE_WEBHOOK,
    STATUSES,
    invoice_apply_from_xero,
    invoices_apply_from_xero,
    payments_apply_from_xero,
)
from invoices.services.apply.reading import invoice_differences, xero_date, xero_updated_at

__all__ = [
    "SOURCE_OUTBOUND",
    "SOURCE_RECONCILE",
    "SOURCE_WEBHOOK",
    "STATUSES",
    "contact_apply_from_xero",
    "contacts_apply_from_xero",
    "credit_notes_apply_from_xero",
    "credit_notes_to_reconcile",
    "invoice_apply_from_xero",
    "invoice_differences",
    "invoices_apply_from_xero",
    "payments_apply_from_xero",
    "xero_date",
    "xero_updated_at",
]
