"""Xero's answers read into our terms: its `/Date(...)/` datetimes, and what it said about each invoice or contact
element of a response. Pure; no I/O."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from integrations.xero.accounting import parse_xero_datetime

# Xero echoes this InvoiceID/ContactID on elements it did not create.
EMPTY_XERO_ID = "00000000-0000-0000-0000-000000000000"


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
