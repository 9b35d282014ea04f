"""The two-way sync's "Created in Xero" feature and the edit / void / delete of an invoice already in Xero: `models`
(imported by invoices/models.py so Django sees them in the invoices app), `selectors`, `views` and `urls`."""
