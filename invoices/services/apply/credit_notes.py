"""Applying what Xero holds to our credit notes: our own write's answer (taken as is) and the reconciliation poll of
GET /CreditNotes (only a newer copy; Xero's webhooks carry only invoices and contacts). Ours are matched by
CreditNoteID; the status, totals and remaining credit are Xero's."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from django.db import transaction

from integrations.webhooks.fetch import ApplyOutcome
from invoices.models import CreditNote
from invoices.services.apply.reading import xero_updated_at

TWO = Decimal("0.01")


def _money(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value)).quantize(TWO) if value not in (None, "") else None
    except ArithmeticError:
        return None


APPLIED_FIELDS = [
    "xero_credit_note_id",
    "xero_status",
    "xero_updated_at",
    "subtotal",
    "total_tax",
    "total",
    "remaining_credit",
    "updated_at",
]


def credit_note_copy_from_xero(note: CreditNote, data: Mapping[str, Any], *, force: bool = False) -> bool:
    """Xero's copy onto ours (the caller saves); only a newer one unless `force` (our own write's answer)."""
    version = xero_updated_at(data)
    if not force and note.xero_updated_at is not None and (version is None or version <= note.xero_updated_at):
        return False
    note.xero_credit_note_id = str(data.get("CreditNoteID") or note.xero_credit_note_id)
    note.xero_status = str(data.get("Status") or note.xero_status)[:12]
    note.xero_updated_at = version or note.xero_updated_at
    for field, key in (
        ("subtotal", "SubTotal"),
        ("total_tax", "TotalTax"),
        ("total", "Total"),
        ("remaining_credit", "RemainingCredit"),
    ):
        value = _money(data.get(key))
        if value is not None:
            setattr(note, field, value)
    return True


def credit_notes_to_reconcile(*, organisation_id: int) -> bool:
    """Has the organisation credit notes in Xero that a poll could update? (reconciliation's gate)"""
    return CreditNote.objects.filter(organisation_id=organisation_id).exclude(xero_credit_note_id="").exists()


def credit_notes_apply_from_xero(
    *, organisation_id: int, resources: Sequence[Mapping[str, Any]], source: str
) -> list[ApplyOutcome]:
    """Credit notes read from Xero (the reconciliation poll): ours, matched by CreditNoteID, take a newer copy's
    status, totals and remaining credit; others are not ours."""
    outcomes = []
    for data in resources:
        xero_id = str(data.get("CreditNoteID") or "")
        number = str(data.get("CreditNoteNumber") or "")
        if not xero_id or data.get("Type") != "ACCRECCREDIT":
            outcomes.append(ApplyOutcome(resource_id=xero_id, outcome="ignored", label=number))
            continue
        with transaction.atomic():
            note = (
                CreditNote.objects.select_for_update()
                .filter(organisation_id=organisation_id, xero_credit_note_id__iexact=xero_id)
                .first()
            )
            if note is None:
                outcomes.append(ApplyOutcome(resource_id=xero_id, outcome="not_ours", label=number))
                continue
            before = (note.xero_status, note.remaining_credit, note.total)
            if not credit_note_copy_from_xero(note, data):
                outcomes.append(ApplyOutcome(resource_id=xero_id, outcome="stale", label=note.number))
                continue
            note.save(update_fields=APPLIED_FIELDS)
            after = (note.xero_status, note.remaining_credit, note.total)
        changed = before != after
        summary = (
            f"credit note {note.number}: status {before[0] or '-'} → {after[0]}, remaining credit "
            f"{before[1]:,.2f} → {after[1]:,.2f}"
            if changed
            else ""
        )
        outcomes.append(
            ApplyOutcome(
                resource_id=xero_id, outcome="applied" if changed else "unchanged", label=note.number, summary=summary
            )
        )
    return outcomes


__all__ = ["APPLIED_FIELDS", "credit_note_copy_from_xero", "credit_notes_apply_from_xero", "credit_notes_to_reconcile"]
