"""Support console: every tenant's Xero connection at a glance, its audit trail, and support's actions.
Staff with the support role only; every action is an audit event with the support user as actor."""

import json

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from integrations.outbound.selectors import kind_label, operations_needing_attention
from integrations.selectors import (
    SUPPORT_STATE_FILTERS,
    disconnect_operations,
    support_organisation_list,
)
from integrations.services import (
    xero_connection_disconnect,
    xero_connection_refresh,
    xero_connection_request_reconnect,
    xero_connection_verify_soon,
)
from integrations.usage.chart import app_usage_chart, usage_chart_for
from organisations.audit import audit_trail
from organisations.decorators import support_required
from organisations.models import Organisation, SupportRequest
from organisations.selectors import support_request_list
from organisations.services import support_request_reply, support_request_resolve


@support_required
def support_console(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()[:100]
    state = request.GET.get("state", "")
    if state not in SUPPORT_STATE_FILTERS:
        state = ""
    page = Paginator(support_organisation_list(query=query, state=state), 25).get_page(request.GET.get("page"))
    # Open support requests, paginated and searchable on their own, so a burst from one sender hides nothing.
    request_query = request.GET.get("rq", "").strip()[:100]
    requests_page = Paginator(
        support_request_list(status=SupportRequest.Status.OPEN, query=request_query), 20
    ).get_page(request.GET.get("rpage"))
    return render(
        request,
        "integrations/support/console.html",
        {
            "page": page,
            "query": query,
            "state": state,
            "state_filters": SUPPORT_STATE_FILTERS,
            "requests_page": requests_page,
            "request_query": request_query,
        },
    )


@support_required
def support_xero_usage(request: HttpRequest) -> HttpResponse:
    """The whole app against Xero's app-wide minute, by priority class (issue 15)."""
    return render(request, "integrations/support/xero_usage.html", {"app_usage": app_usage_chart()})


@support_required
def support_organisation(request: HttpRequest, pk: int) -> HttpResponse:
    organisation = get_object_or_404(Organisation, pk=pk)
    # Opening the page checks the connection in Xero at once (queued, at most every few minutes per tenant).
    checking = xero_connection_verify_soon(organisation=organisation)
    connection = getattr(organisation, "xero_connection", None)
    events = Paginator(audit_trail(organisation), 50).get_page(request.GET.get("page"))
    operations = list(operations_needing_attention(organisation)[:50])
    for operation in operations:
        operation.kind_label = kind_label(operation.kind)
        operation.last_answer_text = json.dumps(operation.last_answer, ensure_ascii=False)[:600]
    return render(
        request,
        "integrations/support/organisation.html",
        {
            "organisation": organisation,
            "connection": connection,
            "page": events,
            "operations": operations,
            "usage": usage_chart_for(organisation),
            "disconnect_operations": disconnect_operations(organisation, connection=connection)
            if connection is not None and connection.disconnect_step
            else [],
            "checking": checking,
        },
    )


@support_required
@require_POST
def support_xero_disconnect(request: HttpRequest, pk: int) -> HttpResponse:
    organisation = get_object_or_404(Organisation, pk=pk)
    reason = request.POST.get("reason", "").strip()[:255]
    connection = getattr(organisation, "xero_connection", None)
    retrying = connection is not None and bool(connection.disconnect_step)  # finishing one already asked for
    if not reason and not retrying:
        messages.error(request, "Give the reason for disconnecting: the organisation's admins receive it by email.")
        return redirect("integrations:support_organisation", pk=pk)
    result = xero_connection_disconnect(organisation=organisation, actor=request.user, as_support=True, reason=reason)
    messages.add_message(request, messages.SUCCESS if result.ok else messages.ERROR, result.message)
    return redirect("integrations:support_organisation", pk=pk)


@support_required
@require_POST
def support_xero_refresh(request: HttpRequest, pk: int) -> HttpResponse:
    organisation = get_object_or_404(Organisation, pk=pk)
    result = xero_connection_refresh(organisation=organisation, actor=request.user, as_support=True)
    messages.add_message(request, messages.SUCCESS if result.ok else messages.ERROR, result.message)
    return redirect("integrations:support_organisation", pk=pk)


@support_required
@require_POST
def support_xero_request_reconnect(request: HttpRequest, pk: int) -> HttpResponse:
    organisation = get_object_or_404(Organisation, pk=pk)
    result = xero_connection_request_reconnect(
        organisation=organisation, actor=request.user, reason=request.POST.get("reason", "")
    )
    messages.add_message(request, messages.SUCCESS if result.ok else messages.ERROR, result.message)
    return redirect("integrations:support_organisation", pk=pk)


@support_required
@require_POST
def support_request_resolve_view(request: HttpRequest, pk: int) -> HttpResponse:
    support_request = get_object_or_404(SupportRequest, pk=pk)
    support_request_resolve(support_request=support_request)
    messages.success(request, f"Marked “{support_request.subject}” resolved.")
    return redirect("integrations:support_console")


@support_required
def support_request_detail(request: HttpRequest, pk: int) -> HttpResponse:
    support_request = get_object_or_404(
        SupportRequest.objects.select_related("organisation", "organisation__xero_connection", "user"), pk=pk
    )
    if request.method == "POST":
        message = request.POST.get("message", "").strip()[:5000]
        if not message:
            messages.error(request, "Write the reply first.")
        else:
            reply = support_request_reply(support_request=support_request, author=request.user, message=message)
            messages.success(request, f"Reply emailed to {reply.emailed_to}.")
            return redirect("integrations:support_request", pk=pk)
    return render(
        request,
        "integrations/support/request.html",
        {"r": support_request, "replies": support_request.replies.select_related("author")},
    )
