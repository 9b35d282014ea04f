"""Support's read-only view of a tenant's invoice batches and invoices, to answer "where is my invoice?" from the
console. Support staff only; no form here changes anything; every page viewed is recorded in that organisation's
audit trail (organisations.audit), which its admins read."""

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from integrations.selectors import xero_connection_for
from invoices.models import Invoice
from invoices.selectors import batch_get, batch_invoice_rows, batch_list, batch_progress, xero_link_info
from organisations.audit import organisation_audit_record
from organisations.decorators import support_required
from organisations.models import Organisation


def _organisation(pk: int) -> Organisation:
    return get_object_or_404(Organisation, pk=pk)


@support_required
@require_GET
def support_batches(request: HttpRequest, org: int) -> HttpResponse:
    organisation = _organisation(org)
    query = request.GET.get("q", "").strip()[:100]
    page = Paginator(batch_list(organisation=organisation, query=query), 20).get_page(request.GET.get("page"))
    invoices = []
    if query:
        invoices = list(
            Invoice.objects.filter(organisation=organisation, number__icontains=query)
            .select_related("batch", "customer")
            .order_by("number")[:20]
        )
    organisation_audit_record(
        organisation=organisation,
        actor=request.user,
        as_support=True,
        action="support_viewed_batches",
        detail={"search": query} if query else {},
    )
    return render(
        request,
        "invoices/support/batches.html",
        {
            "organisation": organisation,
            "connection": xero_connection_for(organisation),
            "page": page,
            "query": query,
            "invoices": invoices,
        },
    )


@support_required
@require_GET
def support_batch(request: HttpRequest, org: int, pk: int) -> HttpResponse:
    organisation = _organisation(org)
    batch = batch_get(organisation=organisation, pk=pk)  # another organisation's batch: 404
    page = Paginator(batch_invoice_rows(organisation=organisation, batch=batch), 50).get_page(request.GET.get("page"))
    organisation_audit_record(
        organisation=organisation,
        actor=request.user,
        as_support=True,
        action="support_viewed_batch",
        detail={"batch": batch.name, "batch_id": batch.pk},
    )
    return render(
        request,
        "invoices/support/batch.html",
        {
            "organisation": organisation,
            "connection": xero_connection_for(organisation),
            "batch": batch,
            "page": page,
            "progress": batch_progress(organisation=organisation, batch=batch),
        },
    )


@support_required
@require_GET
def support_invoice(request: HttpRequest, org: int, pk: int, invoice_pk: int) -> HttpResponse:
    organisation = _organisation(org)
    batch = batch_get(organisation=organisation, pk=pk)
    invoice = get_object_or_404(
        batch_invoice_rows(organisation=organisation, batch=batch).select_related("customer"), pk=invoice_pk
    )
    link = xero_link_info(organisation=organisation)
    organisation_audit_record(
        organisation=organisation,
        actor=request.user,
        as_support=True,
        action="support_viewed_invoice",
        detail={"invoice": invoice.number, "invoice_id": invoice.pk, "batch": batch.name},
    )
    return render(
        request,
        "invoices/support/invoice.html",
        {
            "organisation": organisation,
            "connection": xero_connection_for(organisation),
            "batch": batch,
            "invoice": invoice,
            "xero_url": link.invoice_url(invoice.xero_invoice_id),
        },
    )
