"""Applying Xero's copy of an invoice to ours (fields, lines, payments and history), or recording one made in Xero
itself ("Created in Xero")."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction

from integrations.webhooks.fetch import ApplyOutcome
from invoices.created_in_xero.models import XeroCreatedInvoice
from invoices.mappers import parse_xero_datetime
from invoices.models import Invoice, InvoiceEvent, InvoiceLine, Payment, XeroMapping
from invoices.services.apply.reading import (
    _json_changes,
    _money,
    _summary,
    invoice_differences,
    xero_date,
    xero_updated_at,
)

logger = logging.getLogger("invoices.apply")

STATUSES = {choice for choice, _ in Invoice.Status.choices}
# Where the change came from decides how the history reads.
SOURCE_WEBHOOK, SOURCE_RECONCILE, SOURCE_OUTBOUND = "webhook", "reconcile", "outbound"


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
