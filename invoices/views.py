from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from invoices import csv_import
from invoices.first_run import dashboard_first_run
from invoices.forms import (
    BatchEntry,
    CsvUploadForm,
    MappingForm,
    default_invoice_initial,
    entry_as_credit_note,
    entry_with_added_invoice,
    entry_with_added_line,
)
from invoices.models import Invoice, InvoiceBatch
from invoices.selectors import (
    batch_credit_notes,
    batch_get,
    batch_invoice_rows,
    batch_list,
    batch_progress,
    batch_push_notice,
    customer_names,
    invoice_get,
    invoice_sync_counts,
    xero_link_info,
)
from invoices.services.batches import (
    NOT_SYNCED_REASONS,
    BatchInvalid,
    batch_create,
    batch_eligibility_now,
    batch_problems,
    invoice_numbers_suggest,
)
from invoices.services.fix import FIXABLE, RESENDABLE, cancel_refusal, fix_refusal, resend_refusal
from invoices.services.fix.credit_notes import CREDIT_NOTE
from invoices.services.mapping import (
    MappingRejected,
    MappingUnavailable,
    currencies_enabled,
    mapping_choices,
    mapping_for,
    mapping_save,
)
from organisations.decorators import admin_required, member_required
from organisations.locale import locale_of, today_for


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
    progress = batch_progress(organisation=organisation, batch=batch)
    mapping_missing = progress.waiting > 0 and mapping_for(organisation) is None
    return {
        "batch": batch,
        "credit_notes": credit_notes,
        "page": page,
        "state": state,
        "progress": progress,
        "link": link,
        "not_synced_reason": NOT_SYNCED_REASONS.get(batch.eligibility, ""),
        "sent_reason": NOT_SYNCED_REASONS.get(batch.eligibility_at_creation, "") if batch.sent_to_xero_at else "",
        "cancelled": batch.cancelled_invoices.select_related("cancelled_by"),
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


# ---------------------------------------------------------------- creating batches


def _created_message(request: HttpRequest, batch: InvoiceBatch, count: int) -> None:
    noun = f"{count} invoice{'s' if count != 1 else ''}"
    if batch.eligibility != InvoiceBatch.Eligibility.ELIGIBLE:
        messages.info(request, f"Batch “{batch.name}” created with {noun}. {NOT_SYNCED_REASONS[batch.eligibility]}")
    elif mapping_for(request.organisation) is None:
        messages.warning(
            request,
            f"Batch “{batch.name}” created with {noun}. They wait for Xero until an admin "
            "chooses the default revenue account and tax rate.",
        )
    else:
        messages.success(request, f"Batch “{batch.name}” created with {noun}. They are on their way to Xero.")


def _form_context(request: HttpRequest, entry: BatchEntry) -> dict:
    organisation = request.organisation
    try:
        choices = (
            mapping_choices(organisation=organisation) if xero_link_info(organisation=organisation).connected else None
        )
    except MappingUnavailable:
        choices = None
    return {
        "entry": entry,
        "customer_names": customer_names(organisation=organisation),
        "eligibility": batch_eligibility_now(organisation=organisation),
        "mapping": mapping_for(organisation),
        "choices": choices,
        "currencies": _currencies(organisation, connected=choices is not None),
        "not_synced_reasons": NOT_SYNCED_REASONS,
        "link": xero_link_info(organisation=organisation),
    }


def _currencies(organisation, *, connected: bool) -> list[str]:
    """The currencies enabled in the organisation's Xero (GET /Currencies, cached); the base one if they cannot be
    read; a few common codes when Xero is not connected (such a batch is not synced anyway)."""
    if connected:
        try:
            return currencies_enabled(organisation=organisation)
        except MappingUnavailable:
            pass
    base = xero_link_info(organisation=organisation).base_currency
    return [base] if base else ["AUD", "NZD", "GBP", "USD", "EUR", "CAD", "SGD", "ZAR"]


def _last_number(entry: BatchEntry) -> str:
    numbers = [entry.data.get(f"{form.prefix}-number", "") for form in entry.invoices.forms] if entry.data else []
    return next((n for n in reversed(numbers) if n.strip()), "")


@admin_required
def batch_new(request: HttpRequest) -> HttpResponse:
    organisation = request.organisation
    locale = locale_of(organisation)
    if request.method != "POST":
        number = invoice_numbers_suggest(organisation=organisation)[0]
        currency = xero_link_info(organisation=organisation).base_currency or "AUD"
        entry = BatchEntry(
            initial_invoices=[default_invoice_initial(number=number, currency=currency, today=today_for(organisation))],
            locale=locale,
        )
        return render(request, "invoices/batch_form.html", _form_context(request, entry))

    action = request.POST.get("action", "create")
    if action == "add_invoice":
        current = BatchEntry(request.POST, locale=locale)
        after = _last_number(current)
        entry = entry_with_added_invoice(
            request.POST, next_number=invoice_numbers_suggest(organisation=organisation, after=after)[0], locale=locale
        )
        return render(request, "invoices/batch_form.html", _form_context(request, entry))
    if action.startswith("credit_note:"):
        try:
            index = int(action.split(":", 1)[1])
        except ValueError:
            index = 0
        entry = entry_as_credit_note(request.POST, invoice_index=index, locale=locale)
        return render(request, "invoices/batch_form.html", _form_context(request, entry))
    if action.startswith("add_line:"):
        try:
            index = int(action.split(":", 1)[1])
        except ValueError:
            index = 0
        entry = entry_with_added_line(request.POST, invoice_index=index, locale=locale)
        return render(request, "invoices/batch_form.html", _form_context(request, entry))

    entry = BatchEntry(request.POST, locale=locale)
    if not entry.is_valid():
        # The rows the form found fine are checked against Xero's chart too, so every problem shows at once.
        valid = entry.invoice_inputs(only_valid=True)
        if valid:
            entry.add_problems(batch_problems(organisation=organisation, name="-", invoices=valid), batch_level=False)
    else:
        inputs = entry.invoice_inputs()
        try:
            batch = batch_create(
                organisation=organisation,
                user=request.user,
                name=entry.name_form.cleaned_data["name"],
                invoices=inputs,
                source=InvoiceBatch.Source.FORM,
            )
        except BatchInvalid as exc:
            entry.add_problems(exc.problems)
        else:
            _created_message(request, batch, len(inputs))
            return redirect("invoices:batch_detail", pk=batch.pk)
    context = _form_context(request, entry)
    context["show_errors"] = True
    return render(request, "invoices/batch_form.html", context, status=422)


@admin_required
def batch_upload(request: HttpRequest) -> HttpResponse:
    form = CsvUploadForm(request.POST or None, request.FILES or None)
    form.show_errors = request.method == "POST"
    context = {
        "form": form,
        "columns": csv_import.COLUMNS,
        "max_rows": csv_import.MAX_ROWS,
        "max_mb": csv_import.MAX_BYTES // 1024 // 1024,
        "eligibility": batch_eligibility_now(organisation=request.organisation),
        "mapping": mapping_for(request.organisation),
        "link": xero_link_info(organisation=request.organisation),
        "not_synced_reasons": NOT_SYNCED_REASONS,
        "locale": locale_of(request.organisation),
    }
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        if upload.size > csv_import.MAX_BYTES:
            parsed = csv_import.CsvBatch(
                errors=[
                    csv_import.RowError(
                        0,
                        "",
                        f"The file is {upload.size / 1024 / 1024:.1f} MB; the limit is {context['max_mb']} MB. "
                        "Split it into several batches.",
                    )
                ]
            )
        else:
            parsed = csv_import.parse_batch_csv(
                upload.read(), locale=locale_of(request.organisation), today=today_for(request.organisation)
            )
        errors = parsed.errors
        if parsed.ok:
            try:
                batch = batch_create(
                    organisation=request.organisation,
                    user=request.user,
                    name=form.cleaned_data["name"],
                    invoices=parsed.invoices,
                    source=InvoiceBatch.Source.CSV,
                )
            except BatchInvalid as exc:
                errors = parsed.errors_for(exc.problems)
            else:
                _created_message(request, batch, len(parsed.invoices))
                return redirect("invoices:batch_detail", pk=batch.pk)
        context.update(
            row_errors=errors[: csv_import.MAX_ERRORS_SHOWN],
            error_total=len(errors),
            file_name=upload.name,
            rows=parsed.rows,
        )
        return render(request, "invoices/batch_upload.html", context, status=422)
    return render(request, "invoices/batch_upload.html", context, status=422 if form.errors else 200)


@member_required
@require_GET
def batch_sample_csv(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(csv_import.sample_csv(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="coordinoter-invoice-batch-sample.csv"'
    return response


# ---------------------------------------------------------------- mapping settings


@admin_required
def mapping_settings(request: HttpRequest) -> HttpResponse:
    organisation = request.organisation
    refresh = request.method == "POST" and request.POST.get("action") == "refresh"
    choices, problem = None, ""
    try:
        choices = mapping_choices(organisation=organisation, refresh=refresh)
    except MappingUnavailable as exc:
        problem = str(exc)
    mapping = mapping_for(organisation)
    initial = {"revenue_account_code": mapping.revenue_account_code, "tax_type": mapping.tax_type} if mapping else {}
    saving = request.method == "POST" and not refresh
    form = MappingForm(
        request.POST if saving else None,
        initial=initial,
        accounts=choices.accounts if choices else (),
        tax_rates=choices.tax_rates if choices else (),
    )
    form.show_errors = saving
    if refresh and choices:
        messages.success(request, "Accounts and tax rates refreshed from Xero.")
        return redirect("invoices:mapping")
    if saving and choices and form.is_valid():
        try:
            mapping_save(
                organisation=organisation,
                user=request.user,
                revenue_account_code=form.cleaned_data["revenue_account_code"],
                tax_type=form.cleaned_data["tax_type"],
            )
        except MappingRejected as exc:
            form.add_error(None, str(exc))
        except MappingUnavailable as exc:
            problem = str(exc)
        else:
            messages.success(request, "Xero mapping saved. New and waiting invoices use it.")
            return redirect("invoices:mapping")
    current_missing = []
    if mapping and choices:
        if mapping.revenue_account_code not in {a.code for a in choices.accounts}:
            current_missing.append(
                f"The account {mapping.revenue_account_code} is no longer an active revenue account in Xero."
            )
        if mapping.tax_type not in {r.tax_type for r in choices.tax_rates}:
            current_missing.append(
                f"The tax rate {mapping.tax_name or mapping.tax_type} is no longer available for sales in Xero."
            )
    status = 422 if saving and (form.errors or problem) else 200
    return render(
        request,
        "invoices/mapping.html",
        {
            "form": form,
            "choices": choices,
            "problem": problem,
            "mapping": mapping,
            "current_missing": current_missing,
            "link": xero_link_info(organisation=organisation),
            "manage_url": reverse("integrations:manage"),
        },
        status=status,
    )
