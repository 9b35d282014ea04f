"""The two-way sync's "Created in Xero" feature and the edit / void / delete of an invoice already in Xero: `models`
(re-exported by invoices/models/ so Django sees them in the invoices app), `selectors`, `views` and `urls`."""
