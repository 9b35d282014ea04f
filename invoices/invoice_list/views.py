"""The invoice list across batches and its CSV export."""

import csv

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from invoices.invoice_list.selectors import STATUSES, invoice_filters_from, invoices_filtered
from invoices.selectors import xero_link_info
from invoices.services.fix import FIXABLE
from invoices.states import status_of
from organisations.decorators import member_required
from organisations.locale import today_for

PAGE_SIZE = 50
# A spreadsheet runs a cell that starts with one of these as a formula (OWASP "CSV injection"): a quote first makes
# it text. https://owasp.org/www-community/attacks/CSV_Injection
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CSV_COLUMNS = [
    "Invoice number",
    "Batch",
    "Customer",
    "Reference",
    "Issue date",
    "Due date",
    "Currency",
    "Total",
    "Amount paid",
    "Amount due",
    "Status",
    "Xero status",
]


def csv_cell(value) -> str:
    """One cell as text, never something a spreadsheet would run."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


@member_required
@require_GET
def invoice_list_page(request: HttpRequest) -> HttpResponse:
    filters = invoice_filters_from(request.GET)
    today = today_for(request.organisation)
    rows = invoices_filtered(organisation=request.organisation, filters=filters, today=today)
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    link = xero_link_info(organisation=request.organisation)
    for invoice in page.object_list:
        invoice.xero_url = link.url_for(invoice)
        invoice.fixable = invoice.sync_state in FIXABLE
    sort_links = {}
    for key in ("number", "customer", "date", "due", "total"):
        current = filters.sort.lstrip("-") == key
        sort_links[key] = {
            "next": f"-{key}" if filters.sort == key else key,
            "current": current,
            "aria": ("ascending" if not filters.sort.startswith("-") else "descending") if current else "none",
        }
    return render(
        request,
        "invoices/invoice_list.html",
        {
            "page": page,
            "filters": filters,
            "statuses": list(STATUSES.values()),
            "sort_links": sort_links,
            "export_query": request.GET.urlencode(),
        },
    )


class _Echo:
    def write(self, value: str) -> str:
        return value


@member_required
@require_GET
def invoice_export(request: HttpRequest) -> StreamingHttpResponse:
    filters = invoice_filters_from(request.GET)
    today = today_for(request.organisation)
    rows = invoices_filtered(organisation=request.organisation, filters=filters, today=today)
    writer = csv.writer(_Echo())

    def lines():
        yield "\ufeff"  # Excel reads the file as UTF-8 only with a byte-order mark (names in every script)
        yield writer.writerow(CSV_COLUMNS)
        for invoice in rows.iterator(chunk_size=1000):
            # Streamed after the request's zone is deactivated: today is the organisation's, computed above.
            status = status_of(invoice, today=today)
            yield writer.writerow(
                [
                    csv_cell(invoice.number),
                    csv_cell(invoice.batch.name),
                    csv_cell(invoice.customer.name),
                    csv_cell(invoice.reference),
                    invoice.issue_date.isoformat(),
                    invoice.due_date.isoformat(),
                    csv_cell(invoice.currency),
                    f"{invoice.total:.2f}",
                    f"{invoice.amount_paid:.2f}",
                    f"{invoice.amount_due:.2f}",
                    status.label,
                    csv_cell(invoice.xero_status),
                ]
            )

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="invoices-{today.isoformat()}.csv"'
    return response
