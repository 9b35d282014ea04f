from pathlib import Path
from unittest import mock

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from integrations.outbound.models import OutboundOperation
from invoices.models import CreditNoteAllocation, Invoice, InvoiceBatch, InvoiceEvent, XeroMapping
from invoices.services.credit_notes import CREDIT_NOTE_ALLOCATE
from tests.factories import (
    PASSWORD,
    TENANT_ID,
    TENANT_SHORT_CODE,
    chart_read_from_xero,
    make_batch,
    make_connection,
    make_credit_note,
    make_membership,
    make_user,
)

pytestmark = pytest.mark.django_db

CSV_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "csv"
S = Invoice.SyncState
AS = CreditNoteAllocation.State


def login(client, user):
    assert client.login(username=user.email, password=PASSWORD)
    return client


def form_data(*invoices: dict, name: str = "November services", action: str = "create", lines_per: int = 3) -> dict:
    data = {"batch-name": name, "action": action, "inv-TOTAL_FORMS": str(len(invoices)), "inv-INITIAL_FORMS": "0"}
    for i, inv in enumerate(invoices):
        lines = inv.pop("lines", [])
        base = {
            "customer_name": "",
            "customer_email": "",
            "number": f"INV-{i + 1:04d}",
            "reference": "",
            "currency": "AUD",
            "issue_date": "2026-11-01",
            "due_date": "2026-11-15",
            "line_amount_types": "Exclusive",
            "status": "AUTHORISED",
        }
        base.update(inv)
        data.update({f"inv-{i}-{k}": v for k, v in base.items()})
        prefix = f"inv-{i}-lines"
        data[f"{prefix}-TOTAL_FORMS"] = str(max(lines_per, len(lines)))
        data[f"{prefix}-INITIAL_FORMS"] = "0"
        for j in range(max(lines_per, len(lines))):
            line = {"description": "", "quantity": "1", "unit_amount": "", "account_code": "", "tax_type": ""}
            if j < len(lines):
                line.update(lines[j])
            data.update({f"{prefix}-{j}-{k}": v for k, v in line.items()})
    return data


def line(description="Care hours", quantity="2", unit_amount="85.00", **kw):
    return {"description": description, "quantity": quantity, "unit_amount": unit_amount, **kw}


# ---------------------------------------------------------------- the form


def test_form_suggests_next_number_when_opened(client, admin_a):
    response = login(client, admin_a).get(reverse("invoices:batch_new"))
    assert response.status_code == 200
    body = response.content.decode()
    assert 'value="INV-0001"' in body and "csrfmiddlewaretoken" in body
    assert "not synced to Xero" in body  # never connected: said before anything is created


def test_admin_creates_batch_when_form_is_filled(client, admin_a, org_a):
    make_connection(organisation=org_a, base_currency="NZD")
    chart_read_from_xero(org_a)  # account 260 is checked against the organisation's own chart
    data = form_data(
        {
            "customer_name": "Harbour View",
            "currency": "nzd",
            "lines": [line(), line("Call-out", "1", "120.5", account_code="260")],
        },
        {"customer_name": "Wattle Clinic", "currency": "nzd", "status": "DRAFT", "lines": [line()]},
        {},
    )  # a third, untouched invoice is skipped
    response = login(client, admin_a).post(reverse("invoices:batch_new"), data)
    batch = InvoiceBatch.objects.get(organisation=org_a)
    assert response.status_code == 302 and response.url == reverse("invoices:batch_detail", args=[batch.pk])
    assert batch.source == "form" and batch.created_by == admin_a
    first, second = batch.invoices.order_by("number")
    assert first.lines.count() == 2 and first.lines.last().account_code == "260"
    assert (second.currency, second.status) == ("NZD", "DRAFT")
    listing = client.get(reverse("invoices:batch_list")).content.decode()
    assert "November services" in listing


def test_errors_are_shown_per_row_and_nothing_is_created_when_form_is_bad(client, admin_a, org_a):
    data = form_data(
        {"customer_name": "Harbour View", "lines": [line(unit_amount="")]},
        {"customer_name": "Wattle", "due_date": "2026-10-01", "lines": [line()]},
        {"customer_name": "No lines"},
    )
    response = login(client, admin_a).post(reverse("invoices:batch_new"), data)
    assert response.status_code == 422
    body = response.content.decode()
    assert "The batch was not created." in body
    assert "Enter the unit price." in body
    assert "The due date is before the issue date." in body
    assert "Add at least one line with a description and a unit price." in body
    assert not InvoiceBatch.objects.exists()
    assert 'value="Harbour View"' in body  # what was typed is kept


