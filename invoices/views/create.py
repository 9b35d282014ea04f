"""The new-batch page: its form of invoices and lines, the add-invoice, add-line and credit-note buttons, and
creating the batch."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from invoices.forms.batch import default_invoice_initial
from invoices.forms.entry import BatchEntry, entry_as_credit_note, entry_with_added_invoice, entry_with_added_line
from invoices.models import InvoiceBatch
from invoices.selectors import customer_names, xero_link_info
from invoices.services.batches.create import batch_create, batch_eligibility_now
from invoices.services.batches.inputs import NOT_SYNCED_REASONS, BatchInvalid, InvoiceInput
from invoices.services.batches.numbering import invoice_numbers_suggest
from invoices.services.batches.validation import batch_problems
from invoices.services.mapping import MappingUnavailable, currencies_enabled, mapping_choices, mapping_for
from invoices.states import documents_in_words
from organisations.decorators import admin_required
from organisations.locale import locale_of, today_for


def _created_message(request: HttpRequest, batch: InvoiceBatch, inputs: list[InvoiceInput]) -> None:
    credit_notes = sum(1 for document in inputs if document.is_credit_note)
    noun = documents_in_words(len(inputs) - credit_notes, credit_notes)
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
            _created_message(request, batch, inputs)
            return redirect("invoices:batch_detail", pk=batch.pk)
    context = _form_context(request, entry)
    context["show_errors"] = True
    return render(request, "invoices/batch_form.html", context, status=422)
