"""Xero API usage per organisation and minute: models.py (XeroApiUsage, registered in the integrations app),
record.py (the one upsert per call the front door makes), selectors.py (what the charts, the first-run checklist and
/metrics read), chart.py (the support console's charts as SVG geometry). Import from the module you need."""