def test_duplicate_number_is_shown_on_its_invoice_when_already_used(client, admin_a, org_a):
    make_batch(organisation=org_a)
    taken = Invoice.objects.get().number
    data = form_data({"customer_name": "Harbour View", "number": taken, "lines": [line()]})
    body = login(client, admin_a).post(reverse("invoices:batch_new"), data).content.decode()
    assert f"Invoice number {taken} is already used by another invoice of this organisation." in body
    assert InvoiceBatch.objects.count() == 1


def test_add_invoice_adds_a_row_with_next_number_when_asked(client, admin_a):
    data = form_data(
        {"customer_name": "Harbour View", "number": "ACME-0041", "currency": "GBP", "lines": [line()]},
        action="add_invoice",
    )
    response = login(client, admin_a).post(reverse("invoices:batch_new"), data)
    assert response.status_code == 200
    entry = response.context["entry"]
    assert len(entry.rows) == 2
    body = response.content.decode()
    assert 'value="ACME-0042"' in body and 'name="inv-1-currency" value="GBP"' in body
    assert "The batch was not created." not in body and not InvoiceBatch.objects.exists()


def test_add_line_adds_a_line_to_that_invoice_when_asked(client, admin_a):
    data = form_data({"customer_name": "A", "lines": [line()]}, {"customer_name": "B"}, action="add_line:1")
    response = login(client, admin_a).post(reverse("invoices:batch_new"), data)
    entry = response.context["entry"]
    assert [len(lines.forms) for _, lines in entry.rows] == [3, 4]


def test_accountant_cannot_create_batches_when_not_admin(client, accountant_a):
    login(client, accountant_a)
    assert client.get(reverse("invoices:batch_new")).status_code == 403
    assert (
        client.post(reverse("invoices:batch_new"), form_data({"customer_name": "A", "lines": [line()]})).status_code
        == 403
    )
    assert client.get(reverse("invoices:batch_upload")).status_code == 403
    assert not InvoiceBatch.objects.exists()


def test_batch_form_requires_csrf_when_posted(admin_a):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    login(client, admin_a)
    response = client.post(reverse("invoices:batch_new"), form_data({"customer_name": "A", "lines": [line()]}))
    assert response.status_code == 403 and not InvoiceBatch.objects.exists()


# ---------------------------------------------------------------- CSV upload


def upload(client, name: str, *, batch_name: str = "CSV batch", content: bytes | None = None):
    raw = content if content is not None else (CSV_DIR / name).read_bytes()
    return client.post(
        reverse("invoices:batch_upload"),
        {"name": batch_name, "file": SimpleUploadedFile(name, raw, content_type="text/csv")},
    )


def test_csv_creates_batch_when_every_row_is_good(client, admin_a, org_a):
    make_connection(organisation=org_a, base_currency="AUD")
    chart_read_from_xero(org_a)  # 260 and EXEMPTOUTPUT are checked against the organisation's own chart
    raw = (CSV_DIR / "good_batch.csv").read_text().replace(",nzd,", ",AUD,").encode()
    response = upload(login(client, admin_a), "good_batch.csv", content=raw)
    batch = InvoiceBatch.objects.get(organisation=org_a)
    assert response.status_code == 302 and batch.source == "csv" and batch.invoices.count() == 2


def test_csv_errors_are_listed_row_by_row_and_nothing_imported_when_rows_are_bad(client, admin_a):
    response = upload(login(client, admin_a), "bad_rows.csv")
    assert response.status_code == 422
    body = response.content.decode()
    assert "Nothing was imported" in body
    assert "Differs from row 4 of invoice INV-3003" in body
    assert "<code>due_date</code>" in body
    assert not InvoiceBatch.objects.exists() and not Invoice.objects.exists()


