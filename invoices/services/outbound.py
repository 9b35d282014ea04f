"""Changes made in Coordinoter after the first push go to Xero: edit a DRAFT or SUBMITTED invoice, void or delete.

Xero's rules are checked before anything is stored (https://developer.xero.com/documentation/api/accounting/invoices,
"Deleting and voiding invoices"): delete only DRAFT or SUBMITTED; void only AUTHORISED with no payment or credit
allocated (a paid or part-paid invoice cannot be voided); edit only DRAFT or SUBMITTED. The change is stored with
its Idempotency-Key, then a worker checks Xero's current copy: if Xero holds a newer version than the one the person
was looking at, nothing is sent and the conflict is shown (never silently overwritten).
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.http import Http404
from django.utils import timezone

from integrations.models import XeroConnection
from integrations.services.webhooks import xero_rate_limiter
from integrations.xero.client import xero_request
from integrations.xero.exceptions import (
    XeroAuthError,
    XeroError,
    XeroNotConnected,
    XeroRateLimited,
    XeroServerError,
    XeroTimeout,
    XeroValidationError,
)
from invoices.models import Invoice, InvoiceEvent, XeroMapping
from invoices.services.apply import SOURCE_OUTBOUND, invoice_apply_from_xero, xero_updated_at
from invoices.xero_models import XeroInvoiceChange
from organisations.models import Organisation

logger = logging.getLogger("invoices.outbound")

CLAIM = dt.timedelta(minutes=2)
MAX_ATTEMPTS = 6
A = XeroInvoiceChange.Action
S = XeroInvoiceChange.State
EDITABLE = ("DRAFT", "SUBMITTED")
# Four-decimal unit amounts both ways, or Xero rounds 99.995 to 100.00 (https://developer.xero.com/documentation/api/accounting/invoices)
UNITDP = {"unitdp": "4"}


class ChangeRefused(Exception):
    """The change breaks one of Xero's rules, or the invoice moved on since the person looked at it."""

    def __init__(self, message: str, *, conflict: bool = False) -> None:
        self.conflict = conflict
        super().__init__(message)


@dataclass(frozen=True)
class LineEdit:
    description: str
    quantity: Decimal
    unit_amount: Decimal
    account_code: str = ""
    tax_type: str = ""


@dataclass(frozen=True)
class InvoiceEdit:
    reference: str
    issue_date: dt.date
    due_date: dt.date
    lines: Sequence[LineEdit]


# ---------------------------------------------------------------- the rules (pure)


def invoice_xero_status(invoice: Invoice) -> str:
    return invoice.xero_status or invoice.status


def invoice_change_refusal(*, invoice: Invoice, action: str) -> str | None:
    """Why Xero would refuse this change, in words for the person; None when it is allowed."""
    if not invoice.xero_invoice_id:
        return "This invoice is not in Xero yet: nothing to change there."
    status = invoice_xero_status(invoice)
    if action == A.VOID:
        if status == "PAID" or invoice.amount_paid > 0:
            return "A paid or part-paid invoice cannot be voided. Remove the payment in Xero first, then void it."
        if invoice.amount_credited > 0:
            return "This invoice has a credit note allocated: remove the allocation in Xero before voiding it."
        if status in EDITABLE:
            return f"A {status} invoice is deleted, not voided."
        if status != "AUTHORISED":
            return f"Only an approved (AUTHORISED) invoice can be voided; this one is {status}."
        return None
    if action == A.DELETE:
        if status not in EDITABLE:
            return f"Only DRAFT or SUBMITTED invoices can be deleted; this one is {status}." + (
                " Void it instead." if status == "AUTHORISED" and invoice.amount_paid == 0 else ""
            )
        return None
    if action == A.EDIT:
        if status not in EDITABLE:
            return f"Xero allows editing DRAFT or SUBMITTED invoices only; this one is {status}."
        return None
    return f"Unknown action {action!r}."


