from django.db.models import Count, Q, QuerySet, Sum
from django.shortcuts import get_object_or_404

from invoices.models import Invoice, InvoiceBatch
from organisations.models import Organisation

S = Invoice.SyncState


def batch_list(*, organisation: Organisation, query: str = "", state: str = "") -> QuerySet[InvoiceBatch]:
    qs = InvoiceBatch.objects.filter(organisation=organisation).select_related("created_by").annotate(
        invoice_count=Count("invoices"),
        synced_count=Count("invoices", filter=Q(invoices__sync_state__in=[S.SYNCED, S.WARNING])),
        pending_count=Count("invoices", filter=Q(invoices__sync_state__in=[S.PENDING, S.IN_FLIGHT])),
        failed_count=Count("invoices", filter=Q(invoices__sync_state=S.FAILED)),
        total_amount=Sum("invoices__total"),
    ).order_by("-created_at", "-pk")
    if query:
        qs = qs.filter(Q(name__icontains=query) | Q(invoices__number__icontains=query)
                       | Q(invoices__customer__name__icontains=query)).distinct()
    if state == "failed":
        qs = qs.filter(failed_count__gt=0)
    elif state == "pending":
        qs = qs.filter(pending_count__gt=0)
    elif state == "synced":
        qs = qs.filter(invoice_count__gt=0, synced_count=Count("invoices"))
    elif state == "not_synced":
        qs = qs.exclude(eligibility=InvoiceBatch.Eligibility.ELIGIBLE)
    return qs


def batch_get(*, organisation: Organisation, pk: int) -> InvoiceBatch:
    return get_object_or_404(InvoiceBatch.objects.select_related("created_by"), organisation=organisation, pk=pk)


def batch_invoices(*, organisation: Organisation, batch: InvoiceBatch) -> QuerySet[Invoice]:
    return (Invoice.objects.filter(organisation=organisation, batch=batch)
            .select_related("customer").order_by("number"))


def invoice_sync_counts(*, organisation: Organisation) -> dict[str, int]:
    counts = Invoice.objects.filter(organisation=organisation).aggregate(
        synced=Count("pk", filter=Q(sync_state__in=[S.SYNCED, S.WARNING])),
        pending=Count("pk", filter=Q(sync_state__in=[S.PENDING, S.IN_FLIGHT])),
        failed=Count("pk", filter=Q(sync_state=S.FAILED)),
        not_synced=Count("pk", filter=Q(sync_state=S.NOT_SYNCED)),
    )
    return {key: value or 0 for key, value in counts.items()}