def test_csv_number_conflict_is_reported_on_its_row_when_number_is_taken(client, admin_a, org_a):
    make_connection(organisation=org_a, base_currency="AUD")
    chart_read_from_xero(org_a)
    make_batch(organisation=org_a)
    taken = Invoice.objects.get().number
    raw = (CSV_DIR / "good_batch.csv").read_text().replace("INV-2002", taken).replace(",nzd,", ",AUD,").encode()
    response = upload(login(client, admin_a), "good_batch.csv", content=raw)
    assert response.status_code == 422
    errors = response.context["row_errors"]
    assert [(e.row, e.column) for e in errors] == [(4, "invoice_number")]
    assert InvoiceBatch.objects.count() == 1


def test_csv_is_refused_with_clear_error_when_too_large(client, admin_a, settings):
    with mock.patch("invoices.csv_import.MAX_BYTES", 50):
        response = upload(login(client, admin_a), "good_batch.csv")
    assert response.status_code == 422 and "the limit is" in response.content.decode()
    assert not InvoiceBatch.objects.exists()


def test_sample_csv_is_downloadable_when_asked(client, accountant_a):
    response = login(client, accountant_a).get(reverse("invoices:batch_sample_csv"))
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    assert response.content.decode().startswith("invoice_number,customer_name,")


# ---------------------------------------------------------------- detail, progress, retry


def test_detail_explains_not_synced_when_batch_predates_connection(client, accountant_a, org_a):
    batch = make_batch(organisation=org_a)
    body = login(client, accountant_a).get(reverse("invoices:batch_detail", args=[batch.pk])).content.decode()
    assert "Not synced to Xero." in body and "created before Xero was connected" in body
    assert 'id="batch-progress"' not in body


def test_detail_explains_not_synced_when_batch_was_created_while_disconnected(client, accountant_a, org_a):
    batch = make_batch(organisation=org_a, eligibility="while_disconnected")
    body = login(client, accountant_a).get(reverse("invoices:batch_detail", args=[batch.pk])).content.decode()
    assert "created while Xero was disconnected" in body


def test_errors_and_warnings_are_shown_per_invoice_when_xero_reported_them(client, accountant_a, org_a):
    make_connection(organisation=org_a)
    batch = make_batch(organisation=org_a, invoices=3, eligibility="eligible", sync_state=S.SYNCED)
    failed, warned, ok = batch.invoices.order_by("number")
    failed.sync_state, failed.sync_errors = S.FAILED, [{"Message": "Account code '999' is not a valid code."}]
    failed.save()
    warned.sync_state, warned.sync_warnings = S.WARNING, [{"Message": "Only AUTHORISED invoices can be emailed."}]
    warned.xero_invoice_id = "11111111-2222-4333-8444-555555555555"
    warned.save()
    response = login(client, accountant_a).get(reverse("invoices:batch_detail", args=[batch.pk]))
    body = response.content.decode()
    failed_block = body.split(f'id="invoice-{failed.pk}"')[1].split("</tbody>")[0]
    warned_block = body.split(f'id="invoice-{warned.pk}"')[1].split("</tbody>")[0]
    ok_block = body.split(f'id="invoice-{ok.pk}"')[1].split("</tbody>")[0]
    assert "Account code &#x27;999&#x27; is not a valid code." in failed_block
    assert f"Retry {failed.number}" in failed_block
    assert "Only AUTHORISED invoices can be emailed." in warned_block and "Retry" not in warned_block
    assert "Xero rejected" not in ok_block and "warnings:" not in ok_block
    assert (
        f"shortcode={TENANT_SHORT_CODE.replace('!', '%21')}" in warned_block
        or f"shortcode={TENANT_SHORT_CODE}" in warned_block
    )
    assert "InvoiceID=11111111-2222-4333-8444-555555555555" in warned_block
    assert "Retry failed invoices (1)" in body


