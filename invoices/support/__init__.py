"""Support's read-only pages of a tenant's batches and invoices: `views` and `urls`."""
