"""Pure functions between our invoices and Xero's JSON: totals, payloads, parsed responses. No I/O, no writes.

Inputs are read by attribute, so model instances and simple stand-ins both work.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Protocol

TWO_DP = Decimal("0.01")
FOUR_DP = Decimal("0.0001")
ZERO = Decimal("0.00")
HUNDRED = Decimal(100)
EXCLUSIVE, INCLUSIVE, NO_TAX = "Exclusive", "Inclusive", "NoTax"
LINE_AMOUNT_TYPES = (EXCLUSIVE, INCLUSIVE, NO_TAX)
# Bounds of what our columns hold (InvoiceLine.quantity / unit_amount: 14 digits, 4 decimals; Invoice totals:
# 14 digits, 2 decimals), so nothing we accept fails to store, to render or to reach Xero whole.
MAX_QUANTITY = Decimal("9999999999.9999")
MAX_UNIT_AMOUNT = Decimal("9999999999.9999")
MAX_TOTAL = Decimal("999999999999.99")
# Xero echoes this InvoiceID/ContactID on elements it did not create.
EMPTY_XERO_ID = "00000000-0000-0000-0000-000000000000"


class MappingRequired(ValueError):
    """A line has neither its own account code / tax type nor an organisation default to fall back on."""


class _Line(Protocol):
    quantity: Decimal
    unit_amount: Decimal
    account_code: str
    tax_type: str
    description: str


class _Mapping(Protocol):
    revenue_account_code: str
    tax_type: str


# ---------------------------------------------------------------- totals (Xero's rounding)


@dataclass(frozen=True)
class LineTotals:
    line_amount: Decimal  # Quantity x UnitAmount rounded to 2 dp; gross for Inclusive, net otherwise
    tax_amount: Decimal
    net_amount: Decimal


@dataclass(frozen=True)
class InvoiceTotals:
    subtotal: Decimal
    total_tax: Decimal
    total: Decimal


def round_money(value: Decimal) -> Decimal:
    return Decimal(value).quantize(TWO_DP, rounding=ROUND_HALF_UP)


def line_amount(*, quantity: Decimal, unit_amount: Decimal) -> Decimal:
    return round_money(Decimal(quantity) * Decimal(unit_amount))


def line_totals(
    *, quantity: Decimal, unit_amount: Decimal, line_amount_types: str, tax_rate: Decimal = ZERO
) -> LineTotals:
    """One line the way Xero computes it: line amount to 2 dp (half up), tax rounded per line.

    https://developer.xero.com/documentation/api/accounting/invoices (LineAmountTypes)
    """
    if line_amount_types not in LINE_AMOUNT_TYPES:
        raise ValueError(f"Unknown LineAmountTypes {line_amount_types!r}")
    amount = line_amount(quantity=quantity, unit_amount=unit_amount)
    rate = Decimal(tax_rate)
    if line_amount_types == NO_TAX or not rate:
        tax = ZERO
    elif line_amount_types == INCLUSIVE:
        tax = round_money(amount * rate / (HUNDRED + rate))
    else:
        tax = round_money(amount * rate / HUNDRED)
    net = amount - tax if line_amount_types == INCLUSIVE else amount
    return LineTotals(line_amount=amount, tax_amount=tax, net_amount=net)


def invoice_totals(
    lines: Iterable[Any],
    *,
    line_amount_types: str,
    tax_rate: Decimal = ZERO,
    tax_rates: Mapping[str, Decimal] | None = None,
) -> InvoiceTotals:
    """Sum of the lines' Xero-rounded amounts.

    `tax_rate` is the default rate in percent; a line whose `tax_type` is in `tax_rates` uses that rate.
    """
    subtotal = total_tax = ZERO
    for line in lines:
        rate = tax_rate
        override = getattr(line, "tax_type", "") or ""
        if override and tax_rates is not None and override in tax_rates:
            rate = tax_rates[override]
        result = line_totals(
            quantity=line.quantity, unit_amount=line.unit_amount, line_amount_types=line_amount_types, tax_rate=rate
        )
        subtotal += result.net_amount
        total_tax += result.tax_amount
    return InvoiceTotals(subtotal=subtotal, total_tax=total_tax, total=subtotal + total_tax)


# ---------------------------------------------------------------- payloads


def _number(value: Decimal, places: Decimal) -> float | int:
    # A JSON number; at most 14 significant digits (our DecimalFields), so the float's repr is exact.
    quantized = Decimal(value).quantize(places, rounding=ROUND_HALF_UP).normalize()
    if quantized == quantized.to_integral_value():
        return int(quantized)
    return float(quantized)


def plain_decimal(value: Decimal | None, *, min_places: int = 0) -> str:
    """A Decimal as a person typed it: never an exponent (`1E+2`), trailing zeros dropped down to `min_places`.

    plain_decimal(Decimal("100.0000"), min_places=2) == "100.00"; plain_decimal(Decimal("99.9950")) == "99.995".
    """
    if value is None:
        return ""
    normal = Decimal(value).normalize()
    places = max(min_places, -normal.as_tuple().exponent) if normal.as_tuple().exponent < 0 else min_places
    return f"{normal:.{places}f}"


def needs_four_decimal_units(lines: Iterable[Any]) -> bool:
    """True if any unit amount has more than 2 dp: the PUT must then carry `unitdp=4` or Xero rounds it."""
    return any(Decimal(line.unit_amount) != round_money(line.unit_amount) for line in lines)


def line_item_payload(line: _Line, *, mapping: _Mapping | None, line_amount_types: str) -> dict[str, Any]:
    account_code = (line.account_code or "").strip() or (mapping.revenue_account_code if mapping else "")
    tax_type = (line.tax_type or "").strip() or (mapping.tax_type if mapping else "")
    if not account_code:
        raise MappingRequired("Choose a default revenue account in the Xero mapping settings.")
    if not tax_type and line_amount_types != NO_TAX:
        raise MappingRequired("Choose a default tax rate in the Xero mapping settings.")
    item: dict[str, Any] = {
        "Description": line.description,
        "Quantity": _number(line.quantity, FOUR_DP),
        "UnitAmount": _number(line.unit_amount, FOUR_DP),
        "AccountCode": account_code,
    }
    # Never an explicit TaxAmount: Xero computes tax from the org's own rate (certification checkpoint 9).
    if tax_type:
        item["TaxType"] = tax_type
    return item


def invoice_to_xero_payload(
    invoice: Any, lines: Sequence[_Line], *, mapping: _Mapping | None, contact_id: str
) -> dict[str, Any]:
    """One ACCREC element for PUT /Invoices. Raises MappingRequired when a line has no account or tax type.

    Contact carries only ContactID: any other field would update the contact in Xero.
    """
    if not contact_id:
        raise ValueError("The customer has no Xero ContactID yet.")
    return {
        "Type": "ACCREC",
        "Contact": {"ContactID": contact_id},
        "InvoiceNumber": invoice.number,
        "Reference": invoice.reference or "",
        "Date": _iso_date(invoice.issue_date),
        "DueDate": _iso_date(invoice.due_date),
        "CurrencyCode": invoice.currency,
        "LineAmountTypes": invoice.line_amount_types,
        "Status": invoice.status,
        "LineItems": [
            line_item_payload(line, mapping=mapping, line_amount_types=invoice.line_amount_types) for line in lines
        ],
    }


def credit_note_to_xero_payload(
    credit_note: Any, lines: Sequence[_Line], *, mapping: _Mapping | None, contact_id: str
) -> dict[str, Any]:
    """One ACCRECCREDIT element for PUT /CreditNotes (lines as on an invoice: positive amounts, the mapping's
    defaults for lines without their own). https://developer.xero.com/documentation/api/accounting/creditnotes"""
    if not contact_id:
        raise ValueError("The customer has no Xero ContactID yet.")
    return {
        "Type": "ACCRECCREDIT",
        "Contact": {"ContactID": contact_id},
        "CreditNoteNumber": credit_note.number,
        "Reference": credit_note.reference or "",
        "Date": _iso_date(credit_note.issue_date),
        "CurrencyCode": credit_note.currency,
        "LineAmountTypes": credit_note.line_amount_types,
        "Status": credit_note.status,
        "LineItems": [
            line_item_payload(line, mapping=mapping, line_amount_types=credit_note.line_amount_types) for line in lines
        ],
    }