def test_an_invoice_needing_attention_is_not_called_rejected_by_xero(client, accountant_a, org_a):
    """Xero did not refuse it: its answer could not be confirmed. The page says so, and still offers what to do."""
    make_connection(organisation=org_a)
    batch = make_batch(organisation=org_a, invoices=1, eligibility="eligible", sync_state=S.NEEDS_ATTENTION)
    invoice = batch.invoices.get()
    invoice.sync_errors = ["Xero's answer could not be confirmed: 3 lookups of its number failed. Check Xero."]
    invoice.save()
    body = login(client, accountant_a).get(reverse("invoices:batch_detail", args=[batch.pk])).content.decode()
    block = body.split(f'id="invoice-{invoice.pk}"')[1].split("</tbody>")[0]
    assert "Xero rejected" not in block
    assert f'aria-label="Invoice {invoice.number} needs attention"' in block
    assert "Why it needs attention:" in block and "3 lookups of its number failed" in block
    assert f"Retry {invoice.number}" in block


def test_the_failed_tab_lists_the_invoices_it_counts_those_needing_attention_included(client, accountant_a, org_a):
    make_connection(organisation=org_a)
    batch = make_batch(organisation=org_a, invoices=3, eligibility="eligible", sync_state=S.SYNCED)
    failed, attention, synced = batch.invoices.order_by("number")
    Invoice.objects.filter(pk=failed.pk).update(sync_state=S.FAILED, sync_errors=["Account code '999' is not valid."])
    Invoice.objects.filter(pk=attention.pk).update(sync_state=S.NEEDS_ATTENTION, sync_errors=["Check Xero."])
    url = reverse("invoices:batch_detail", args=[batch.pk])
    body = login(client, accountant_a).get(url, {"state": "failed"}).content.decode()
    assert "Failed or need attention (2)" in body
    assert f'id="invoice-{failed.pk}"' in body and f'id="invoice-{attention.pk}"' in body
    assert f'id="invoice-{synced.pk}"' not in body


def test_detail_lists_history_when_invoice_has_events(client, accountant_a, org_a):
    batch = make_batch(organisation=org_a)
    invoice = batch.invoices.get()
    InvoiceEvent.objects.create(
        invoice=invoice, organisation=org_a, source="xero", kind="status_changed", message="Marked paid in Xero"
    )
    body = login(client, accountant_a).get(reverse("invoices:batch_detail", args=[batch.pk])).content.decode()
    assert "Marked paid in Xero" in body and "Changed in Xero" in body


def test_detail_says_waiting_for_reconnect_when_connection_needs_reconnect(client, accountant_a, org_a):
    make_connection(organisation=org_a, status="needs_reconnect")
    XeroMapping.objects.create(organisation=org_a, revenue_account_code="200", tax_type="OUTPUT")
    batch = make_batch(organisation=org_a, eligibility="eligible", sync_state=S.PENDING)
    body = login(client, accountant_a).get(reverse("invoices:batch_detail", args=[batch.pk])).content.decode()
    assert "Waiting for reconnect." in body
    assert "No Xero mapping yet." not in body


def test_detail_says_mapping_missing_when_invoices_wait_without_mapping(client, admin_a, accountant_a, org_a):
    make_connection(organisation=org_a)
    batch = make_batch(organisation=org_a, eligibility="eligible", sync_state=S.PENDING)
    body = login(client, admin_a).get(reverse("invoices:batch_detail", args=[batch.pk])).content.decode()
    assert "No Xero mapping yet." in body and reverse("invoices:mapping") in body
    client.logout()
    body = login(client, accountant_a).get(reverse("invoices:batch_detail", args=[batch.pk])).content.decode()
    assert "Ask an admin" in body


def test_progress_polls_while_invoices_are_pending(client, accountant_a, org_a):
    make_connection(organisation=org_a)
    XeroMapping.objects.create(organisation=org_a, revenue_account_code="200", tax_type="OUTPUT")
    batch = make_batch(organisation=org_a, invoices=4, eligibility="eligible", sync_state=S.PENDING)
    first = batch.invoices.order_by("number").first()
    first.sync_state = S.SYNCED
    first.save()
    response = login(client, accountant_a).get(
        reverse("invoices:batch_progress", args=[batch.pk]), HTTP_HX_REQUEST="true"
    )
    body = response.content.decode()
    assert 'hx-trigger="every 2s"' in body and "HX-Refresh" not in response
    assert response.context["progress"].percent == 25
    assert '<strong data-count="synced">1</strong>' in body and '<strong data-count="pending">3</strong>' in body


