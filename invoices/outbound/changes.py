"""The outbound engine's strategy for an edit, void or delete of an invoice already in Xero (kind `invoice_change`).

The engine (integrations/outbound/engine.py) claims, decides, calls and records; this module says how to send the
change, how to tell from Xero's answer that it is ours and done (the InvoiceID we asked about, and the state we
asked for), how to look it up when an answer was lost, and what the invoice's records show at the end.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction

from integrations.outbound import kinds as k
from integrations.outbound.models import OutboundOperation
from integrations.xero import accounting
from integrations.xero.client import XeroClient
from integrations.xero.errors import validation_messages
from integrations.xero.types import XeroResponse
from invoices.created_in_xero.models import XeroInvoiceChange
from invoices.models import InvoiceEvent
from invoices.services.apply.invoices import SOURCE_OUTBOUND, invoice_apply_from_xero
from invoices.services.apply.reading import xero_updated_at

INVOICE_CHANGE = "invoice_change"
A = XeroInvoiceChange.Action
CS = XeroInvoiceChange.State
FOUR = Decimal("0.0001")


# ---------------------------------------------------------------- does Xero's copy hold what we sent? (pure)


def _amount(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value)).quantize(FOUR)
    except (InvalidOperation, ValueError, TypeError):
        return None


def _day(element: dict[str, Any], key: str) -> str:
    text = str(element.get(f"{key}String") or element.get(key) or "")
    if text.startswith("/Date("):
        from invoices.mappers import parse_xero_datetime

        parsed = parse_xero_datetime(text)
        return parsed.date().isoformat() if parsed else ""
    return text[:10]


def xero_holds(payload: dict[str, Any], element: dict[str, Any]) -> bool:
    """True when Xero's copy of the invoice shows the change in `payload` (a status, or an edit's values)."""
    if str(element.get("InvoiceID") or "").lower() != str(payload.get("InvoiceID") or "").lower():
        return False
    if "Status" in payload:
        return element.get("Status") == payload["Status"]
    if str(element.get("Reference") or "") != str(payload.get("Reference") or ""):
        return False
    if _day(element, "Date") != payload.get("Date") or _day(element, "DueDate") != payload.get("DueDate"):
        return False
    sent, held = payload.get("LineItems") or [], element.get("LineItems") or []
    if len(sent) != len(held):
        return False
    for ours, theirs in zip(sent, held, strict=True):
        if str(ours.get("Description") or "").strip() != str(theirs.get("Description") or "").strip():
            return False
        if _amount(ours.get("Quantity")) != _amount(theirs.get("Quantity")):
            return False
        if _amount(ours.get("UnitAmount")) != _amount(theirs.get("UnitAmount")):
            return False
        for key in ("AccountCode", "TaxType"):
            if ours.get(key) and ours[key] != theirs.get(key):
                return False
    return True


# ---------------------------------------------------------------- the strategy


def _change(operation: OutboundOperation) -> XeroInvoiceChange:
    return XeroInvoiceChange.objects.select_related("invoice").get(pk=operation.subject_id)


def _current(client: XeroClient, operation: OutboundOperation) -> dict[str, Any]:
    return accounting.first(accounting.invoice_get(client, invoice_id=operation.payload["InvoiceID"]), "Invoices")


def _check(client: XeroClient, operation: OutboundOperation) -> k.Check:
    """Before the first send: already so in Xero (done), or changed in Xero since the person looked (conflict)."""
    from invoices.services.outbound import invoice_change_refusal, invoice_xero_status

    change = _change(operation)
    current = _current(client, operation)
    if xero_holds(operation.payload, current):
        return k.Confirmed(current)
    based_on, version = change.based_on_xero_updated_at, xero_updated_at(current)
    if version is not None and based_on is not None and version > based_on:
        label = A(change.action).label.lower()
        return k.Declined(
            f"Not sent: the invoice changed in Xero after you asked to {label} it. "
            "Review the changes above and try again.",
            result=current,
            conflict=True,
        )
    status = str(current.get("Status") or "")
    if status and status != invoice_xero_status(change.invoice):
        invoice_apply_from_xero(organisation_id=change.organisation_id, data=current, source="webhook")
        change.invoice.refresh_from_db()
    refusal = invoice_change_refusal(invoice=change.invoice, action=change.action)
    return k.Declined(f"Not sent: {refusal}", result=current) if refusal else None


def _send(client: XeroClient, operation: OutboundOperation) -> XeroResponse:
    return accounting.invoice_post(
        client,
        invoice_id=operation.payload["InvoiceID"],
        invoice=operation.payload,
        idempotency_key=operation.idempotency_key,
    )


def _confirm(operation: OutboundOperation, response: XeroResponse) -> k.Confirmation:
    element = accounting.first(response, "Invoices")
    errors = validation_messages([element]) if element else []
    if element.get("HasErrors") or errors:
        return k.Declined("; ".join(errors) or "validation failed", result=element)
    if not xero_holds(operation.payload, element):
        ours, theirs = operation.payload.get("InvoiceID"), element.get("InvoiceID") or "none"
        reason = (
            f"Xero answered about invoice {theirs}, not {ours}"
            if str(theirs).lower() != str(ours).lower()
            else "Xero's answer does not show the change that was sent"
        )
        return k.Unconfirmed(reason, answer=element)
    return k.Confirmed(element)


def _look_up(client: XeroClient, operation: OutboundOperation) -> k.Lookup:
    """After a lost answer, past the key's window: Xero's copy shows the change (done), still shows the version the
    person saw (never applied: send), or something newer that is not ours (a conflict the person must see)."""
    current = _current(client, operation)
    if xero_holds(operation.payload, current):
        return k.Confirmed(current)
    change = _change(operation)
    version, based_on = xero_updated_at(current), change.based_on_xero_updated_at
    if current and (version is None or based_on is None or version <= based_on):
        return k.Absent()
    return k.Unconfirmed("Xero holds a newer version that does not show this change", answer=current)


def _finish(operation: OutboundOperation, outcome: k.Outcome) -> None:
    change = _change(operation)
    label = A(change.action).label
    with transaction.atomic():
        if outcome.state == "done":
            if outcome.result:
                invoice_apply_from_xero(
                    organisation_id=change.organisation_id,
                    data=outcome.result,
                    source=SOURCE_OUTBOUND,
                    actor=change.requested_by,
                )
            _settle(change, CS.DONE, event=(f"{change.action}_done", f"{label} done in Xero."), outcome=outcome)
        elif outcome.state == "refused" and outcome.conflict:
            if outcome.result:
                invoice_apply_from_xero(organisation_id=change.organisation_id, data=outcome.result, source="webhook")
            _settle(change, CS.CONFLICT, event=("change_conflict", outcome.message), outcome=outcome)
        elif outcome.state == "refused":
            message = outcome.message
            text = message if message.startswith("Not sent") else f"Xero refused to {label.lower()} it: {message}"
            _settle(change, CS.REFUSED, event=("change_refused", text), outcome=outcome)
        elif outcome.state == "needs_attention":
            text = f"{label} needs attention: {outcome.message}"
            _settle(change, CS.NEEDS_ATTENTION, event=("change_needs_attention", text), outcome=outcome)
        else:  # waiting for the connection
            change.state, change.last_error = CS.PENDING, outcome.message[:2000]
            change.save(update_fields=["state", "last_error"])


def _settle(change: XeroInvoiceChange, state: str, *, event: tuple[str, str], outcome: k.Outcome) -> None:
    from django.utils import timezone

    change.state = state
    change.last_error = outcome.message[:2000] if state != CS.DONE else ""
    change.correlation_id = outcome.correlation_id or change.correlation_id
    change.completed_at = timezone.now()
    change.claimed_until = None
    change.save(update_fields=["state", "last_error", "correlation_id", "completed_at", "claimed_until"])
    kind, message = event
    InvoiceEvent.objects.create(
        invoice_id=change.invoice_id,
        organisation_id=change.organisation_id,
        source=InvoiceEvent.Source.SYSTEM,
        kind=kind,
        message=message[:500],
        changes={"change_id": change.pk, "correlation_id": outcome.correlation_id},
        actor=change.requested_by,
    )


def register() -> None:
    k.register_kind(
        k.Kind(name=INVOICE_CHANGE, send=_send, confirm=_confirm, look_up=_look_up, finish=_finish, check=_check)
    )


__all__ = ["INVOICE_CHANGE", "register", "xero_holds"]
