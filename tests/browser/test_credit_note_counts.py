"""Issue 12 in the browser: a batch's credit notes count where its invoices count. A batch with invoices in Xero, a
credit note in Xero, one refused and one voided reads neither 100% nor "All invoices are in Xero"; the dashboard
counts the voided credit note as voided and the refused one as failed. Screenshots at desktop and phone widths."""

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from invoices.models import CreditNote, Customer, Invoice, InvoiceBatch, InvoiceLine
from invoices.selectors import invoice_sync_counts
from organisations.models import Organisation
from tests.browser.helpers import shoot

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 820}


def mixed_batch(organisation: Organisation) -> InvoiceBatch:
    """Three invoices in Xero (awaiting payment, paid, paid) and three credit notes: one with credit available in
    Xero, one refused by Xero, one voided there."""
    batch = InvoiceBatch.objects.create(organisation=organisation, name="December credits", eligibility="eligible")
    customer = Customer.objects.filter(organisation=organisation).order_by("name").first()
    for n, xero_status in enumerate(("AUTHORISED", "PAID", "PAID"), start=1):
        paid = xero_status == "PAID"
        invoice = Invoice.objects.create(
            organisation=organisation,
            batch=batch,
            customer=customer,
            number=f"DEC-{n:03d}",
            issue_date=dt.date(2026, 12, 1),
            due_date=dt.date(2099, 1, 1),
            sync_state="synced",
            xero_status=xero_status,
            xero_invoice_id=str(uuid.uuid4()),
            total=Decimal("110.00"),
            amount_due=Decimal("0") if paid else Decimal("110.00"),
            amount_paid=Decimal("110.00") if paid else Decimal("0"),
        )
        InvoiceLine.objects.create(invoice=invoice, description="Care visit", unit_amount=Decimal("100.00"))
    for n, (sync_state, xero_status) in enumerate((("synced", "AUTHORISED"), ("failed", ""), ("synced", "VOIDED")), 1):
        CreditNote.objects.create(
            organisation=organisation,
            batch=batch,
            customer=customer,
            number=f"DEC-CN-{n:03d}",
            issue_date=dt.date(2026, 12, 2),
            sync_state=sync_state,
            xero_status=xero_status,
            xero_credit_note_id=str(uuid.uuid4()) if xero_status else "",
            total=Decimal("22.00"),
            remaining_credit=Decimal("22.00") if xero_status == "AUTHORISED" else Decimal("0"),
            sync_errors=["Account code '999' is not a valid code for this document."] if sync_state == "failed" else [],
        )
    return batch


def test_credit_notes_count_in_the_batch_progress_and_the_dashboard_when_the_batch_mixes_them(
    page, live_server, demo_data, login, screenshot
):
    acme = Organisation.objects.get(name="Acme Care")
    before = invoice_sync_counts(organisation=acme)
    batch = mixed_batch(acme)
    login(page, "admin@acme.test")

    page.goto(f"{live_server.url}/batches/{batch.pk}/")
    progress = page.locator("#batch-progress")
    expect(progress.locator("#progress-title")).to_have_text("Sent to Xero, with failures")
    expect(progress.locator(".progress-percent")).to_have_text("66% in Xero")  # 4 of 6, never 100%
    expect(progress.locator('[data-count="synced"]')).to_have_text("4")
    expect(progress.locator('[data-count="removed"]')).to_have_text("1")
    expect(progress.locator('[data-count="failed"]')).to_have_text("1")
    expect(progress).to_contain_text("of 3 invoices and 3 credit notes")
    expect(page.get_by_role("button", name="Retry failed invoices")).to_have_count(0)  # no invoice failed
    expect(page.locator(".credit-note-hint")).to_have_text(
        "Xero refused 1 credit note: see why under Credit notes below."
    )
    notes = page.locator("#credit-notes")
    expect(notes).to_contain_text("Credit available")
    expect(notes).to_contain_text("Failed")
    expect(notes).to_contain_text("Voided")
    shoot(screenshot, page, "issue12-credit-note-counts-desktop")
    page.set_viewport_size(PHONE)
    expect(progress.locator(".progress-percent")).to_have_text("66% in Xero")
    shoot(screenshot, page, "issue12-credit-note-counts-phone")
    page.set_viewport_size(DESKTOP)

    page.goto(f"{live_server.url}/portal/")
    tiles = page.locator(".tiles .tile")
    expected = {
        "Invoices and credit notes in Xero": before["synced"] + 4,
        "Voided or deleted in Xero": before["removed"] + 1,
        "Failed": before["failed"] + 1,
    }
    for label, count in expected.items():
        expect(tiles.filter(has_text=label).locator(".tile-num")).to_have_text(str(count))
    row = page.locator("table.batch-table tr", has_text="December credits")
    expect(row).to_contain_text("+ 3 credit notes")
    expect(row.locator(".badge-failed")).to_have_text("1 failed")
    shoot(screenshot, page, "issue12-credit-note-counts-dashboard-desktop")
    page.set_viewport_size(PHONE)
    expect(row.locator(".badge-failed")).to_be_visible()
    shoot(screenshot, page, "issue12-credit-note-counts-dashboard-phone")
