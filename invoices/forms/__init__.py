"""Forms for creating invoice batches (several invoices, each with several lines), CSV upload, mapping and editing
an invoice already in Xero, one module per page: `batch` and `entry` (the new-batch page; `CsvUploadForm` for the
upload page), `mapping` (Settings → Xero mapping), `edit` (the edit page), and `fields` and `locale` (the
organisation's number and date input) they share. Every public
name is importable from here.
"""

from invoices.forms.batch import (
    BLANK_LINES,
    MAX_FORM_INVOICES,
    BatchNameForm,
    CsvUploadForm,
    InvoiceForm,
    InvoiceFormSet,
    LineForm,
    LineFormSet,
    default_invoice_initial,
)
from invoices.forms.edit import (
    BaseLineEditFormSet,
    InvoiceEditForm,
    LineEditForm,
    LineEditFormSet,
    line_edit_initial,
    line_edits,
)
from invoices.forms.entry import BatchEntry, entry_as_credit_note, entry_with_added_invoice, entry_with_added_line
from invoices.forms.fields import (
    DATE_FORMATS,
    DECIMAL_ERRORS,
    MAX_FORM_LINES,
    DateInput,
    IsoDateInput,
    iso_date_field,
    quantity_field,
    unit_amount_field,
)
from invoices.forms.locale import LocaleFormMixin
from invoices.forms.mapping import MappingForm

__all__ = [
    "BLANK_LINES",
    "DATE_FORMATS",
    "DECIMAL_ERRORS",
    "MAX_FORM_INVOICES",
    "MAX_FORM_LINES",
    "BaseLineEditFormSet",
    "BatchEntry",
    "BatchNameForm",
    "CsvUploadForm",
    "DateInput",
    "InvoiceEditForm",
    "InvoiceForm",
    "InvoiceFormSet",
    "IsoDateInput",
    "LineEditForm",
    "LineEditFormSet",
    "LineForm",
    "LineFormSet",
    "LocaleFormMixin",
    "MappingForm",
    "default_invoice_initial",
    "entry_as_credit_note",
    "entry_with_added_invoice",
    "entry_with_added_line",
    "iso_date_field",
    "line_edit_initial",
    "line_edits",
    "quantity_field",
    "unit_amount_field",
]