def test_progress_stops_polling_and_reloads_when_nothing_is_pending(client, accountant_a, org_a):
    make_connection(organisation=org_a)
    batch = make_batch(organisation=org_a, invoices=2, eligibility="eligible", sync_state=S.SYNCED)
    response = login(client, accountant_a).get(
        reverse("invoices:batch_progress", args=[batch.pk]), HTTP_HX_REQUEST="true"
    )
    assert "hx-trigger" not in response.content.decode()
    assert response["HX-Refresh"] == "true"
    assert response.context["progress"].percent == 100


def test_accountant_can_retry_failed_invoices_when_batch_has_failures(client, accountant_a, org_a):
    batch = make_batch(organisation=org_a, invoices=2, eligibility="eligible", sync_state=S.FAILED)
    with mock.patch("invoices.views.batches._retry_failed", return_value=2) as retry:
        response = login(client, accountant_a).post(reverse("invoices:batch_retry", args=[batch.pk]))
    assert response.status_code == 302
    retry.assert_called_once_with(organisation=org_a, batch=batch, user=accountant_a)


def test_one_invoice_is_retried_when_asked(client, accountant_a, org_a):
    batch = make_batch(organisation=org_a, invoices=2, eligibility="eligible", sync_state=S.FAILED)
    invoice = batch.invoices.first()
    with mock.patch("invoices.views.batches._retry_failed", return_value=1) as retry:
        login(client, accountant_a).post(reverse("invoices:invoice_retry", args=[batch.pk, invoice.pk]))
    retry.assert_called_once_with(organisation=org_a, batch=batch, user=accountant_a, invoice_ids=[invoice.pk])


def test_retry_records_who_goes_pending_and_queues_the_push_when_real_service_runs(
    client, accountant_a, org_a, enqueued, django_capture_on_commit_callbacks
):
    batch = make_batch(organisation=org_a, invoices=1, eligibility="eligible", sync_state=S.FAILED)
    with django_capture_on_commit_callbacks(execute=True):
        login(client, accountant_a).post(reverse("invoices:batch_retry", args=[batch.pk]))
    invoice = batch.invoices.get()
    assert invoice.sync_state == S.PENDING
    assert invoice.events.filter(kind="retried", actor=accountant_a).exists()
    assert [(e.name, e.args) for e in enqueued] == [("invoices.tasks.push_organisation", (org_a.pk,))]


@pytest.mark.parametrize("role, mapping_link", [("admin", True), ("accountant", False)])
def test_failed_batch_says_where_each_kind_of_refusal_is_fixed_when_viewed(client, org_a, role, mapping_link):
    make_connection(organisation=org_a)
    batch = make_batch(organisation=org_a, invoices=1, eligibility="eligible", sync_state=S.FAILED)
    user = make_user()
    make_membership(user=user, organisation=org_a, role=role)
    body = login(client, user).get(reverse("invoices:batch_detail", args=[batch.pk])).content.decode()
    assert "an archived contact, a locked period) is fixed in Xero" in body
    assert (reverse("invoices:mapping") in body) is mapping_link
    assert ("Xero mapping (an admin changes it)" in body) is not mapping_link


def test_retry_refuses_get_when_not_posted(client, accountant_a, org_a):
    batch = make_batch(organisation=org_a)
    assert login(client, accountant_a).get(reverse("invoices:batch_retry", args=[batch.pk])).status_code == 405


# ---------------------------------------------------------------- tenant isolation


@pytest.mark.parametrize(
    "name,method",
    [
        ("invoices:batch_detail", "get"),
        ("invoices:batch_progress", "get"),
        ("invoices:batch_retry", "post"),
    ],
)
def test_another_organisations_batch_is_404_when_addressed(client, admin_a, org_b, name, method):
    foreign = make_batch(organisation=org_b, eligibility="eligible", sync_state=S.FAILED)
    with mock.patch("invoices.views.batches._retry_failed") as retry:
        response = getattr(login(client, admin_a), method)(reverse(name, args=[foreign.pk]))
    assert response.status_code == 404
    retry.assert_not_called()