def _edit_payload(invoice: Invoice, edit: InvoiceEdit, mapping: XeroMapping | None) -> dict[str, Any]:
    if not edit.lines:
        raise ChangeRefused("An invoice needs at least one line.")
    lines = []
    for line in edit.lines:
        if not line.description.strip():
            raise ChangeRefused("Every line needs a description.")
        account = line.account_code or (mapping.revenue_account_code if mapping else "")
        tax = line.tax_type or (mapping.tax_type if mapping else "")
        item: dict[str, Any] = {
            "Description": line.description.strip(),
            "Quantity": float(line.quantity),
            "UnitAmount": float(line.unit_amount),
        }
        if account:
            item["AccountCode"] = account
        if tax:
            item["TaxType"] = tax
        lines.append(item)
    if edit.due_date < edit.issue_date:
        raise ChangeRefused("The due date cannot be before the invoice date.")
    # Lines sent without LineItemID replace the invoice's lines (xero-facts 2.7).
    return {
        "InvoiceID": invoice.xero_invoice_id,
        "Reference": edit.reference,
        "Date": edit.issue_date.isoformat(),
        "DueDate": edit.due_date.isoformat(),
        "LineItems": lines,
    }


# ---------------------------------------------------------------- requesting a change (the web request)


def _invoice_for(organisation: Organisation, invoice_id: int) -> Invoice:
    invoice = Invoice.objects.select_for_update().filter(organisation=organisation, pk=invoice_id).first()
    if invoice is None:
        raise Http404("No such invoice.")
    return invoice


def _check_version(invoice: Invoice, based_on: dt.datetime | None) -> None:
    if based_on is not None and invoice.xero_updated_at is not None and invoice.xero_updated_at != based_on:
        raise ChangeRefused(
            "This invoice changed in Xero after you opened it (see its history). Review it and try again.",
            conflict=True,
        )


@transaction.atomic
def invoice_change_request(
    *,
    organisation: Organisation,
    invoice_id: int,
    action: str,
    user,
    based_on: dt.datetime | None,
    edit: InvoiceEdit | None = None,
) -> XeroInvoiceChange:
    """Check the rules, store the change with its Idempotency-Key and enqueue it. Raises ChangeRefused."""
    invoice = _invoice_for(organisation, invoice_id)
    refusal = invoice_change_refusal(invoice=invoice, action=action)
    if refusal:
        raise ChangeRefused(refusal)
    _check_version(invoice, based_on)
    if XeroInvoiceChange.objects.filter(invoice=invoice, state__in=[S.PENDING, S.SENDING]).exists():
        raise ChangeRefused("A change to this invoice is already on its way to Xero. Wait for it to finish.")
    if action == A.VOID:
        payload = {"InvoiceID": invoice.xero_invoice_id, "Status": "VOIDED"}
    elif action == A.DELETE:
        payload = {"InvoiceID": invoice.xero_invoice_id, "Status": "DELETED"}
    else:
        if edit is None:
            raise ChangeRefused("Nothing to change.")
        payload = _edit_payload(invoice, edit, XeroMapping.objects.filter(organisation=organisation).first())
    change = XeroInvoiceChange.objects.create(
        organisation=organisation,
        invoice=invoice,
        action=action,
        payload=payload,
        idempotency_key=f"coordinoter-change-{uuid.uuid4()}",
        based_on_xero_updated_at=invoice.xero_updated_at,
        requested_by=user,
    )
    InvoiceEvent.objects.create(
        invoice=invoice,
        organisation=organisation,
        source=InvoiceEvent.Source.COORDINOTER,
        kind=f"{action}_requested",
        message=f"{A(action).label} requested by {user}: sending to Xero",
        changes={"change_id": change.pk},
        actor=user,
    )
    logger.info(
        "invoices.outbound.requested",
        extra={
            "event": "invoices.outbound.requested",
            "organisation_id": organisation.pk,
            "invoice_id": invoice.pk,
            "change_id": change.pk,
            "action": action,
        },
    )
    invoice_change_enqueue(change_id=change.pk)
    return change


def invoice_change_enqueue(*, change_id: int, countdown: int | None = None) -> None:
    from invoices.xero_tasks import send_invoice_change

    def enqueue() -> None:
        try:
            send_invoice_change.apply_async(kwargs={"change_id": change_id}, countdown=countdown, retry=False)
        except Exception:  # noqa: BLE001 - the stored change is the record; the sweeper sends it later
            logger.warning(
                "invoices.outbound.enqueue_failed",
                extra={"event": "invoices.outbound.enqueue_failed", "change_id": change_id},
            )

    transaction.on_commit(enqueue)


