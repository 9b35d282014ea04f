"""The dashboard, the batch list and a batch's page: its invoices, live progress and retrying failed ones."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from invoices.first_run import dashboard_first_run
from invoices.models import CreditNoteAllocation, Invoice, InvoiceBatch
from invoices.push_notice import batch_push_notice
from invoices.selectors import (
    batch_cancelled_invoices,
    batch_credit_notes,
    batch_get,
    batch_invoice_rows,
    batch_list,
    batch_progress,
    invoice_get,
    invoice_sync_counts,
    xero_link_info,
)
from invoices.services.batches.inputs import NOT_SYNCED_REASONS
from invoices.services.fix import FIXABLE, RESENDABLE, cancel_refusal, fix_refusal, resend_refusal
from invoices.services.fix.credit_notes import CREDIT_NOTE
from invoices.services.mapping import mapping_for
from organisations.decorators import member_required


@member_required
def dashboard(request: HttpRequest) -> HttpResponse:
    organisation = request.organisation
    return render(
        request,
        "invoices/dashboard.html",
        {
            "counts": invoice_sync_counts(organisation=organisation),
            "recent_batches": batch_list(organisation=organisation)[:5],
            **dashboard_first_run(organisation=organisation, is_admin=request.membership.is_admin),
        },
    )


@member_required
def batches(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()[:100]
    state = request.GET.get("state", "")
    page = Paginator(batch_list(organisation=request.organisation, query=query, state=state), 20).get_page(
        request.GET.get("page")
    )
    return render(request, "invoices/batch_list.html", {"page": page, "query": query, "state": state})


# ---------------------------------------------------------------- batch detail, progress, retry


def _detail_context(request: HttpRequest, batch: InvoiceBatch) -> dict:
    organisation = request.organisation
    state = request.GET.get("state", "")
    page = Paginator(batch_invoice_rows(organisation=organisation, batch=batch, state=state), 50).get_page(
        request.GET.get("page")
    )
    link = xero_link_info(organisation=organisation)
    for invoice in page.object_list:
        invoice.xero_url = link.url_for(invoice)
        invoice.fixable = invoice.sync_state in FIXABLE
        invoice.resendable = invoice.sync_state in RESENDABLE
        invoice.xero_status_label = (
            Invoice.Status(invoice.xero_status).label
            if invoice.xero_status in Invoice.Status.values
            else invoice.xero_status
        )
    credit_notes = batch_credit_notes(organisation=organisation, batch=batch)
    for note in credit_notes:
        note.editable = fix_refusal(CREDIT_NOTE, note) is None
        note.cancellable = cancel_refusal(CREDIT_NOTE, note) is None
        note.resendable = resend_refusal(CREDIT_NOTE, note) is None
    stuck = (CreditNoteAllocation.State.REFUSED, CreditNoteAllocation.State.NEEDS_ATTENTION)
    allocations_stuck = sum(a.state in stuck for note in credit_notes for a in note.allocations.all())
    progress = batch_progress(organisation=organisation, batch=batch)
    mapping_missing = progress.waiting > 0 and mapping_for(organisation) is None
    return {
        "batch": batch,
        "credit_notes": credit_notes,
        "allocations_stuck": allocations_stuck,
        "page": page,
        "state": state,
        "progress": progress,
        "link": link,
        "not_synced_reason": NOT_SYNCED_REASONS.get(batch.eligibility, ""),
        "sent_reason": NOT_SYNCED_REASONS.get(batch.eligibility_at_creation, "") if batch.sent_to_xero_at else "",
        "cancelled": batch_cancelled_invoices(organisation=organisation, batch=batch),
        "mapping_missing": mapping_missing,
        "blocked": mapping_missing or link.needs_reconnect,
        "push_notice": (
            None
            if mapping_missing or link.needs_reconnect
            else batch_push_notice(organisation=organisation, progress=progress)
        ),
    }


@member_required
def batch_detail(request: HttpRequest, pk: int) -> HttpResponse:
    batch = batch_get(organisation=request.organisation, pk=pk)
    return render(request, "invoices/batch_detail.html", _detail_context(request, batch))


@member_required
@require_GET
def batch_progress_partial(request: HttpRequest, pk: int) -> HttpResponse:
    batch = batch_get(organisation=request.organisation, pk=pk)
    progress = batch_progress(organisation=request.organisation, batch=batch)
    link = xero_link_info(organisation=request.organisation)
    blocked = link.needs_reconnect or (progress.waiting > 0 and mapping_for(request.organisation) is None)
    notice = None if blocked else batch_push_notice(organisation=request.organisation, progress=progress)
    response = render(
        request,
        "invoices/_batch_progress.html",
        {"batch": batch, "progress": progress, "link": link, "blocked": blocked, "push_notice": notice},
    )
    if not progress.active and request.htmx:
        # The push finished while the page was open: reload it once so every row shows its outcome.
        response["HX-Refresh"] = "true"
    return response


def _retry_failed(**kwargs) -> int:
    # The push engine owns retries (invoices/services/push): failed -> pending, who retried, enqueue.
    from invoices.services.push import invoices_retry_failed

    return invoices_retry_failed(**kwargs)


@member_required
@require_POST
def batch_retry(request: HttpRequest, pk: int) -> HttpResponse:
    batch = batch_get(organisation=request.organisation, pk=pk)
    count = _retry_failed(organisation=request.organisation, batch=batch, user=request.user)
    if count:
        messages.success(request, f"Sending {count} failed invoice{'s' if count != 1 else ''} to Xero again.")
    else:
        messages.info(request, "There are no failed invoices to retry in this batch.")
    return redirect("invoices:batch_detail", pk=batch.pk)


@member_required
@require_POST
def invoice_retry(request: HttpRequest, pk: int, invoice_pk: int) -> HttpResponse:
    batch = batch_get(organisation=request.organisation, pk=pk)
    invoice = invoice_get(organisation=request.organisation, batch=batch, pk=invoice_pk)
    count = _retry_failed(organisation=request.organisation, batch=batch, user=request.user, invoice_ids=[invoice.pk])
    if count:
        messages.success(request, f"Sending invoice {invoice.number} to Xero again.")
    else:
        messages.info(request, f"Invoice {invoice.number} has not failed, so there is nothing to retry.")
    return redirect("invoices:batch_detail", pk=batch.pk)
