"""Reading the two-way sync's data. Every selector takes the organisation first; another tenant's id gives 404."""

import datetime as dt

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import Http404
from django.utils import timezone

from invoices.created_in_xero.models import XeroCreatedInvoice, XeroInvoiceChange
from invoices.models import Invoice
from organisations.models import Organisation


def created_in_xero_list(*, organisation: Organisation) -> QuerySet[XeroCreatedInvoice]:
    """Sales invoices made directly in the organisation's Xero (not pushed by us), newest first."""
    ours = Invoice.objects.filter(organisation=organisation, xero_invoice_id=OuterRef("xero_invoice_id"))
    return (
        XeroCreatedInvoice.objects.filter(organisation=organisation)
        .exclude(Exists(ours))
        .order_by("-issue_date", "-pk")
    )


def invoice_for_xero_action(*, organisation: Organisation, pk: int) -> Invoice:
    invoice = (
        Invoice.objects.filter(organisation=organisation, pk=pk)
        .select_related("batch", "customer")
        .prefetch_related("lines")
        .first()
    )
    if invoice is None:
        raise Http404("No such invoice.")
    return invoice


def invoices_xero_states(*, organisation: Organisation, ids: list[int]) -> list[Invoice]:
    """The invoices (of this organisation only) whose Xero state the batch page refreshes."""
    return list(Invoice.objects.filter(organisation=organisation, pk__in=ids[:100]).order_by("pk"))


def open_changes_by_invoice(
    *, organisation: Organisation, ids: list[int], recent: dt.timedelta = dt.timedelta(minutes=30)
) -> dict[int, XeroInvoiceChange]:
    """Each invoice's latest change still on its way to Xero, or that ended badly in the last `recent`."""
    changes = (
        XeroInvoiceChange.objects.filter(organisation=organisation, invoice_id__in=ids[:100])
        .filter(
            Q(state__in=["pending", "sending"])
            | Q(state__in=["conflict", "refused", "failed"], completed_at__gte=timezone.now() - recent)
        )
        .order_by("invoice_id", "-created_at")
    )
    latest: dict[int, XeroInvoiceChange] = {}
    for change in changes:
        latest.setdefault(change.invoice_id, change)
    return latest