# ---------------------------------------------------------------- sending (the worker)


@dataclass(frozen=True)
class SendResult:
    state: str
    retry_after: int | None = None


def _claim(change_id: int) -> XeroInvoiceChange | None:
    now = timezone.now()
    with transaction.atomic():
        change = (
            XeroInvoiceChange.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("invoice")
            .filter(pk=change_id)
            .first()
        )
        if change is None:
            return None
        # Re-check under the lock: pending, or sending with a lapsed claim (a worker died mid-send).
        if change.state == S.SENDING and change.claimed_until and change.claimed_until > now:
            return None
        if change.state not in (S.PENDING, S.SENDING):
            return None
        change.state = S.SENDING
        change.attempts += 1
        change.claimed_until = now + CLAIM
        change.save(update_fields=["state", "attempts", "claimed_until"])
    return change


def _finish(
    change: XeroInvoiceChange,
    state: str,
    *,
    error: str = "",
    correlation_id: str = "",
    event: tuple[str, str] | None = None,
) -> SendResult:
    with transaction.atomic():
        change.state = state
        change.last_error = error[:2000]
        change.correlation_id = correlation_id or change.correlation_id
        change.claimed_until = None
        if state not in (S.PENDING,):
            change.completed_at = timezone.now()
        change.save(update_fields=["state", "last_error", "correlation_id", "claimed_until", "completed_at"])
        if event is not None:
            kind, message = event
            InvoiceEvent.objects.create(
                invoice_id=change.invoice_id,
                organisation_id=change.organisation_id,
                source=InvoiceEvent.Source.SYSTEM,
                kind=kind,
                message=message[:500],
                changes={"change_id": change.pk, "correlation_id": correlation_id},
                actor=change.requested_by,
            )
    logger.info(
        "invoices.outbound.%s",
        state,
        extra={
            "event": f"invoices.outbound.{state}",
            "organisation_id": change.organisation_id,
            "invoice_id": change.invoice_id,
            "change_id": change.pk,
            "action": change.action,
            "correlation_id": correlation_id,
        },
    )
    return SendResult(state=state)


def _already_done(change: XeroInvoiceChange, current: dict[str, Any]) -> bool:
    """An earlier attempt whose answer was lost may have gone through: Xero already holds what we asked for."""
    if change.action in (A.VOID, A.DELETE):
        return current.get("Status") == change.payload.get("Status")
    return False


