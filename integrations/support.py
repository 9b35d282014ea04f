"""Support console: every tenant at a glance. Staff with the support role only."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from organisations.decorators import support_required
from organisations.models import Organisation, SupportRequest
from organisations.selectors import support_request_list
from organisations.services import support_request_resolve


@support_required
def support_console(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()
    organisations = Organisation.objects.order_by("name")
    if query:
        organisations = organisations.filter(name__icontains=query)
    page = Paginator(organisations, 25).get_page(request.GET.get("page"))
    return render(request, "integrations/support/console.html", {
        "page": page,
        "query": query,
        "support_requests": support_request_list(status=SupportRequest.Status.OPEN)[:20],
    })


@support_required
@require_POST
def support_request_resolve_view(request: HttpRequest, pk: int) -> HttpResponse:
    support_request = get_object_or_404(SupportRequest, pk=pk)
    support_request_resolve(support_request=support_request)
    messages.success(request, f"Marked “{support_request.subject}” resolved.")
    return redirect("integrations:support_console")
