"""Checking one row's cells (dates and amounts in the organisation's locale, and every other column) and grouping
the good rows into invoices and credit notes."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation

from invoices.csv_import.columns import INVOICE_FIELDS, RowError
from invoices.models import Invoice
from invoices.services.batches.inputs import CREATABLE_STATUSES, KIND_CREDIT_NOTE, KIND_INVOICE, LineInput
from invoices.services.batches.validation import line_quantity_problem
from organisations.locale import ISO, Locale, NumberUnreadable, date_read, decimal_comma_read

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_CURRENCY = re.compile(r"^[A-Za-z]{3}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_AMOUNT_TYPES = {v.lower(): v for v in Invoice.LineAmountTypes.values}
_KINDS = {"": KIND_INVOICE, "invoice": KIND_INVOICE, "credit note": KIND_CREDIT_NOTE, "credit_note": KIND_CREDIT_NOTE}


# Thousands grouped by commas with a point for the decimals ("1,250.00") is unambiguous; any other comma is not:
# "12,50" is 12.50 in much of Europe and 1250 to a reader of "1,250". The organisation has no locale setting yet.
_GROUPED = re.compile(r"^[+-]?\d{1,3}(,\d{3})+\.\d+$")
DECIMAL_COMMA_MESSAGE = (
    "“{text}”: use a point as the decimal separator (12.50, not 12,50), without thousands separators."
)


def _decimal(
    text: str,
    *,
    column: str,
    row: int,
    errors: list[RowError],
    default: Decimal | None = None,
    locale: Locale = ISO,
) -> Decimal | None:
    if not text:
        if default is None:
            errors.append(RowError(row, column, "Required."))
        return default
    if locale.decimal_comma:
        try:
            text = str(decimal_comma_read(text))
        except NumberUnreadable as exc:
            errors.append(RowError(row, column, exc.message))
            return None
    elif "," in text:
        if not _GROUPED.match(text):
            errors.append(RowError(row, column, DECIMAL_COMMA_MESSAGE.format(text=text[:40])))
            return None
        text = text.replace(",", "")
    try:
        value = Decimal(text)
    except InvalidOperation:
        errors.append(RowError(row, column, f"“{text[:40]}” is not a number."))
        return None
    if not value.is_finite():
        errors.append(RowError(row, column, f"“{text[:40]}” is not a number."))
        return None
    if value.as_tuple().exponent < -4:  # type: ignore[operator]
        errors.append(RowError(row, column, "Use at most 4 decimal places."))
        return None
    if abs(value) >= Decimal("1e10"):
        errors.append(RowError(row, column, "That number is too large: at most 10 digits before the decimal point."))
        return None
    return value


def _date(
    text: str, *, column: str, row: int, errors: list[RowError], locale: Locale = ISO, default: dt.date | None = None
) -> dt.date | None:
    if not text:
        if default is None:
            errors.append(RowError(row, column, f"Required ({locale.date_help})."))
        return default
    if not _DATE.match(text):
        # The locale's own format (03/12/2026 in en-AU); a day and month that could be swapped are read its way.
        reading = date_read(text, locale)
        if reading is None:
            errors.append(RowError(row, column, f"“{text[:40]}” is not a date in the form {locale.date_help}."))
            return None
        return reading.value
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        errors.append(RowError(row, column, f"{text} is not a real date."))
        return None


def _read_row(
    values: dict[str, str],
    row: int,
    groups: dict[str, dict],
    order: list[str],
    errors: list[RowError],
    *,
    locale: Locale = ISO,
    today: dt.date | None = None,
) -> None:
    before = len(errors)
    number = values.get("invoice_number", "")
    kind = _KINDS.get(" ".join(values.get("type", "").lower().replace("-", " ").split()))
    if not values.get("type", "").strip() and number:
        # A later row of a credit note may leave its type blank, like its other document-level cells.
        credit_key = f"{KIND_CREDIT_NOTE}:{number.lower()}"
        if credit_key in groups and f"{KIND_INVOICE}:{number.lower()}" not in groups:
            kind = KIND_CREDIT_NOTE
    # Invoices and credit notes have their own numbers: INV-1 and a credit note INV-1 are two documents.
    group_key = f"{kind}:{number.lower()}"
    existing = groups.get(group_key) if number and kind else None
    if existing is not None:
        # Later rows of an invoice may leave its invoice-level cells blank (they take the first row's values),
        # but must not contradict the first row.
        for name in INVOICE_FIELDS:
            given, first = values.get(name, ""), existing["_raw"].get(name, "")
            if not given:
                values[name] = first
            elif given.lower() != first.lower():
                errors.append(
                    RowError(
                        row, name, f"Differs from row {existing['_row']} of invoice {existing['number']} (“{first}”)."
                    )
                )
    if kind is None:
        errors.append(RowError(row, "type", f"“{values.get('type', '')[:40]}”: use “invoice” or “credit note”."))
    allocate_to = values.get("allocate_to", "")
    if len(allocate_to) > 255:
        errors.append(RowError(row, "allocate_to", "At most 255 characters."))
    if not number:
        errors.append(RowError(row, "invoice_number", "Required."))
    elif len(number) > 255:
        errors.append(RowError(row, "invoice_number", "At most 255 characters."))
    customer = values.get("customer_name", "")
    if not customer:
        errors.append(RowError(row, "customer_name", "Required."))
    elif len(customer) > 255:
        errors.append(RowError(row, "customer_name", "At most 255 characters."))
    email = values.get("customer_email", "")
    if email and not _EMAIL.match(email):
        errors.append(RowError(row, "customer_email", f"“{email[:60]}” is not an email address."))
    issue = _date(
        values.get("issue_date", ""), column="issue_date", row=row, errors=errors, locale=locale, default=today
    )
    due = _date(values.get("due_date", ""), column="due_date", row=row, errors=errors, locale=locale)
    if issue and due and due < issue:
        errors.append(RowError(row, "due_date", "The due date is before the issue date."))
    currency = values.get("currency", "")
    if not _CURRENCY.match(currency):
        errors.append(
            RowError(
                row, "currency", "Use a three-letter currency code such as AUD." if currency else "Required (e.g. AUD)."
            )
        )
    status = (values.get("status", "") or Invoice.Status.AUTHORISED).upper()
    if status not in CREATABLE_STATUSES:
        errors.append(RowError(row, "status", "Use DRAFT, SUBMITTED or AUTHORISED."))
    amount_types = _AMOUNT_TYPES.get((values.get("line_amount_types", "") or "Exclusive").lower())
    if amount_types is None:
        errors.append(RowError(row, "line_amount_types", "Use Exclusive, Inclusive or NoTax."))
    reference = values.get("reference", "")
    if len(reference) > 255:
        errors.append(RowError(row, "reference", "At most 255 characters."))
    description = values.get("description", "")
    if not description:
        errors.append(RowError(row, "description", "Required."))
    elif len(description) > 4000:
        errors.append(RowError(row, "description", "At most 4,000 characters."))
    quantity = _decimal(
        values.get("quantity", ""), column="quantity", row=row, errors=errors, default=Decimal("1"), locale=locale
    )
    quantity_problem = line_quantity_problem(quantity)
    if quantity_problem:
        errors.append(RowError(row, "quantity", quantity_problem))
    unit_amount = _decimal(values.get("unit_amount", ""), column="unit_amount", row=row, errors=errors, locale=locale)
    account_code = values.get("account_code", "")
    if len(account_code) > 10:
        errors.append(RowError(row, "account_code", "Xero account codes have at most 10 characters."))
    tax_type = values.get("tax_type", "")
    if len(tax_type) > 50:
        errors.append(RowError(row, "tax_type", "At most 50 characters."))
    if len(errors) > before or not number:
        return

    invoice = {
        "customer_name": customer,
        "customer_email": email,
        "issue_date": issue,
        "due_date": due,
        "currency": currency.upper(),
        "reference": reference,
        "status": status,
        "line_amount_types": amount_types,
        "kind": kind,
        "allocate_to": allocate_to,
    }
    key = group_key
    group = groups.get(key)
    if group is None:
        groups[key] = {
            "number": number,
            **invoice,
            "lines": [],
            "_row": row,
            "_line_rows": [],
            "_raw": {name: values.get(name, "") for name in INVOICE_FIELDS},
        }
        order.append(key)
        group = groups[key]
    group["_line_rows"].append(row)
    group["lines"].append(
        LineInput(
            description=description,
            quantity=quantity,
            unit_amount=unit_amount,
            account_code=account_code,
            tax_type=tax_type,
        )
    )