def invoice_change_send(*, change_id: int) -> SendResult:
    change = _claim(change_id)
    if change is None:
        return SendResult(state="skipped")
    invoice = change.invoice
    label = A(change.action).label.lower()
    connection = XeroConnection.objects.filter(
        organisation_id=change.organisation_id, status=XeroConnection.Status.ACTIVE
    ).first()
    if connection is None:
        return _finish(
            change,
            S.FAILED,
            error="Xero is not connected.",
            event=("change_failed", f"Could not {label} in Xero: Xero is not connected."),
        )
    limiter = xero_rate_limiter()
    try:
        current_body = (
            xero_request(
                connection.pk, "GET", f"/Invoices/{invoice.xero_invoice_id}", params=UNITDP, rate_limiter=limiter
            ).body
            or {}
        )
        current = (current_body.get("Invoices") or [{}])[0]
        current_version = xero_updated_at(current)
        if _already_done(change, current):
            invoice_apply_from_xero(
                organisation_id=change.organisation_id, data=current, source=SOURCE_OUTBOUND, actor=change.requested_by
            )
            return _finish(change, S.DONE, event=(f"{change.action}_done", f"{A(change.action).label} done in Xero."))
        based_on = change.based_on_xero_updated_at
        if current_version is not None and based_on is not None and current_version > based_on:
            # Xero moved on since the person looked: show Xero's version, send nothing.
            invoice_apply_from_xero(organisation_id=change.organisation_id, data=current, source="webhook")
            return _finish(
                change,
                S.CONFLICT,
                error="Xero holds a newer version.",
                event=(
                    "change_conflict",
                    f"Not sent: the invoice changed in Xero after you asked to {label} it. "
                    "Review the changes above and try again.",
                ),
            )
        status = str(current.get("Status") or "")
        if status and status != invoice_xero_status(invoice):
            invoice_apply_from_xero(organisation_id=change.organisation_id, data=current, source="webhook")
            invoice.refresh_from_db()
        refusal = invoice_change_refusal(invoice=invoice, action=change.action)
        if refusal:
            return _finish(change, S.REFUSED, error=refusal, event=("change_refused", f"Not sent: {refusal}"))
        response = xero_request(
            connection.pk,
            "POST",
            f"/Invoices/{invoice.xero_invoice_id}",
            params=UNITDP,
            json={"Invoices": [change.payload]},
            idempotency_key=change.idempotency_key,
            rate_limiter=limiter,
        )
    except XeroRateLimited as exc:
        _finish(change, S.PENDING, error=str(exc))
        return SendResult(state=S.PENDING, retry_after=max(1, int(exc.retry_after)))
    except XeroValidationError as exc:
        errors = [m.get("Message", "") for el in exc.elements for m in (el.get("ValidationErrors") or [])]
        message = "; ".join(e for e in errors if e) or str(exc)
        return _finish(
            change,
            S.REFUSED,
            error=message,
            correlation_id=exc.correlation_id,
            event=("change_refused", f"Xero refused to {label} it: {message}"),
        )
    except (XeroServerError, XeroTimeout) as exc:
        if change.attempts >= MAX_ATTEMPTS:
            return _finish(
                change,
                S.FAILED,
                error=str(exc),
                correlation_id=getattr(exc, "correlation_id", ""),
                event=("change_failed", f"Could not {label} in Xero after {change.attempts} tries."),
            )
        _finish(change, S.PENDING, error=str(exc), correlation_id=getattr(exc, "correlation_id", ""))
        return SendResult(state=S.PENDING, retry_after=min(600, 15 * 2**change.attempts))
    except (XeroNotConnected, XeroAuthError) as exc:
        return _finish(
            change,
            S.FAILED,
            error=str(exc),
            correlation_id=exc.correlation_id,
            event=("change_failed", f"Could not {label} in Xero: reconnect Xero, then try again."),
        )
    except XeroError as exc:
        return _finish(
            change,
            S.FAILED,
            error=str(exc),
            correlation_id=exc.correlation_id,
            event=("change_failed", f"Could not {label} in Xero: {exc}"),
        )
    element = ((response.body or {}).get("Invoices") or [{}])[0]
    errors = [m.get("Message", "") for m in (element.get("ValidationErrors") or [])]
    if element.get("HasErrors") or errors:
        message = "; ".join(e for e in errors if e) or "validation failed"
        return _finish(
            change,
            S.REFUSED,
            error=message,
            correlation_id=response.correlation_id,
            event=("change_refused", f"Xero refused to {label} it: {message}"),
        )
    invoice_apply_from_xero(
        organisation_id=change.organisation_id, data=element, source=SOURCE_OUTBOUND, actor=change.requested_by
    )
    return _finish(
        change,
        S.DONE,
        correlation_id=response.correlation_id,
        event=(f"{change.action}_done", f"{A(change.action).label} done in Xero."),
    )


def invoice_changes_sweep(*, older_than: dt.timedelta = dt.timedelta(minutes=1)) -> int:
    """Changes left pending (broker down when they were made) or with a lapsed claim: enqueue them again."""
    now = timezone.now()
    stuck = list(
        XeroInvoiceChange.objects.filter(state__in=[S.PENDING, S.SENDING], created_at__lte=now - older_than)
        .exclude(claimed_until__gt=now)
        .values_list("pk", flat=True)[:500]
    )
    for change_id in stuck:
        with transaction.atomic():
            invoice_change_enqueue(change_id=change_id)
    return len(stuck)


__all__ = [
    "ChangeRefused",
    "InvoiceEdit",
    "LineEdit",
    "SendResult",
    "invoice_change_refusal",
    "invoice_change_request",
    "invoice_change_send",
    "invoice_changes_sweep",
    "invoice_xero_status",
]