def test_another_organisations_invoice_is_404_when_retried_through_own_batch(client, admin_a, org_a, org_b):
    mine = make_batch(organisation=org_a, eligibility="eligible", sync_state=S.FAILED)
    foreign = make_batch(organisation=org_b, eligibility="eligible", sync_state=S.FAILED)
    theirs = foreign.invoices.get()
    with mock.patch("invoices.views.batches._retry_failed") as retry:
        login(client, admin_a)
        assert client.post(reverse("invoices:invoice_retry", args=[mine.pk, theirs.pk])).status_code == 404
        assert client.post(reverse("invoices:invoice_retry", args=[foreign.pk, theirs.pk])).status_code == 404
    retry.assert_not_called()


def test_invoice_of_another_batch_is_404_when_retried_through_wrong_batch(client, admin_a, org_a):
    one = make_batch(organisation=org_a, eligibility="eligible", sync_state=S.FAILED)
    other = make_batch(organisation=org_a, eligibility="eligible", sync_state=S.FAILED)
    response = login(client, admin_a).post(reverse("invoices:invoice_retry", args=[one.pk, other.invoices.get().pk]))
    assert response.status_code == 404


def test_search_never_shows_another_organisations_rows_when_their_invoice_matches(client, admin_a, org_a, org_b):
    make_batch(organisation=org_b, name="Theirs")
    number = Invoice.objects.get(organisation=org_b).number
    body = login(client, admin_a).get(reverse("invoices:batch_list"), {"q": number}).content.decode()
    assert "Theirs" not in body and "No batches match." in body


def test_new_customers_names_of_another_organisation_are_not_offered_when_creating(client, admin_a, org_b):
    make_batch(organisation=org_b)
    theirs = Invoice.objects.get(organisation=org_b).customer.name
    body = login(client, admin_a).get(reverse("invoices:batch_new")).content.decode()
    assert theirs not in body


def test_anonymous_is_sent_to_login_when_opening_new_pages(client, org_a):
    batch = make_batch(organisation=org_a)
    for url in (
        reverse("invoices:batch_new"),
        reverse("invoices:batch_upload"),
        reverse("invoices:mapping"),
        reverse("invoices:batch_progress", args=[batch.pk]),
        reverse("invoices:batch_sample_csv"),
    ):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response.url


def test_untouched_rows_are_not_marked_invalid_when_the_form_comes_back(client, admin_a):
    data = form_data({"customer_name": "Harbour View", "lines": [line(unit_amount="")]}, {})
    body = login(client, admin_a).post(reverse("invoices:batch_new"), data).content.decode()
    assert body.count('aria-invalid="true"') == 1  # only line 1's unit price
    assert (
        'name="inv-0-lines-0-unit_amount"'
        in body.split('aria-invalid="true"')[0][-400:] + body.split('aria-invalid="true"')[1][:400]
    )
    added = client.post(reverse("invoices:batch_new"), form_data({"customer_name": "A"}, action="add_invoice"))
    assert "aria-invalid" not in added.content.decode()


def test_search_keeps_counts_right_when_batch_matches_by_invoice(client, admin_a, org_a):
    batch = make_batch(organisation=org_a, name="Three invoices", invoices=3)
    number = batch.invoices.first().number
    response = login(client, admin_a).get(reverse("invoices:batch_list"), {"q": number})
    (found,) = response.context["page"].object_list
    assert (found.invoice_count, found.total_amount) == (3, 330)
    (found,) = client.get(reverse("invoices:batch_list"), {"q": "three"}).context["page"].object_list
    assert found.invoice_count == 3


def test_list_does_not_add_up_currencies_when_a_batch_mixes_them(client, admin_a, org_a):
    batch = make_batch(organisation=org_a, name="Mixed", invoices=2)
    Invoice.objects.filter(pk=batch.invoices.first().pk).update(currency="NZD")
    make_batch(organisation=org_a, name="Single", invoices=2)
    body = login(client, admin_a).get(reverse("invoices:batch_list")).content.decode()
    assert "Several currencies" in body and "AUD 220.00" in body


def test_form_says_invoices_wait_when_connection_needs_reconnect(client, admin_a, org_a):
    make_connection(organisation=org_a, status="needs_reconnect")
    XeroMapping.objects.create(organisation=org_a, revenue_account_code="200", tax_type="OUTPUT")
    for name in ("invoices:batch_new", "invoices:batch_upload"):
        body = login(client, admin_a).get(reverse(name)).content.decode()
        assert "Xero needs reconnecting. Invoices you create now are kept" in body
        assert "not synced to Xero" not in body


