"""The CSV upload page and its sample file."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from invoices import csv_import
from invoices.forms.batch import CsvUploadForm
from invoices.models import InvoiceBatch
from invoices.selectors import xero_link_info
from invoices.services.batches.create import batch_create, batch_eligibility_now
from invoices.services.batches.inputs import NOT_SYNCED_REASONS, BatchInvalid
from invoices.services.mapping import mapping_for
from invoices.views.create import _created_message
from organisations.decorators import admin_required, member_required
from organisations.locale import locale_of, today_for


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
                _created_message(request, batch, list(parsed.invoices))
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
