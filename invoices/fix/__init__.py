"""Fix and resend pages (issue 12): `forms` and `views`. The work itself is invoices/services/fix/; the templates are
templates/invoices/fix/."""
