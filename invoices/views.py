from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from invoices.selectors import batch_get, batch_invoices, batch_list, invoice_sync_counts
from organisations.decorators import member_required


@member_required
def dashboard(request: HttpRequest) -> HttpResponse:
    organisation = request.organisation
    return render(request, "invoices/dashboard.html", {
        "counts": invoice_sync_counts(organisation=organisation),
        "recent_batches": batch_list(organisation=organisation)[:5],
    })


@member_required
def batches(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()[:100]
    state = request.GET.get("state", "")
    page = Paginator(batch_list(organisation=request.organisation, query=query, state=state), 20).get_page(
        request.GET.get("page"))
    return render(request, "invoices/batch_list.html", {"page": page, "query": query, "state": state})


@member_required
def batch_detail(request: HttpRequest, pk: int) -> HttpResponse:
    batch = batch_get(organisation=request.organisation, pk=pk)
    page = Paginator(batch_invoices(organisation=request.organisation, batch=batch), 50).get_page(
        request.GET.get("page"))
    return render(request, "invoices/batch_detail.html", {"batch": batch, "page": page})
