"""Pages that make a refusal no dead end: fix a document that is not in Xero (an invoice or a credit note), cancel
it, resend it; and send a batch that was not synced, after a review of what it would create. One set of pages serves
both kinds of document (`FixPages` says how they differ)."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from invoices.fix.forms import (
    DocumentFixForm,
    FixLineFormSet,
    InvoiceFixForm,
    document_fix_of,
    fix_initial,
    fix_lines_initial,
    problems_onto,
)
from invoices.selectors import batch_get, customer_names, xero_link_info
from invoices.services.batch_send import BatchSendRefused, batch_is_unsent, batch_send_review, batch_send_to_xero
from invoices.services.fix import (
    INVOICE,
    DocumentKind,
    FixInvalid,
    FixRefused,
    cancel_refusal,
    document_cancel,
    document_fix,
    document_get,
    document_resend,
    fix_refusal,
    resend_refusal,
)
from invoices.services.fix.allocations import allocation_get, allocation_moved_away, allocation_remove, allocation_retry
from invoices.services.fix.credit_notes import CREDIT_NOTE
from invoices.services.mapping import MappingUnavailable, mapping_choices, mapping_for
from organisations.decorators import admin_required, member_required
from organisations.locale import locale_of


@dataclass(frozen=True)
class FixPages:
    kind: DocumentKind
    form: type[DocumentFixForm]
    url: str  # the URL names' stem: invoices:<url>_fix, _cancel, _resend
    anchor: str  # its row on the batch page: #<anchor>-<pk>
    title: str  # "Invoice" | "Credit note"


INVOICE_PAGES = FixPages(kind=INVOICE, form=InvoiceFixForm, url="invoice", anchor="invoice", title="Invoice")
CREDIT_NOTE_PAGES = FixPages(
    kind=CREDIT_NOTE, form=DocumentFixForm, url="credit_note", anchor="credit-note", title="Credit note"
)


def _back(pages: FixPages, document: Any) -> str:
    return reverse("invoices:batch_detail", args=[document.batch_id]) + f"#{pages.anchor}-{document.pk}"


def _chart(request: HttpRequest):
    try:
        return (
            mapping_choices(organisation=request.organisation)
            if xero_link_info(organisation=request.organisation).connected
            else None
        )
    except MappingUnavailable:
        return None


def _fix_page(request: HttpRequest, pages: FixPages, pk: int) -> HttpResponse:
    document = document_get(pages.kind, request.organisation, pk)
    refusal = fix_refusal(pages.kind, document)
    locale = locale_of(request.organisation)
    status = 200
    if request.method == "POST" and not refusal:
        form = pages.form(request.POST, locale=locale)
        lines = FixLineFormSet(request.POST, prefix="lines", form_kwargs={"locale": locale})
        resend = request.POST.get("action") == "resend"
        if form.is_valid() and lines.is_valid():
            try:
                document_fix(
                    kind=pages.kind,
                    organisation=request.organisation,
                    document_id=document.pk,
                    user=request.user,
                    fix=document_fix_of(form, lines),
                    resend=resend,
                )
            except FixInvalid as exc:
                problems_onto(form, lines, exc.problems)
            except FixRefused as exc:
                form.add_error(None, str(exc))
            else:
                if resend:
                    messages.success(request, f"Saved. Sending {pages.kind.label} {document.number} to Xero again.")
                else:
                    messages.success(request, f"Saved your changes to {document.number}.")
                return redirect(_back(pages, document))
        status = 422
    else:
        form = pages.form(initial=fix_initial(document), locale=locale)
        lines = FixLineFormSet(
            prefix="lines", initial=fix_lines_initial(list(document.lines.all())), form_kwargs={"locale": locale}
        )
    return render(
        request,
        "invoices/fix/edit.html",
        {
            "document": document,
            "pages": pages,
            "form": form,
            "lines": lines,
            "refusal": refusal,
            "can_resend": resend_refusal(pages.kind, document) is None,
            "back": _back(pages, document),
            "cancel_url": reverse(f"invoices:{pages.url}_cancel", args=[document.pk]),
            "choices": _chart(request),
            "mapping": mapping_for(request.organisation),
            "customer_names": customer_names(organisation=request.organisation),
        },
        status=status,
    )


def _cancel_page(request: HttpRequest, pages: FixPages, pk: int) -> HttpResponse:
    document = document_get(pages.kind, request.organisation, pk)
    if request.method == "POST":
        try:
            cancelled = document_cancel(
                kind=pages.kind, organisation=request.organisation, document_id=document.pk, user=request.user
            )
        except FixRefused as exc:
            messages.error(request, f"{document.number} was not cancelled: {exc}")
            return redirect(_back(pages, document))
        messages.success(request, f"{pages.title} {cancelled.number} was cancelled. Its number is free to use again.")
        return redirect("invoices:batch_detail", pk=cancelled.batch_id)
    return render(
        request,
        "invoices/fix/cancel.html",
        {
            "document": document,
            "pages": pages,
            "refusal": cancel_refusal(pages.kind, document),
            "back": _back(pages, document),
        },
    )


def _resend_action(request: HttpRequest, pages: FixPages, pk: int) -> HttpResponse:
    document = document_get(pages.kind, request.organisation, pk)
    try:
        document_resend(kind=pages.kind, organisation=request.organisation, document_id=document.pk, user=request.user)
    except FixRefused as exc:
        messages.info(request, f"{document.number} was not resent: {exc}")
    else:
        messages.success(request, f"Sending {pages.kind.label} {document.number} to Xero again.")
    return redirect(_back(pages, document))


def _pages_views(pages: FixPages) -> tuple[Callable, Callable, Callable]:
    """The fix page, the cancel page (a confirmation first) and the resend action (POST only) of one kind."""

    def fix_page(request: HttpRequest, pk: int) -> HttpResponse:
        return _fix_page(request, pages, pk)

    def cancel_page(request: HttpRequest, pk: int) -> HttpResponse:
        return _cancel_page(request, pages, pk)

    def resend_action(request: HttpRequest, pk: int) -> HttpResponse:
        return _resend_action(request, pages, pk)

    return member_required(fix_page), member_required(cancel_page), member_required(require_POST(resend_action))


invoice_fix_page, invoice_cancel_page, invoice_resend_action = _pages_views(INVOICE_PAGES)
credit_note_fix_page, credit_note_cancel_page, credit_note_resend_action = _pages_views(CREDIT_NOTE_PAGES)


# ---------------------------------------------------------------- a credit note's allocation Xero refused


def _allocation_back(allocation: Any) -> str:
    return _back(CREDIT_NOTE_PAGES, allocation.credit_note)


@member_required
@require_POST
def credit_note_allocation_retry_action(request: HttpRequest, pk: int) -> HttpResponse:
    allocation = allocation_get(request.organisation, pk)
    what = f"The allocation of {allocation.credit_note.number} to {allocation.invoice.number}"
    try:
        said = allocation_retry(organisation=request.organisation, allocation_id=allocation.pk, user=request.user)
    except FixRefused as exc:
        messages.info(request, f"{what} was not tried again: {exc}")
    else:
        messages.success(request, f"{what} is being tried again. {said}")
    return redirect(_allocation_back(allocation))


@member_required
def credit_note_allocation_remove_page(request: HttpRequest, pk: int) -> HttpResponse:
    """A confirmation first (GET), then the allocation request is dropped (POST)."""
    allocation = allocation_get(request.organisation, pk)
    if request.method == "POST":
        try:
            allocation_remove(organisation=request.organisation, allocation_id=allocation.pk, user=request.user)
        except FixRefused as exc:
            messages.error(request, f"The allocation was not removed: {exc}")
        else:
            messages.success(
                request,
                f"Removed the allocation of {allocation.credit_note.number} to {allocation.invoice.number}. "
                "Its credit stays on the credit note.",
            )
        return redirect(_allocation_back(allocation))
    return render(
        request,
        "invoices/fix/allocation_remove.html",
        {
            "allocation": allocation,
            "note": allocation.credit_note,
            "back": _allocation_back(allocation),
            "moved_away": allocation_moved_away(request.organisation, allocation) is not None,
        },
    )


@admin_required
def batch_send_page(request: HttpRequest, pk: int) -> HttpResponse:
    batch = batch_get(organisation=request.organisation, pk=pk)
    if not batch_is_unsent(batch):
        messages.info(request, "This batch already syncs to Xero.")
        return redirect("invoices:batch_detail", pk=batch.pk)
    if request.method == "POST":
        try:
            count = batch_send_to_xero(organisation=request.organisation, batch_id=batch.pk, user=request.user)
        except BatchSendRefused as exc:
            messages.error(request, f"The batch was not sent: {exc}")
        else:
            messages.success(request, f"Sending {count} invoice{'s' if count != 1 else ''} of “{batch.name}” to Xero.")
            return redirect("invoices:batch_detail", pk=batch.pk)
    review = batch_send_review(organisation=request.organisation, batch=batch)
    return render(
        request,
        "invoices/fix/batch_send.html",
        {"batch": batch, "review": review, "link": xero_link_info(organisation=request.organisation)},
        status=200 if review.can_send or request.method == "GET" else 422,
    )
