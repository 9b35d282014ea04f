"""Pages that make a refusal no dead end: fix an invoice that is not in Xero, cancel it, resend it; and send a batch
that was not synced, after a review of what it would create."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from invoices.fix_forms import (
    FixLineFormSet,
    InvoiceFixForm,
    fix_initial,
    fix_lines_initial,
    invoice_fix_of,
    problems_onto,
)
from invoices.models import Invoice
from invoices.selectors import batch_get, customer_names, xero_link_info
from invoices.services.batch_send import BatchSendRefused, batch_is_unsent, batch_send_review, batch_send_to_xero
from invoices.services.fix import (
    FixInvalid,
    FixRefused,
    invoice_cancel,
    invoice_fix,
    invoice_fix_refusal,
    invoice_resend,
    invoice_resend_refusal,
)
from invoices.services.mapping import MappingUnavailable, mapping_choices, mapping_for
from invoices.xero_selectors import invoice_for_xero_action
from organisations.decorators import admin_required, member_required
from organisations.locale import locale_of


def _back(invoice: Invoice) -> str:
    return reverse("invoices:batch_detail", args=[invoice.batch_id]) + f"#invoice-{invoice.pk}"


def _chart(request: HttpRequest):
    try:
        return (
            mapping_choices(organisation=request.organisation)
            if xero_link_info(organisation=request.organisation).connected
            else None
        )
    except MappingUnavailable:
        return None


@member_required
def invoice_fix_page(request: HttpRequest, pk: int) -> HttpResponse:
    invoice = invoice_for_xero_action(organisation=request.organisation, pk=pk)
    refusal = invoice_fix_refusal(invoice=invoice)
    status = 200
    if request.method == "POST" and not refusal:
        form = InvoiceFixForm(request.POST, locale=locale_of(request.organisation))
        lines = FixLineFormSet(request.POST, prefix="lines", form_kwargs={"locale": locale_of(request.organisation)})
        resend = request.POST.get("action") == "resend"
        if form.is_valid() and lines.is_valid():
            try:
                invoice_fix(
                    organisation=request.organisation,
                    invoice_id=invoice.pk,
                    user=request.user,
                    fix=invoice_fix_of(form, lines),
                    resend=resend,
                )
            except FixInvalid as exc:
                problems_onto(form, lines, exc.problems)
            except FixRefused as exc:
                form.add_error(None, str(exc))
            else:
                if resend:
                    messages.success(request, f"Saved. Sending invoice {invoice.number} to Xero again.")
                else:
                    messages.success(request, f"Saved your changes to {invoice.number}.")
                return redirect(_back(invoice))
        status = 422
    else:
        form = InvoiceFixForm(initial=fix_initial(invoice), locale=locale_of(request.organisation))
        lines = FixLineFormSet(
            prefix="lines",
            initial=fix_lines_initial(list(invoice.lines.all())),
            form_kwargs={"locale": locale_of(request.organisation)},
        )
    return render(
        request,
        "invoices/fix/edit.html",
        {
            "invoice": invoice,
            "form": form,
            "lines": lines,
            "refusal": refusal,
            "can_resend": invoice_resend_refusal(invoice=invoice) is None,
            "back": _back(invoice),
            "choices": _chart(request),
            "mapping": mapping_for(request.organisation),
            "customer_names": customer_names(organisation=request.organisation),
        },
        status=status,
    )


@member_required
def invoice_cancel_page(request: HttpRequest, pk: int) -> HttpResponse:
    invoice = invoice_for_xero_action(organisation=request.organisation, pk=pk)
    if request.method == "POST":
        try:
            cancelled = invoice_cancel(organisation=request.organisation, invoice_id=invoice.pk, user=request.user)
        except FixRefused as exc:
            messages.error(request, f"{invoice.number} was not cancelled: {exc}")
            return redirect(_back(invoice))
        messages.success(request, f"Invoice {cancelled.number} was cancelled. Its number is free to use again.")
        return redirect("invoices:batch_detail", pk=cancelled.batch_id)
    return render(
        request,
        "invoices/fix/cancel.html",
        {"invoice": invoice, "refusal": invoice_fix_refusal(invoice=invoice), "back": _back(invoice)},
    )


@member_required
@require_POST
def invoice_resend_action(request: HttpRequest, pk: int) -> HttpResponse:
    invoice = invoice_for_xero_action(organisation=request.organisation, pk=pk)
    try:
        invoice_resend(organisation=request.organisation, invoice_id=invoice.pk, user=request.user)
    except FixRefused as exc:
        messages.info(request, f"{invoice.number} was not resent: {exc}")
    else:
        messages.success(request, f"Sending invoice {invoice.number} to Xero again.")
    return redirect(_back(invoice))


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