def contact_payload(customer: Any) -> dict[str, Any]:
    """A contact for PUT /Contacts: our customer id is its ContactNumber, the key we find it by later."""
    payload: dict[str, Any] = {"Name": customer.name, "ContactNumber": customer.contact_number}
    if getattr(customer, "email", ""):
        payload["EmailAddress"] = customer.email
    return payload


def _iso_date(value: dt.date | str) -> str:
    # Plain YYYY-MM-DD: SDKs that send datetimes end up a day off (xero-facts 6.5).
    return value if isinstance(value, str) else value.isoformat()


# ---------------------------------------------------------------- parsing Xero's responses

_MS_DATE = re.compile(r"^/Date\((-?\d+)([+-])?(\d{2})?(\d{2})?\)/$")


def parse_xero_datetime(value: str | None) -> dt.datetime | None:
    """`/Date(1419937200000+1300)/` -> an aware datetime. None for empty or unparseable values.

    The number is epoch milliseconds (an instant); the optional offset is the zone it is shown in.
    https://developer.xero.com/documentation/api/accounting/requests-and-responses (dates)
    """
    if not value:
        return None
    match = _MS_DATE.match(value.strip())
    if not match:
        return None
    millis, sign, hours, minutes = match.groups()
    offset = dt.timedelta(0)
    if sign:
        offset = dt.timedelta(hours=int(hours or 0), minutes=int(minutes or 0))
        if sign == "-":
            offset = -offset
    instant = dt.datetime.fromtimestamp(int(millis) / 1000, tz=dt.UTC)
    return instant.astimezone(dt.timezone(offset))