# ---------------------------------------------------------------- issue 12: lines checked before anything is created


def test_form_shows_each_bad_value_on_its_own_line_and_creates_nothing_when_xero_would_refuse(client, admin_a, org_a):
    make_connection(organisation=org_a, base_currency="AUD")
    chart_read_from_xero(org_a)
    data = form_data(
        {
            "customer_name": "Harbour View",
            "currency": "XYZ",
            "lines": [line(), line("Call-out", account_code="999"), line("Kit", tax_type="NOPE")],
        },
        {"customer_name": "Wattle", "lines": [line(quantity="-2")]},
    )
    response = login(client, admin_a).post(reverse("invoices:batch_new"), data)
    assert response.status_code == 422
    entry = response.context["entry"]
    first_lines, second_lines = entry.lines
    assert (
        "Account 999 is not one of your active revenue accounts in Xero." in first_lines.forms[1].errors["account_code"]
    )
    assert "Tax rate NOPE is not one of your Xero tax rates for sales." in first_lines.forms[2].errors["tax_type"]
    assert entry.invoices.forms[0].errors["currency"] == [
        "XYZ is not enabled in your Xero organisation: use one of AUD, NZD, USD."
    ]
    assert "use a credit note" in second_lines.forms[0].errors["quantity"][0]
    assert not InvoiceBatch.objects.exists() and not Invoice.objects.exists()


def test_csv_reports_every_bad_row_and_column_against_the_chart_when_codes_are_unknown(client, admin_a, org_a):
    make_connection(organisation=org_a, base_currency="AUD")
    chart_read_from_xero(org_a)
    raw = (
        "invoice_number,customer_name,issue_date,due_date,currency,description,quantity,unit_amount,account_code,tax_type\n"
        "INV-1,İzmir Foods,2026-11-01,2026-11-15,AUD,Olives,1,10,200,OUTPUT\n"
        "INV-1,,,,,Figs,1,10,999,\n"
        "INV-1,,,,,Dates,1,10,,NOPE\n"
        "INV-2,ΑΛΦΑ ΟΔΟΣ,2026-11-01,2026-11-15,XYZ,Tiles,1,10,,\n"
        "INV-3,Straße GmbH,2026-11-01,2026-11-15,AUD,Refund,1,-10,,\n"
    ).encode()
    response = upload(login(client, admin_a), "chart.csv", content=raw)
    assert response.status_code == 422
    found = {(e.row, e.column) for e in response.context["row_errors"]}
    assert found == {(3, "account_code"), (4, "tax_type"), (5, "currency"), (6, "lines")}
    assert "use a credit note" in response.content.decode()
    assert not InvoiceBatch.objects.exists() and not Invoice.objects.exists()


def test_csv_with_a_decimal_comma_and_a_nul_byte_is_refused_row_by_row_when_uploaded(client, admin_a, org_a):
    make_connection(organisation=org_a, base_currency="AUD")
    raw = (
        b"invoice_number,customer_name,issue_date,due_date,currency,description,quantity,unit_amount\n"
        b'INV-1,Acme,2026-11-01,2026-11-15,AUD,Work,1,"12,50"\n'
        b"INV-2,Ac\x00me,2026-11-01,2026-11-15,AUD,Work,1,10\n"
    )
    response = upload(login(client, admin_a), "commas.csv", content=raw)
    assert response.status_code == 422
    errors = {(e.row, e.column): e.message for e in response.context["row_errors"]}
    assert "use a point as the decimal separator" in errors[(2, "unit_amount")]
    assert "NUL" in errors[(3, "customer_name")]
    assert not InvoiceBatch.objects.exists()


def test_add_invoice_answers_with_a_clear_error_when_the_last_number_is_thousands_of_digits(client, admin_a):
    huge = "9" * 5000
    data = form_data({"customer_name": "Harbour View", "number": huge, "lines": [line()]}, action="add_invoice")
    response = login(client, admin_a).post(reverse("invoices:batch_new"), data)
    assert response.status_code == 200
    assert len(response.context["entry"].rows) == 2
    data = form_data({"customer_name": "Harbour View", "number": huge, "lines": [line()]})
    response = client.post(reverse("invoices:batch_new"), data)
    assert response.status_code == 422
    assert "Invoice numbers have at most 255 characters" in response.content.decode()
    assert not InvoiceBatch.objects.exists()


