"""The invoice list (`/invoices/`) and its CSV export: `selectors` (filters and the filtered queryset), `views`."""
