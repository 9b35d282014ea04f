"""Support console: each tenant's Xero webhook inbox (received, processed, ignored, failed, lag) and what
reconciliation had to repair (drift). Staff with the support role only; every action is an audit event."""

import datetime as dt

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from integrations.audit import audit_event_record
from integrations.models import ReconciliationState, WebhookEvent, XeroConnection
from integrations.services.reconciliation import reconciliation_enqueue
from integrations.webhooks.selectors import (
    webhook_inbox_organisation_ids,
    webhook_inbox_summaries,
    webhook_lag_percentiles,
)
from integrations.webhooks.sweep import webhook_events_retry_failed
from organisations.decorators import support_required
from organisations.models import Organisation

WINDOW = dt.timedelta(hours=24)
STATES = [("", "All")] + list(WebhookEvent.State.choices)


@support_required
def support_webhook_inbox(request: HttpRequest) -> HttpResponse:
    since = timezone.now() - WINDOW
    organisations = (
        Organisation.objects.filter(pk__in=webhook_inbox_organisation_ids(since=since))
        .select_related("xero_connection")
        .order_by("name")
    )
    page = Paginator(organisations, 25).get_page(request.GET.get("page"))
    ids = [o.pk for o in page.object_list]
    summaries = webhook_inbox_summaries(organisation_ids=[*ids, None], since=since)
    lags = webhook_lag_percentiles(organisation_ids=ids, since=since)
    states = {s.organisation_id: s for s in ReconciliationState.objects.filter(organisation_id__in=ids)}
    rows = [
        {"organisation": o, "summary": summaries.get(o.pk), "state": states.get(o.pk), "lag": lags[o.pk]}
        for o in page.object_list
    ]
    return render(
        request,
        "integrations/support/webhooks.html",
        {
            "rows": rows,
            "page": page,
            "unknown": summaries.get(None),
            "window_hours": int(WINDOW.total_seconds() // 3600),
        },
    )


@support_required
def support_webhook_inbox_organisation(request: HttpRequest, pk: int) -> HttpResponse:
    organisation = get_object_or_404(Organisation, pk=pk)
    state_filter = request.GET.get("state", "")
    if state_filter not in dict(STATES):
        state_filter = ""
    since = timezone.now() - WINDOW
    events = WebhookEvent.objects.filter(organisation=organisation)
    if state_filter:
        events = events.filter(state=state_filter)
    page = Paginator(events.order_by("-received_at", "-pk"), 50).get_page(request.GET.get("page"))
    return render(
        request,
        "integrations/support/webhooks_organisation.html",
        {
            "organisation": organisation,
            "connection": XeroConnection.objects.filter(organisation=organisation).first(),
            "summary": webhook_inbox_summaries(organisation_ids=[organisation.pk], since=since).get(organisation.pk),
            "lag": webhook_lag_percentiles(organisation_ids=[organisation.pk], since=since)[organisation.pk],
            "reconciliation": ReconciliationState.objects.filter(organisation=organisation).first(),
            "page": page,
            "states": STATES,
            "state_filter": state_filter,
            "window_hours": int(WINDOW.total_seconds() // 3600),
        },
    )


@support_required
@require_POST
def support_webhook_retry_failed(request: HttpRequest, pk: int) -> HttpResponse:
    organisation = get_object_or_404(Organisation, pk=pk)
    count = webhook_events_retry_failed(organisation_id=organisation.pk)
    audit_event_record(
        organisation=organisation,
        action="xero_webhooks_retry_failed",
        actor=request.user,
        as_support=True,
        detail={"events": count},
    )
    messages.success(request, f"{count} failed event(s) queued again." if count else "No failed events to retry.")
    return redirect("webhooks:support_organisation_inbox", pk=pk)


@support_required
@require_POST
def support_webhook_reconcile(request: HttpRequest, pk: int) -> HttpResponse:
    organisation = get_object_or_404(Organisation, pk=pk)
    queued = reconciliation_enqueue(organisation_id=organisation.pk)
    audit_event_record(
        organisation=organisation,
        action="xero_reconcile_requested",
        actor=request.user,
        as_support=True,
        outcome="success" if queued else "failure",
    )
    if queued:
        messages.success(request, "Reconciliation queued: Xero is asked for everything changed since the last pass.")
    else:
        messages.error(request, "Could not queue reconciliation (the task queue is unreachable); beat retries it.")
    return redirect("webhooks:support_organisation_inbox", pk=pk)
