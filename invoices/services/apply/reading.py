"""Reading Xero's invoice JSON in our terms (money, dates, versions, lines) and comparing it with what we hold:
the differences, and how the history tells them. Pure apart from reading an invoice's lines."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from invoices.mappers import parse_xero_datetime
from invoices.models import Invoice, XeroMapping

_AMOUNTS = (
    ("amount_paid", "AmountPaid", "amount paid"),
    ("amount_due", "AmountDue", "amount due"),
    ("amount_credited", "AmountCredited", "amount credited"),
    ("subtotal", "SubTotal", "subtotal"),
    ("total_tax", "TotalTax", "tax"),
    ("total", "Total", "total"),
)
_LINE_FIELDS = ("description", "quantity", "unit_amount", "account_code", "tax_type")


def _money(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value)).quantize(Decimal("0.01"))
    except ArithmeticError:
        return None


def _quantity(value: Any) -> Decimal:
    try:
        return Decimal(str(value if value not in (None, "") else 0)).quantize(Decimal("0.0001"))
    except ArithmeticError:
        return Decimal("0")


def xero_date(data: Mapping[str, Any], key: str) -> dt.date | None:
    """Date and DueDate: `DateString` ("2026-11-01T00:00:00") when present, else `/Date(ms+0000)/`."""
    text = data.get(f"{key}String")
    if isinstance(text, str) and len(text) >= 10:
        try:
            return dt.date.fromisoformat(text[:10])
        except ValueError:
            pass
    parsed = parse_xero_datetime(data.get(key)) if isinstance(data.get(key), str) else None
    return parsed.date() if parsed else None


def xero_updated_at(data: Mapping[str, Any]) -> dt.datetime | None:
    value = data.get("UpdatedDateUTC")
    parsed = parse_xero_datetime(value) if isinstance(value, str) else None
    if parsed is None and isinstance(data.get("UpdatedDateUTCString"), str):
        try:
            parsed = dt.datetime.fromisoformat(data["UpdatedDateUTCString"].replace("Z", "+00:00"))
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC) if parsed else None


def _fmt(value: Any) -> str:
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value) if value not in (None, "") else "—"


def _xero_lines(data: Mapping[str, Any], mapping: XeroMapping | None) -> list[dict[str, Any]]:
    """Xero's line items in our terms. An account code or tax type equal to the organisation's default is kept
    empty, as our lines keep it (the default then follows the mapping)."""
    lines = []
    for item in data.get("LineItems") or []:
        account = str(item.get("AccountCode") or "")
        tax = str(item.get("TaxType") or "")
        if mapping is not None:
            account = "" if account == mapping.revenue_account_code else account
            tax = "" if tax == mapping.tax_type else tax
        lines.append(
            {
                "description": str(item.get("Description") or "")[:4000],
                "quantity": _quantity(item.get("Quantity", 1)),
                "unit_amount": _quantity(item.get("UnitAmount", 0)),
                "account_code": account[:10],
                "tax_type": tax[:50],
            }
        )
    return lines


def _our_lines(invoice: Invoice, mapping: XeroMapping | None) -> list[dict[str, Any]]:
    # Compared the way _xero_lines reads Xero's: an explicit code equal to the default counts as the default.
    def implicit(value: str, default: str | None) -> str:
        return "" if mapping is not None and value == default else value

    return [
        {
            "description": line.description,
            "quantity": Decimal(line.quantity).quantize(Decimal("0.0001")),
            "unit_amount": Decimal(line.unit_amount).quantize(Decimal("0.0001")),
            "account_code": implicit(line.account_code, mapping.revenue_account_code if mapping else None),
            "tax_type": implicit(line.tax_type, mapping.tax_type if mapping else None),
        }
        for line in invoice.lines.all()
    ]


def _line_text(line: Mapping[str, Any]) -> str:
    return f"{line['description'][:60]} × {line['quantity'].normalize()} @ {line['unit_amount'].normalize()}"


def invoice_differences(
    invoice: Invoice, data: Mapping[str, Any], *, mapping: XeroMapping | None
) -> dict[str, tuple[Any, Any]]:
    """Field -> (ours, Xero's) for everything Xero's copy changes. Pure apart from reading the invoice's lines."""
    changes: dict[str, tuple[Any, Any]] = {}
    status = str(data.get("Status") or "")
    ours = invoice.xero_status or invoice.status
    if status and status != ours:
        changes["status"] = (ours, status)
    for field, key, _label in _AMOUNTS:
        value = _money(data.get(key))
        if value is not None and value != getattr(invoice, field):
            changes[field] = (getattr(invoice, field), value)
    for field, key in (("issue_date", "Date"), ("due_date", "DueDate")):
        value = xero_date(data, key)
        if value is not None and value != getattr(invoice, field):
            changes[field] = (getattr(invoice, field), value)
    if "Reference" in data and str(data.get("Reference") or "") != invoice.reference:
        changes["reference"] = (invoice.reference, str(data.get("Reference") or "")[:255])
    if data.get("LineAmountTypes") and data["LineAmountTypes"] != invoice.line_amount_types:
        changes["line_amount_types"] = (invoice.line_amount_types, data["LineAmountTypes"])
    # Xero returns line items with a paged or single GET; a summary has none, and says nothing about them.
    if data.get("LineItems"):
        theirs = _xero_lines(data, mapping)
        mine = _our_lines(invoice, mapping)
        if theirs != mine:
            changes["lines"] = (mine, theirs)
    return changes


def _summary(changes: Mapping[str, tuple[Any, Any]]) -> str:
    labels = {
        "status": "status",
        "issue_date": "date",
        "due_date": "due date",
        "reference": "reference",
        "line_amount_types": "amounts are",
    }
    labels.update({field: label for field, _key, label in _AMOUNTS})
    parts = []
    for field, (before, after) in changes.items():
        if field == "lines":
            parts.append(
                f"lines edited ({len(before)} → {len(after)} lines: "
                + "; ".join(_line_text(line) for line in after[:3])
                + ("…" if len(after) > 3 else "")
                + ")"
            )
        else:
            parts.append(f"{labels.get(field, field)} {_fmt(before)} → {_fmt(after)}")
    return ", ".join(parts)


def _json_changes(changes: Mapping[str, tuple[Any, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field, (before, after) in changes.items():
        if field == "lines":
            out[field] = [[{k: str(v) for k, v in line.items()} for line in side] for side in (before, after)]
        else:
            out[field] = [_fmt(before), _fmt(after)]
    return out
