"""A credit note in the browser (issue 12): a negative invoice in the batch form is turned into a credit note with one
click, given its own number and the invoice to allocate it to; real workers send both documents to (sandbox) Xero
and allocate the credit, and Xero's own invoice page shows it credited.

Real pieces: xero_sandbox (subprocess, delivering signed webhooks), Django's live server, REAL Celery workers on
Postgres and their own Redis database (the push, the outbound engine, the webhook inbox), Debian's Chromium.
"""

import time

import pytest
from playwright.sync_api import expect

from integrations.outbound.models import OutboundOperation
from invoices.models import CreditNote, CreditNoteAllocation, Invoice
from tests.browser.helpers import shoot
from tests.factories import make_membership, make_user
from tests.support.xero_live import connect_organisation

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _until(check, *, timeout: float, page=None) -> None:
    """Wait for the workers (reloading the page between looks: credit notes are not polled live)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out waiting for the workers"
        time.sleep(0.5)
    if page is not None:
        page.reload()


def test_negative_invoice_becomes_a_credit_note_allocated_in_xero_when_the_batch_is_created(
    xero, workers, page, login, live_server, screenshot
):
    from xero_sandbox.testing import AU_ID

    organisation = connect_organisation(xero, name="Émile Care", tenant_id=AU_ID)
    admin = make_user(email="admin@emile.test", password="demo")
    make_membership(user=admin, organisation=organisation, role="admin")

    login(page, admin.email)
    page.goto(f"{live_server.url}/batches/new/")
    page.get_by_label("Batch name").fill("Roses, November")
    first = page.get_by_role("region", name="Invoice 1")
    first.get_by_label("Customer", exact=True).fill("İzmir Florist")
    first.get_by_label("Invoice number").fill("EF-0001")
    first.get_by_label("Line 1 description").fill("Roses, 2 dozen")
    first.get_by_label("Line 1 quantity").fill("2")
    first.get_by_label("Line 1 unit price").fill("55")

    # The second document is typed as a negative invoice: refused, with the way out one click away.
    page.get_by_role("button", name="+ Add another invoice").click()
    second = page.get_by_role("region", name="Invoice 2")
    second.get_by_label("Customer", exact=True).fill("İzmir Florist")
    second.get_by_label("Line 1 description").fill("Wilted roses returned")
    second.get_by_label("Line 1 unit price").fill("-20")
    page.get_by_role("button", name="Create batch").click()
    expect(second).to_contain_text("Xero does not take negative invoices, use a credit note instead")
    second.scroll_into_view_if_needed()
    screenshot(page, "issue12-credit-note-offered")
    second.get_by_role("button", name="Make it a credit note").click()
    second = page.get_by_role("region", name="Credit note 2")  # named for its Type now
    expect(second.get_by_label("Type", exact=True)).to_have_value("credit_note")
    expect(second.get_by_label("Line 1 unit price")).to_have_value("20.00")
    expect(second.get_by_label("Due date")).to_be_hidden()  # a Xero credit note has none
    second.get_by_label("Credit note number").fill("CN-0001")
    second.get_by_label("Allocate to invoice").fill("EF-0001")
    shoot(screenshot, page, "issue12-credit-note-form")
    page.get_by_role("button", name="Create batch").click()
    expect(page.get_by_role("heading", name="Roses, November")).to_be_visible()

    invoice = Invoice.objects.get(organisation=organisation, number="EF-0001")
    note = CreditNote.objects.get(organisation=organisation, number="CN-0001")
    _until(
        lambda: CreditNoteAllocation.objects.filter(credit_note=note, state="done").exists(),
        timeout=60,
        page=page,
    )
    credit = page.locator(f"#credit-note-{note.pk}")
    expect(credit).to_contain_text("Allocated in Xero")
    expect(credit).to_contain_text("AUD 22.00")  # 20.00 + 10% GST, all of it: less than the 121.00 due
    expect(page.locator(f"#xero-status-{invoice.pk}")).to_contain_text("credited 22.00 · due 99.00")
    shoot(screenshot, page, "issue12-credit-note-batch")
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    expect(page.locator(f"#credit-note-{note.pk}")).to_contain_text("Allocated in Xero")
    shoot(screenshot, page, "issue12-credit-note-batch-phone")
    page.set_viewport_size({"width": 1280, "height": 820})

    # Xero's own invoice page shows the credit note applied.
    invoice.refresh_from_db()
    note.refresh_from_db()
    assert note.xero_credit_note_id and note.remaining_credit == 0 and note.display_status.label == "Fully allocated"
    xero_tab = page.context.new_page()
    xero_tab.goto(f"{xero.url}/orgs/{AU_ID}/invoices/{invoice.xero_invoice_id}")
    expect(xero_tab.locator("#amount-credited")).to_have_text("22.00")
    expect(xero_tab.locator("#amount-due")).to_have_text("99.00")
    expect(xero_tab.locator("#credit-notes")).to_contain_text("CN-0001")
    screenshot(xero_tab, "issue12-credit-note-in-xero")
    # One operation each, done: the credit note went once, under our number, and was allocated once.
    operations = OutboundOperation.objects.filter(organisation=organisation, kind__startswith="credit_note")
    assert sorted(operations.values_list("kind", "state", "sends")) == [
        ("credit_note_allocate", "done", 1),
        ("credit_note_create", "done", 1),
    ]
