"""Apply what Xero holds to what we hold: invoices and contacts fetched after a webhook, a reconciliation poll or
our own write. Only a copy newer than ours (Xero's UpdatedDateUTC) is applied, so running it twice, or with
deliveries out of order, leaves the newest state. Every change to an invoice is written to its history.

Registered with integrations through settings.XERO_RESOURCE_APPLIERS (the dependency runs invoices -> integrations).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction

from integrations.webhooks.fetch import ApplyOutcome
from invoices.mappers import parse_xero_datetime
from invoices.models import Customer, Invoice, InvoiceEvent, InvoiceLine, Payment, XeroMapping, customer_name_key
from invoices.xero_models import XeroContactVersion, XeroCreatedInvoice

logger = logging.getLogger("invoices.apply")

STATUSES = {choice for choice, _ in Invoice.Status.choices}
_AMOUNTS = (
    ("amount_paid", "AmountPaid", "amount paid"),
    ("amount_due", "AmountDue", "amount due"),
    ("amount_credited", "AmountCredited", "amount credited"),
    ("subtotal", "SubTotal", "subtotal"),
    ("total_tax", "TotalTax", "tax"),
    ("total", "Total", "total"),
)
_LINE_FIELDS = ("description", "quantity", "unit_amount", "account_code", "tax_type")
# Where the change came from decides how the history reads.
SOURCE_WEBHOOK, SOURCE_RECONCILE, SOURCE_OUTBOUND = "webhook", "reconcile", "outbound"


# ---------------------------------------------------------------- parsing Xero's invoice JSON


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


# ---------------------------------------------------------------- invoices


def invoices_apply_from_xero(
    *, organisation_id: int, resources: Sequence[Mapping[str, Any]], source: str
) -> list[ApplyOutcome]:
    """Apply each invoice; one query first sorts out those we already hold at that version or newer (versions only
    move forward, so skipping them needs no lock), and only the others are locked and applied one by one."""
    mapping = XeroMapping.objects.filter(organisation_id=organisation_id).first()
    ids = [str(data.get("InvoiceID") or "") for data in resources]
    held = dict(
        Invoice.objects.filter(organisation_id=organisation_id, xero_invoice_id__in=[i for i in ids if i]).values_list(
            "xero_invoice_id", "xero_updated_at"
        )
    )
    outcomes = []
    for xero_id, data in zip(ids, resources, strict=True):
        version, ours = xero_updated_at(data), held.get(xero_id)
        if version is not None and ours is not None and version <= ours:
            outcomes.append(
                ApplyOutcome(
                    resource_id=xero_id,
                    outcome="unchanged" if version == ours else "stale",
                    label=str(data.get("InvoiceNumber") or ""),
                )
            )
            continue
        outcomes.append(
            invoice_apply_from_xero(organisation_id=organisation_id, data=data, source=source, mapping=mapping)
        )
    return outcomes


@transaction.atomic
def invoice_apply_from_xero(
    *, organisation_id: int, data: Mapping[str, Any], source: str, mapping: XeroMapping | None = None, actor=None
) -> ApplyOutcome:
    """Apply one Xero invoice if it is newer than ours. Ours: history + fields; not ours: "Created in Xero"."""
    xero_id = str(data.get("InvoiceID") or "")
    number = str(data.get("InvoiceNumber") or "")
    if not xero_id:
        return ApplyOutcome(resource_id="", outcome="ignored", summary="no InvoiceID")
    if data.get("Type") and data.get("Type") != "ACCREC":
        # Bills (ACCPAY) are not Coordinoter's business.
        return ApplyOutcome(resource_id=xero_id, outcome="ignored", label=number, summary="not a sales invoice")
    updated_at = xero_updated_at(data)
    invoice = (
        Invoice.objects.select_for_update().filter(organisation_id=organisation_id, xero_invoice_id=xero_id).first()
    )
    if invoice is None:
        return _record_created_in_xero(organisation_id=organisation_id, data=data, updated_at=updated_at)
    # Re-check under the row lock: only a strictly newer copy is applied.
    if updated_at is None or (invoice.xero_updated_at is not None and updated_at <= invoice.xero_updated_at):
        outcome = "unchanged" if invoice.xero_updated_at == updated_at else "stale"
        return ApplyOutcome(resource_id=xero_id, outcome=outcome, label=invoice.number)
    if mapping is None:
        mapping = XeroMapping.objects.filter(organisation_id=organisation_id).first()
    changes = invoice_differences(invoice, data, mapping=mapping)
    fields = ["xero_updated_at", "updated_at"]
    invoice.xero_updated_at = updated_at
    for field, (_before, after) in changes.items():
        if field == "status":
            invoice.xero_status = after
            fields.append("xero_status")
            if after in STATUSES:
                invoice.status = after
                fields.append("status")
        elif field != "lines":
            setattr(invoice, field, after)
            fields.append(field)
    if not invoice.xero_status and data.get("Status"):
        invoice.xero_status = str(data["Status"])
        fields.append("xero_status")
    invoice.save(update_fields=list(dict.fromkeys(fields)))
    if "lines" in changes:
        invoice.lines.all().delete()
        InvoiceLine.objects.bulk_create(
            [
                InvoiceLine(invoice=invoice, position=position, **line)
                for position, line in enumerate(changes["lines"][1])
            ]
        )
    payments_changed = payments_apply_from_xero(invoice=invoice, data=data)
    if not changes:
        outcome = "applied" if payments_changed else "unchanged"
        return ApplyOutcome(resource_id=xero_id, outcome=outcome, label=invoice.number)
    summary = _summary(changes)
    if source == SOURCE_OUTBOUND:
        event_source, kind, message = InvoiceEvent.Source.COORDINOTER, "sent_to_xero", f"sent to Xero: {summary}"
    else:
        event_source, kind, message = InvoiceEvent.Source.XERO, "changed_in_xero", f"changed in Xero: {summary}"
    InvoiceEvent.objects.create(
        invoice=invoice,
        organisation_id=organisation_id,
        source=event_source,
        kind=kind,
        message=message[:500],
        changes={"via": source, "xero_updated_at": updated_at.isoformat(), **_json_changes(changes)},
        actor=actor,
    )
    logger.info(
        "invoices.xero.applied",
        extra={
            "event": "invoices.xero.applied",
            "organisation_id": organisation_id,
            "invoice_id": invoice.pk,
            "xero_invoice_id": xero_id,
            "fields": sorted(changes),
            "via": source,
        },
    )
    return ApplyOutcome(resource_id=xero_id, outcome="applied", label=invoice.number, summary=summary)


def payments_apply_from_xero(*, invoice: Invoice, data: Mapping[str, Any]) -> bool:
    """Keep the invoice's payments as Xero lists them (date, amount, reference): added, changed and removed ones.
    A copy without `Payments` (a summary) says nothing about them. Returns whether anything changed."""
    if not isinstance(data.get("Payments"), list):
        return False
    theirs: dict[str, dict[str, Any]] = {}
    for item in data["Payments"]:
        payment_id = str((item or {}).get("PaymentID") or "")[:36] if isinstance(item, Mapping) else ""
        amount = _money(item.get("Amount")) if payment_id else None
        if not payment_id or amount is None:
            continue
        paid_on = parse_xero_datetime(item.get("Date")) if isinstance(item.get("Date"), str) else None
        theirs[payment_id] = {
            "date": paid_on.date() if paid_on else None,
            "amount": amount,
            "reference": str(item.get("Reference") or "")[:255],
        }
    ours = {p.xero_payment_id: p for p in invoice.payments.all()}
    changed = False
    for payment_id, payment in ours.items():
        if payment_id not in theirs:
            payment.delete()  # removed in Xero
            changed = True
    for payment_id, values in theirs.items():
        payment = ours.get(payment_id)
        if payment is None:
            Payment.objects.create(
                organisation_id=invoice.organisation_id, invoice=invoice, xero_payment_id=payment_id, **values
            )
            changed = True
        elif any(getattr(payment, key) != value for key, value in values.items()):
            for key, value in values.items():
                setattr(payment, key, value)
            payment.save(update_fields=list(values))
            changed = True
    return changed


def _record_created_in_xero(
    *, organisation_id: int, data: Mapping[str, Any], updated_at: dt.datetime | None
) -> ApplyOutcome:
    xero_id = str(data["InvoiceID"])
    number = str(data.get("InvoiceNumber") or "")
    # Our own push may not have stored its InvoiceID yet when Xero's CREATE webhook comes in: the number tells.
    if number and Invoice.objects.filter(organisation_id=organisation_id, number=number, xero_invoice_id="").exists():
        return ApplyOutcome(resource_id=xero_id, outcome="awaiting_push", label=number)
    contact = data.get("Contact") or {}
    values = {
        "number": number[:255],
        "reference": str(data.get("Reference") or "")[:255],
        "contact_name": str(contact.get("Name") or "")[:255],
        "xero_contact_id": str(contact.get("ContactID") or ""),
        "status": str(data.get("Status") or "")[:12],
        "currency": str(data.get("CurrencyCode") or "")[:3],
        "issue_date": xero_date(data, "Date"),
        "due_date": xero_date(data, "DueDate"),
        "total": _money(data.get("Total")) or Decimal("0.00"),
        "amount_due": _money(data.get("AmountDue")) or Decimal("0.00"),
        "amount_paid": _money(data.get("AmountPaid")) or Decimal("0.00"),
        "xero_updated_at": updated_at,
    }
    existing = (
        XeroCreatedInvoice.objects.select_for_update()
        .filter(organisation_id=organisation_id, xero_invoice_id=xero_id)
        .first()
    )
    if existing is None:
        try:
            with transaction.atomic():
                XeroCreatedInvoice.objects.create(organisation_id=organisation_id, xero_invoice_id=xero_id, **values)
        except IntegrityError:
            return ApplyOutcome(resource_id=xero_id, outcome="unchanged", label=number)
        logger.info(
            "invoices.xero.created_in_xero",
            extra={
                "event": "invoices.xero.created_in_xero",
                "organisation_id": organisation_id,
                "xero_invoice_id": xero_id,
            },
        )
        return ApplyOutcome(
            resource_id=xero_id,
            outcome="created_in_xero",
            label=number,
            summary=f"created in Xero: {number or xero_id} ({values['status']})",
        )
    if updated_at is None or (existing.xero_updated_at is not None and updated_at <= existing.xero_updated_at):
        return ApplyOutcome(
            resource_id=xero_id,
            outcome="unchanged" if existing.xero_updated_at == updated_at else "stale",
            label=number,
        )
    for key, value in values.items():
        setattr(existing, key, value)
    existing.save(update_fields=[*values, "updated_at"])
    return ApplyOutcome(
        resource_id=xero_id,
        outcome="applied",
        label=number,
        summary=f"created in Xero, updated: {number or xero_id} ({values['status']})",
    )


# ---------------------------------------------------------------- contacts


def contacts_apply_from_xero(
    *, organisation_id: int, resources: Sequence[Mapping[str, Any]], source: str
) -> list[ApplyOutcome]:
    return [contact_apply_from_xero(organisation_id=organisation_id, data=data, source=source) for data in resources]


@transaction.atomic
def contact_apply_from_xero(*, organisation_id: int, data: Mapping[str, Any], source: str) -> ApplyOutcome:
    """A Xero contact behind one of our customers: its name and email update the customer, if newer."""
    contact_id = str(data.get("ContactID") or "")
    customer = (
        (
            Customer.objects.select_for_update()
            .filter(organisation_id=organisation_id, xero_contact_id=contact_id)
            .first()
        )
        if contact_id
        else None
    )
    if customer is None:
        return ApplyOutcome(resource_id=contact_id, outcome="not_ours", label=str(data.get("Name") or ""))
    updated_at = xero_updated_at(data)
    if updated_at is None:
        return ApplyOutcome(resource_id=contact_id, outcome="ignored", label=customer.name)
    version, created = XeroContactVersion.objects.select_for_update().get_or_create(
        organisation_id=organisation_id, xero_contact_id=contact_id, defaults={"xero_updated_at": updated_at}
    )
    if not created and updated_at <= version.xero_updated_at:
        outcome = "unchanged" if updated_at == version.xero_updated_at else "stale"
        return ApplyOutcome(resource_id=contact_id, outcome=outcome, label=customer.name)
    if not created:
        version.xero_updated_at = updated_at
        version.save(update_fields=["xero_updated_at"])
    changes: dict[str, tuple[str, str]] = {}
    notes = []
    name = str(data.get("Name") or "").strip()[:255]
    if name and name != customer.name:
        clash = (
            Customer.objects.filter(organisation_id=organisation_id, name_key=customer_name_key(name))
            .exclude(pk=customer.pk)
            .exists()
        )
        if clash:
            notes.append(f"name {name!r} is another customer's; kept {customer.name!r}")
        else:
            changes["name"] = (customer.name, name)
    email = str(data.get("EmailAddress") or "").strip()[:254]
    if "EmailAddress" in data and email != customer.email:
        changes["email"] = (customer.email, email)
    if not changes:
        return ApplyOutcome(resource_id=contact_id, outcome="unchanged", label=customer.name, summary="; ".join(notes))
    for field, (_before, after) in changes.items():
        setattr(customer, field, after)
    customer.save(update_fields=[*changes, "updated_at"])
    summary = ", ".join(f"{field} {_fmt(b)} → {_fmt(a)}" for field, (b, a) in changes.items())
    logger.info(
        "invoices.xero.contact_applied",
        extra={
            "event": "invoices.xero.contact_applied",
            "organisation_id": organisation_id,
            "customer_id": customer.pk,
            "fields": sorted(changes),
            "via": source,
        },
    )
    return ApplyOutcome(
        resource_id=contact_id,
        outcome="applied",
        label=customer.name,
        summary="contact changed in Xero: " + summary + (f" ({'; '.join(notes)})" if notes else ""),
    )


__all__ = [
    "contact_apply_from_xero",
    "contacts_apply_from_xero",
    "invoice_apply_from_xero",
    "invoice_differences",
    "invoices_apply_from_xero",
    "payments_apply_from_xero",
    "xero_date",
    "xero_updated_at",
]
