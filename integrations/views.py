"""Manage Integrations, the OAuth round trip, the tenant picker and disconnect. Thin: parse, call one service,
shape the answer. Admins act; accountants see the state, and their POSTs get 403 (admin_required)."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from integrations.connections.choose import xero_tenant_choice_cancel, xero_tenant_choose
from integrations.connections.connect import xero_connect_callback, xero_connect_start
from integrations.connections.disconnect import xero_connection_disconnect
from integrations.connections.types import ConnectBlocked, ConnectOutcome
from integrations.models import XeroConnection
from integrations.selectors import (
    pending_choice_consent_unknown,
    pending_choice_get,
    xero_connection_for,
    xero_tenant_ids_held_elsewhere,
)
from organisations.decorators import admin_required, member_required

_LEVEL = {"connected": messages.SUCCESS, "cancelled": messages.INFO}


def _session_key(request: HttpRequest) -> str:
    if not request.session.session_key:
        request.session.save()
    return request.session.session_key


def _finish(request: HttpRequest, outcome: ConnectOutcome) -> HttpResponse:
    if outcome.kind == "choose":
        return redirect("integrations:xero_choose", pk=outcome.pending_id)
    messages.add_message(request, _LEVEL.get(outcome.kind, messages.ERROR), outcome.message)
    return redirect("integrations:manage")


@member_required
def manage_integrations(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "integrations/manage.html",
        {
            "connection": xero_connection_for(request.organisation),
            "can_manage": request.membership.is_admin,
            "Status": XeroConnection.Status,
        },
    )


@admin_required
@require_POST
def xero_connect(request: HttpRequest) -> HttpResponse:
    try:
        url = xero_connect_start(
            organisation=request.organisation, user=request.user, session_key=_session_key(request)
        )
    except ConnectBlocked as exc:
        messages.error(request, str(exc))
        return redirect("integrations:manage")
    return redirect(url)


@admin_required
@require_GET
def xero_callback(request: HttpRequest) -> HttpResponse:
    outcome = xero_connect_callback(
        organisation=request.organisation,
        user=request.user,
        session_key=request.session.session_key or "",
        state=request.GET.get("state", ""),
        code=request.GET.get("code", ""),
        error=request.GET.get("error", ""),
    )
    return _finish(request, outcome)


@admin_required
@require_http_methods(["GET", "POST"])
def xero_choose(request: HttpRequest, pk) -> HttpResponse:
    pending = pending_choice_get(request.organisation, pk=pk)
    error = ""
    if request.method == "POST":
        if "cancel" in request.POST:
            outcome = xero_tenant_choice_cancel(
                organisation=request.organisation,
                user=request.user,
                session_key=_session_key(request),
                pending_id=pending.pk,
            )
        else:
            outcome = xero_tenant_choose(
                organisation=request.organisation,
                user=request.user,
                session_key=_session_key(request),
                pending_id=pending.pk,
                tenant_id=request.POST.get("tenant_id", ""),
                confirm_switch=request.POST.get("confirm_switch") == "yes",
            )
        if outcome.kind != "invalid":
            return _finish(request, outcome)
        error = outcome.message
    elif pending.consumed_at is not None:
        messages.info(request, "That choice was already made.")
        return redirect("integrations:manage")
    offered = [c for c in pending.candidates if c["tenant_type"] == "ORGANISATION"]
    taken = xero_tenant_ids_held_elsewhere(request.organisation, tenant_ids=[c["tenant_id"] for c in offered])
    candidates = [{**c, "taken": c["tenant_id"] in taken} for c in offered]
    return render(
        request,
        "integrations/choose.html",
        {
            "pending": pending,
            "candidates": candidates,
            "consent_unknown": pending_choice_consent_unknown(pending),
            "error": error,
            "selected": request.POST.get("tenant_id", ""),
        },
        status=422 if error else 200,
    )


@admin_required
@require_http_methods(["GET", "POST"])
def xero_disconnect(request: HttpRequest) -> HttpResponse:
    connection = xero_connection_for(request.organisation)
    if request.method == "POST":
        result = xero_connection_disconnect(organisation=request.organisation, actor=request.user)
        messages.add_message(request, messages.SUCCESS if result.ok else messages.ERROR, result.message)
        return redirect("integrations:manage")
    if connection is None or connection.status in (
        XeroConnection.Status.NOT_CONNECTED,
        XeroConnection.Status.DISCONNECTED,
    ):
        return redirect("integrations:manage")
    return render(request, "integrations/disconnect_confirm.html", {"connection": connection})
