"""The outbound engine's strategies (kinds) for this app, one module per kind of write; invoices/apps.py registers
each module's kinds with integrations/outbound/:

- `changes`: `invoice_change`, an edit, void or delete of an invoice already in Xero
- `chunks`: `invoice_chunk`, up to 50 invoices in one PUT (it runs its own call and record: invoices/services/push/)
- `contacts`: `contacts_create`, the contacts a push needs before its invoices
- `credit_notes`: `credit_note_create` and `credit_note_allocate`
"""

from invoices.outbound.changes import INVOICE_CHANGE, xero_holds
from invoices.outbound.contacts import CONTACTS_CREATE

__all__ = ["CONTACTS_CREATE", "INVOICE_CHANGE", "xero_holds"]