# ---------------------------------------------------------------- the batch page's queries do not grow with its rows

ANOTHER_TENANT_ID = "d6a3b0c4-0000-4000-8000-000000000001"


def _allocate_operation(allocation: CreditNoteAllocation, *, tenant_id: str, organisation=None) -> None:
    """The allocation's write, needing attention, as the outbound engine leaves it: sent to Xero organisation
    `tenant_id`."""
    OutboundOperation.objects.create(
        organisation=organisation or allocation.organisation,
        tenant_id=tenant_id,
        kind=CREDIT_NOTE_ALLOCATE,
        subject_id=allocation.pk,
        idempotency_key=f"allocate-{allocation.pk}-{tenant_id}",
        state=OutboundOperation.State.NEEDS_ATTENTION,
    )


def _credit_notes_with_stuck_allocations(org, *, notes: int) -> InvoiceBatch:
    """A batch of `notes` invoices (each with its history) and `notes` failed credit notes, each allocated four
    ways: done, refused, needing attention with its write sent to the Xero organisation connected before
    (removable), and needing attention with its write sent to the one connected now (not removable)."""
    batch = make_batch(organisation=org, invoices=notes, eligibility="eligible", sync_state=S.SYNCED)
    for invoice in batch.invoices.order_by("number"):
        InvoiceEvent.objects.create(organisation=org, invoice=invoice, kind="sent", message="Sent to Xero")
        note = make_credit_note(batch=batch, sync_state=S.FAILED)
        for state, tenant_id in (
            (AS.DONE, None),
            (AS.REFUSED, None),
            (AS.NEEDS_ATTENTION, ANOTHER_TENANT_ID),
            (AS.NEEDS_ATTENTION, TENANT_ID),
        ):
            allocation = CreditNoteAllocation.objects.create(
                organisation=org, credit_note=note, invoice=invoice, state=state
            )
            if tenant_id:
                _allocate_operation(allocation, tenant_id=tenant_id)
    return batch


def _detail_queries(client, batch) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("invoices:batch_detail", args=[batch.pk]))
    assert response.status_code == 200
    return len(queries), response.content.decode()


def test_detail_queries_do_not_grow_when_a_batch_has_more_credit_notes_and_allocations(client, accountant_a, org_a):
    make_connection(organisation=org_a)
    XeroMapping.objects.create(organisation=org_a, revenue_account_code="200", tax_type="OUTPUT")
    small = _credit_notes_with_stuck_allocations(org_a, notes=1)
    large = _credit_notes_with_stuck_allocations(org_a, notes=6)
    login(client, accountant_a)
    _detail_queries(client, small)  # the first page after signing in also saves the session: not a row's query
    few, few_body = _detail_queries(client, small)
    many, many_body = _detail_queries(client, large)
    assert many == few, f"{few} queries for 1 credit note and 4 allocations, {many} for 6 and 24"
    # Still removable exactly when refused, or needing attention with its write in another Xero organisation.
    assert few_body.count("Remove…") == 2 and many_body.count("Remove…") == 12
    assert many_body.count("Try again<span") == 18


def test_allocation_is_not_removable_when_only_another_organisations_operation_names_it(
    client, accountant_a, org_a, org_b
):
    make_connection(organisation=org_a)
    batch = make_batch(organisation=org_a, eligibility="eligible", sync_state=S.SYNCED)
    note = make_credit_note(batch=batch, sync_state=S.FAILED)
    allocation = CreditNoteAllocation.objects.create(
        organisation=org_a, credit_note=note, invoice=batch.invoices.get(), state=AS.NEEDS_ATTENTION
    )
    _allocate_operation(allocation, tenant_id=TENANT_ID)
    # Another organisation's write with the same subject id, to another Xero organisation, and newer.
    _allocate_operation(allocation, tenant_id=ANOTHER_TENANT_ID, organisation=org_b)
    body = login(client, accountant_a).get(reverse("invoices:batch_detail", args=[batch.pk])).content.decode()
    assert "Try again<span" in body and "Remove…" not in body
