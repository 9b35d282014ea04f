"""Every invoice of an organisation across its batches: filtered by the status vocabulary, customer, dates and overdue,
sorted, for the invoice list and its CSV export. Takes the organisation first; nothing of another one is ever read."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import QuerySet

from invoices.models import Invoice, customer_name_key
from invoices.states import InvoiceStatus, status_q
from organisations.models import Organisation

STATUSES = {status.key: status for status in InvoiceStatus}
# Sort key -> ordering (each ends on the primary key, so pages never overlap or skip a row).
SORTS = {
    "date": ("issue_date", "number", "pk"),
    "-date": ("-issue_date", "-number", "-pk"),
    "due": ("due_date", "number", "pk"),
    "-due": ("-due_date", "-number", "-pk"),
    "number": ("number", "pk"),
    "-number": ("-number", "-pk"),
    "customer": ("customer__name_key", "number", "pk"),
    "-customer": ("-customer__name_key", "-number", "-pk"),
    "total": ("total", "number", "pk"),
    "-total": ("-total", "-number", "-pk"),
}
DEFAULT_SORT = "-date"


@dataclass(frozen=True)
class InvoiceFilters:
    status: str = ""  # a key of the vocabulary (invoices/states.py), e.g. "failed", "overdue"
    customer: str = ""
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    overdue: bool = False
    sort: str = DEFAULT_SORT

    @property
    def active(self) -> bool:
        return bool(self.status or self.customer or self.date_from or self.date_to or self.overdue)


def _date(raw: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(raw.strip()) if raw and len(raw.strip()) == 10 else None
    except ValueError:
        return None


def invoice_filters_from(params) -> InvoiceFilters:
    """The filters from a query string; anything unknown or malformed is left out rather than refused."""
    status = params.get("status", "")
    sort = params.get("sort", DEFAULT_SORT)
    return InvoiceFilters(
        status=status if status in STATUSES else "",
        customer=(params.get("customer") or "").strip()[:100],
        date_from=_date(params.get("from", "")),
        date_to=_date(params.get("to", "")),
        overdue=params.get("overdue") in ("1", "on", "true"),
        sort=sort if sort in SORTS else DEFAULT_SORT,
    )


def invoices_filtered(*, organisation: Organisation, filters: InvoiceFilters, today: dt.date) -> QuerySet[Invoice]:
    qs = Invoice.objects.filter(organisation=organisation).select_related("customer", "batch")
    if filters.status:
        qs = qs.filter(status_q(STATUSES[filters.status], today=today))
    if filters.overdue:
        qs = qs.filter(status_q(InvoiceStatus.OVERDUE, today=today))
    if filters.customer:
        # The canonical form on both sides (customer_name_key), as everywhere names are matched.
        qs = qs.filter(customer__name_key__contains=customer_name_key(filters.customer))
    if filters.date_from:
        qs = qs.filter(issue_date__gte=filters.date_from)
    if filters.date_to:
        qs = qs.filter(issue_date__lte=filters.date_to)
    return qs.order_by(*SORTS[filters.sort])
