"""The invoices app's pages, one module per page: `batches` (dashboard, batch list, a batch, progress, retry),
`create` (the new-batch form), `upload` (CSV upload and its sample), `mapping` (Settings → Xero mapping). Every view
is importable from here, where urls.py finds them."""

from invoices.views.batches import (
    batch_detail,
    batch_progress_partial,
    batch_retry,
    batches,
    dashboard,
    invoice_retry,
)
from invoices.views.create import batch_new
from invoices.views.mapping import mapping_settings
from invoices.views.upload import batch_sample_csv, batch_upload

__all__ = [
    "batch_detail",
    "batch_new",
    "batch_progress_partial",
    "batch_retry",
    "batch_sample_csv",
    "batch_upload",
    "batches",
    "dashboard",
    "invoice_retry",
    "mapping_settings",
]