def _messages(items: Any) -> list[str]:
    out = []
    for item in items or []:
        message = item.get("Message") if isinstance(item, Mapping) else item
        if message:
            out.append(str(message))
    return out


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def _xero_id(value: Any) -> str:
    value = str(value or "")
    return "" if value == EMPTY_XERO_ID else value


@dataclass(frozen=True)
class InvoiceOutcome:
    """What Xero said about one element of a PUT/POST /Invoices?summarizeErrors=false (or a GET)."""

    invoice_id: str
    number: str
    status: str
    status_attribute: str  # StatusAttributeString: OK | WARNING | ERROR ("" on plain GETs)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    updated_at: dt.datetime | None = None
    subtotal: Decimal | None = None
    total_tax: Decimal | None = None
    total: Decimal | None = None
    amount_due: Decimal | None = None
    amount_paid: Decimal | None = None
    amount_credited: Decimal | None = None

    @property
    def has_errors(self) -> bool:
        return bool(self.errors) or self.status_attribute == "ERROR"

    @property
    def created(self) -> bool:
        return bool(self.invoice_id) and not self.has_errors


def invoice_outcome(element: Mapping[str, Any]) -> InvoiceOutcome:
    return InvoiceOutcome(
        invoice_id=_xero_id(element.get("InvoiceID")),
        number=str(element.get("InvoiceNumber") or ""),
        status=str(element.get("Status") or ""),
        status_attribute=str(element.get("StatusAttributeString") or ""),
        errors=_messages(element.get("ValidationErrors")),
        warnings=_messages(element.get("Warnings")),
        updated_at=parse_xero_datetime(element.get("UpdatedDateUTC")),
        subtotal=_decimal(element.get("SubTotal")),
        total_tax=_decimal(element.get("TotalTax")),
        total=_decimal(element.get("Total")),
        amount_due=_decimal(element.get("AmountDue")),
        amount_paid=_decimal(element.get("AmountPaid")),
        amount_credited=_decimal(element.get("AmountCredited")),
    )


def invoice_outcomes(body: Mapping[str, Any]) -> list[InvoiceOutcome]:
    """Every invoice element of a response body, in the order sent (Xero echoes them in order)."""
    elements = body.get("Invoices")
    if elements is None:
        elements = body.get("Elements") or []  # a 400 ValidationException body
    return [invoice_outcome(element) for element in elements]


@dataclass(frozen=True)
class ContactOutcome:
    contact_id: str
    name: str
    contact_number: str
    status: str
    errors: list[str] = field(default_factory=list)


def contact_outcome(element: Mapping[str, Any]) -> ContactOutcome:
    return ContactOutcome(
        contact_id=_xero_id(element.get("ContactID")),
        name=str(element.get("Name") or ""),
        contact_number=str(element.get("ContactNumber") or ""),
        status=str(element.get("ContactStatus") or ""),
        errors=_messages(element.get("ValidationErrors")),
    )


def contact_outcomes(body: Mapping[str, Any]) -> list[ContactOutcome]:
    elements = body.get("Contacts")
    if elements is None:
        elements = body.get("Elements") or []
    return [contact_outcome(element) for element in elements]


# ---------------------------------------------------------------- accounts and tax rates (mapping choices)


@dataclass(frozen=True)
class AccountChoice:
    code: str
    name: str
    type: str


@dataclass(frozen=True)
class TaxRateChoice:
    tax_type: str
    name: str
    rate: Decimal


REVENUE_ACCOUNT_TYPES = frozenset({"REVENUE", "SALES", "OTHERINCOME"})


def revenue_accounts(body: Mapping[str, Any]) -> list[AccountChoice]:
    """The accounts a sales line may post to: ACTIVE, Class REVENUE, Type REVENUE|SALES|OTHERINCOME, with a Code.

    https://developer.xero.com/documentation/api/accounting/accounts (certification: use ACTIVE accounts)
    """
    out = []
    for account in body.get("Accounts") or []:
        if (
            account.get("Status") == "ACTIVE"
            and account.get("Class") == "REVENUE"
            and account.get("Type") in REVENUE_ACCOUNT_TYPES
            and account.get("Code")
        ):
            out.append(
                AccountChoice(code=str(account["Code"]), name=str(account.get("Name") or ""), type=str(account["Type"]))
            )
    return sorted(out, key=lambda a: (a.code, a.name))


def revenue_tax_rates(body: Mapping[str, Any]) -> list[TaxRateChoice]:
    """Tax rates valid on sales: ACTIVE and CanApplyToRevenue. https://developer.xero.com/documentation/api/accounting/taxrates"""
    out = []
    for rate in body.get("TaxRates") or []:
        if rate.get("Status") == "ACTIVE" and rate.get("CanApplyToRevenue") is True and rate.get("TaxType"):
            effective = _decimal(rate.get("EffectiveRate"))
            if effective is None:
                effective = _decimal(rate.get("DisplayTaxRate")) or ZERO
            out.append(TaxRateChoice(tax_type=str(rate["TaxType"]), name=str(rate.get("Name") or ""), rate=effective))
    return sorted(out, key=lambda r: r.name.lower())
