"""Reading a whole file: its size, encoding, delimiter and header, then each row, and the invoices built from them."""

from __future__ import annotations

import csv
import datetime as dt
import io

from invoices.csv_import.columns import COLUMN_NAMES, MAX_BYTES, MAX_ROWS, REQUIRED, CsvBatch, RowError
from invoices.csv_import.validate import _read_row
from invoices.services.batches.inputs import InvoiceInput
from organisations.locale import ISO, Locale


def parse_batch_csv(
    raw: bytes,
    *,
    max_rows: int = MAX_ROWS,
    max_bytes: int = MAX_BYTES,
    locale: Locale = ISO,
    today: dt.date | None = None,
) -> CsvBatch:
    """`locale`: the organisation's (dates and decimal commas); `today`: its today, for an empty issue_date."""
    result = CsvBatch()
    errors = result.errors
    if len(raw) > max_bytes:
        errors.append(
            RowError(
                0,
                "",
                f"The file is {len(raw) / 1024 / 1024:.1f} MB; the limit is "
                f"{max_bytes // 1024 // 1024} MB. Split it into several batches.",
            )
        )
        return result
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        errors.append(RowError(0, "", "The file is not UTF-8 text. Save it as “CSV UTF-8” and upload it again."))
        return result
    first_line = text.split("\n", 1)[0]
    # A spreadsheet in a decimal-comma locale saves "CSV" with semicolons between the cells.
    delimiter = ";" if ";" in first_line and "," not in first_line else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except (StopIteration, csv.Error):
        errors.append(RowError(1, "", "The file is empty. The first row must name the columns."))
        return result
    columns = [h.strip().lower() for h in header]
    unknown = [c for c in columns if c and c not in COLUMN_NAMES]
    for name in unknown:
        errors.append(RowError(1, name, "Unknown column. See the list of columns below."))
    for name in REQUIRED:
        if name not in columns:
            errors.append(RowError(1, name, "Missing column."))
    duplicates = {c for c in columns if c and columns.count(c) > 1}
    for name in sorted(duplicates):
        errors.append(RowError(1, name, "This column appears twice."))
    if errors:
        return result

    groups: dict[str, dict] = {}
    order: list[str] = []
    row_number = 1
    try:
        for cells in reader:
            row_number += 1
            if not any(c.strip() for c in cells):
                continue
            result.rows += 1
            if result.rows > max_rows:
                errors.insert(
                    0,
                    RowError(
                        row_number, "", f"The file has more than {max_rows:,} rows. Split it into several batches."
                    ),
                )
                return result
            if len(cells) > len(columns):
                errors.append(
                    RowError(
                        row_number, "", f"This row has {len(cells)} cells but the header names {len(columns)} columns."
                    )
                )
                continue
            values = {name: (cells[i].strip() if i < len(cells) else "") for i, name in enumerate(columns) if name}
            nul = [name for name, value in values.items() if "\x00" in value]
            if nul:
                # PostgreSQL cannot store a NUL character in text; a spreadsheet never shows it.
                errors.extend(
                    RowError(row_number, name, "Holds a NUL character (byte 0), which is not text: remove it.")
                    for name in nul
                )
                continue
            _read_row(values, row_number, groups, order, errors, locale=locale, today=today)
    except csv.Error as exc:
        errors.append(RowError(row_number + 1, "", f"The file could not be read as CSV here: {exc}."))
        return result
    if result.rows == 0:
        errors.append(RowError(2, "", "The file has a header but no rows."))
    if errors:
        return result
    for key in order:
        group = groups[key]
        result.invoices.append(
            InvoiceInput(lines=group.pop("lines"), **{k: v for k, v in group.items() if not k.startswith("_")})
        )
        result.invoice_rows.append(group["_row"])
        result.line_rows.append(group["_line_rows"])
    return result
