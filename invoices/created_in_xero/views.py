"""Pages of the two-way sync: invoices created directly in Xero, and edit / void / delete of an invoice already in
Xero (each behind a confirmation), plus the htmx partial that keeps the batch page's Xero states live."""

import datetime as dt

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET

from invoices.created_in_xero.models import XeroInvoiceChange
from invoices.created_in_xero.selectors import (
    created_in_xero_list,
    invoice_for_xero_action,
    invoices_xero_states,
    open_changes_by_invoice,
)
from invoices.forms.edit import InvoiceEditForm, LineEditFormSet, line_edit_initial, line_edits
from invoices.models import Invoice
from invoices.selectors import xero_link_info
from invoices.services.outbound import (
    ChangeRefused,
    InvoiceEdit,
    LineEdit,
    invoice_change_refusal,
    invoice_change_request,
)
from invoices.states import invoice_status
from organisations.decorators import member_required
from organisations.locale import locale_of, today_for

A = XeroInvoiceChange.Action


@member_required
def created_in_xero(request: HttpRequest) -> HttpResponse:
    organisation = request.organisation
    page = Paginator(created_in_xero_list(organisation=organisation), 50).get_page(request.GET.get("page"))
    link = xero_link_info(organisation=organisation)
    today = today_for(organisation)
    for row in page.object_list:
        row.xero_url = link.invoice_url(row.xero_invoice_id)
        # The same vocabulary as our own invoices (invoices/states.py): it is in Xero, so its Xero status decides.
        row.display_status = invoice_status(
            sync_state="synced",
            xero_status=row.status,
            status=row.status,
            amount_due=row.amount_due,
            amount_paid=row.amount_paid,
            due_date=row.due_date,
            today=today,
        )
    return render(request, "invoices/xero/created_list.html", {"page": page, "link": link})


def _based_on(request: HttpRequest) -> dt.datetime | None:
    raw = request.POST.get("based_on", "")
    try:
        return dt.datetime.fromisoformat(raw) if raw else None
    except ValueError:
        return None


def _back(invoice: Invoice) -> str:
    return reverse("invoices:batch_detail", args=[invoice.batch_id]) + f"#invoice-{invoice.pk}"


def _confirm(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    invoice = invoice_for_xero_action(organisation=request.organisation, pk=pk)
    if request.method == "POST":
        try:
            invoice_change_request(
                organisation=request.organisation,
                invoice_id=invoice.pk,
                action=action,
                user=request.user,
                based_on=_based_on(request),
            )
        except ChangeRefused as exc:
            messages.error(request, str(exc))
        else:
            verb = "Voiding" if action == A.VOID else "Deleting"
            messages.success(request, f"{verb} {invoice.number} in Xero… its state here updates by itself.")
        return redirect(_back(invoice))
    return render(
        request,
        "invoices/xero/confirm.html",
        {
            "invoice": invoice,
            "action": action,
            "action_label": A(action).label,
            "refusal": invoice_change_refusal(invoice=invoice, action=action),
            "back": _back(invoice),
        },
    )


@member_required
def invoice_void(request: HttpRequest, pk: int) -> HttpResponse:
    return _confirm(request, pk, A.VOID)


@member_required
def invoice_delete(request: HttpRequest, pk: int) -> HttpResponse:
    return _confirm(request, pk, A.DELETE)


@member_required
def invoice_edit(request: HttpRequest, pk: int) -> HttpResponse:
    invoice = invoice_for_xero_action(organisation=request.organisation, pk=pk)
    refusal = invoice_change_refusal(invoice=invoice, action=A.EDIT)
    if request.method == "POST" and not refusal:
        form = InvoiceEditForm(request.POST, locale=locale_of(request.organisation))
        lines = LineEditFormSet(request.POST, prefix="lines", form_kwargs={"locale": locale_of(request.organisation)})
        if form.is_valid() and lines.is_valid():
            edits = [LineEdit(**row) for row in line_edits(lines, existing=list(invoice.lines.all()))]
            edit = InvoiceEdit(
                reference=form.cleaned_data["reference"],
                issue_date=form.cleaned_data["issue_date"],
                due_date=form.cleaned_data["due_date"],
                lines=edits,
            )
            try:
                invoice_change_request(
                    organisation=request.organisation,
                    invoice_id=invoice.pk,
                    action=A.EDIT,
                    user=request.user,
                    based_on=_based_on(request),
                    edit=edit,
                )
            except ChangeRefused as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, f"Sending your changes to {invoice.number} to Xero…")
                return redirect(_back(invoice))
    else:
        form = InvoiceEditForm(
            initial={
                "reference": invoice.reference,
                "issue_date": invoice.issue_date,
                "due_date": invoice.due_date,
                "based_on": invoice.xero_updated_at.isoformat() if invoice.xero_updated_at else "",
            },
            locale=locale_of(request.organisation),
        )
        lines = LineEditFormSet(
            prefix="lines",
            initial=line_edit_initial(list(invoice.lines.all())),
            form_kwargs={"locale": locale_of(request.organisation)},
        )
    sources = {line.pk: line for line in invoice.lines.all()}
    for row in lines.forms:
        value = str(row["line_id"].value() or "")
        row.source_line = sources.get(int(value)) if value.isdigit() else None
    return render(
        request,
        "invoices/xero/edit.html",
        {
            "invoice": invoice,
            "form": form,
            "lines": lines,
            "refusal": refusal,
            "back": _back(invoice),
        },
    )


_MAX_ID = 2**63 - 1  # a PostgreSQL bigint


def _poll_ids(raw: str) -> list[int]:
    """Up to 100 invoice ids from "1,2,3". Anything else is skipped: "²" and "٣" are digits to str.isdigit() but not
    to int() or a URL we made, and an id past a bigint is no row (PostgreSQL would refuse to compare it)."""
    ids = []
    for part in raw.split(",")[:100]:
        part = part.strip()
        if part.isascii() and part.isdigit() and len(part) <= 19 and 0 < int(part) <= _MAX_ID:
            ids.append(int(part))
    return ids


@member_required
@require_GET
def invoice_xero_states(request: HttpRequest) -> HttpResponse:
    ids = _poll_ids(request.GET.get("ids", ""))
    invoices = invoices_xero_states(organisation=request.organisation, ids=ids)
    changes = open_changes_by_invoice(organisation=request.organisation, ids=ids)
    for invoice in invoices:
        invoice.xero_change = changes.get(invoice.pk)
        invoice.xero_status_label = (
            Invoice.Status(invoice.xero_status).label
            if invoice.xero_status in Invoice.Status.values
            else invoice.xero_status
        )
    return render(request, "invoices/xero/_states_oob.html", {"invoices": invoices})
