"""Read an invoice batch from CSV: one row per line; rows sharing an invoice_number make one invoice.

Every bad row is reported (row number as a spreadsheet shows it, column, message) and nothing is imported
unless every row is good. No database access: the service checks numbers against the organisation.

`columns` is the format and the results, `validate` checks a row and groups it into invoices, `parse` reads a file.
Every public name is importable from here.
"""

from invoices.csv_import.columns import (
    COLUMN_NAMES,
    COLUMNS,
    INVOICE_FIELDS,
    MAX_BYTES,
    MAX_ERRORS_SHOWN,
    MAX_ROWS,
    REQUIRED,
    SAMPLE_ROWS,
    CsvBatch,
    RowError,
    sample_csv,
)
from invoices.csv_import.parse import parse_batch_csv
from invoices.csv_import.validate import DECIMAL_COMMA_MESSAGE

__all__ = [
    "COLUMNS",
    "COLUMN_NAMES",
    "DECIMAL_COMMA_MESSAGE",
    "INVOICE_FIELDS",
    "MAX_BYTES",
    "MAX_ERRORS_SHOWN",
    "MAX_ROWS",
    "REQUIRED",
    "SAMPLE_ROWS",
    "CsvBatch",
    "RowError",
    "parse_batch_csv",
    "sample_csv",
]
