"""Round trips with (sandbox) Xero in the browser (issue 12): an edit of the reference alone leaves every other value
of the invoice in Xero as it was (four-decimal unit prices, each line's own account and tax); payments, a void and a
delete made by a person in Xero's own UI show as the right badges and honest counts on the batch page.

Real pieces: xero_sandbox (subprocess, delivering signed webhooks), Django's live server, REAL Celery workers on
Postgres and their own Redis database (the push, the outbound engine, the webhook inbox), Debian's Chromium.
"""

import datetime as dt
import time
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from integrations.xero.client import xero_request
from invoices.created_in_xero.models import XeroInvoiceChange
from invoices.models import Invoice, InvoiceBatch, InvoiceLine
from tests.browser import helpers
from tests.browser.helpers import shoot
from tests.browser.test_fix_and_send import at_phone_width
from tests.factories import make_customer, make_membership, make_user
from tests.support.xero_live import connect_organisation, push

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _until(check, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


def _organisation_with_accountant(xero, name: str, email: str):
    from xero_sandbox.testing import AU_ID

    organisation = connect_organisation(xero, name=name, tenant_id=AU_ID)
    user = make_user(email=email, password="demo")
    make_membership(user=user, organisation=organisation, role="accountant")
    return organisation, user


def _pushed(organisation, batch, *, number: str, status: str, lines: list[dict], due: dt.date, customer=None):
    """A pending invoice of ours, pushed to Xero by the real workers (the caller waits for them)."""
    invoice = Invoice.objects.create(
        organisation=organisation,
        batch=batch,
        customer=customer or make_customer(organisation=organisation, name=f"Client of {number}"),
        number=number,
        reference="PO 100",
        issue_date=dt.date(2026, 11, 2),
        due_date=due,
        currency="AUD",
        status=status,
        sync_state=Invoice.SyncState.PENDING,
    )
    for position, line in enumerate(lines, start=1):
        InvoiceLine.objects.create(invoice=invoice, position=position, **line)
    return invoice


def _in_xero(invoices) -> bool:
    return not Invoice.objects.filter(pk__in=[i.pk for i in invoices]).exclude(sync_state="synced").exists()


def _xero_copy(organisation, invoice_id: str) -> dict:
    """The invoice as Xero holds it, read from its Accounting API with four-decimal unit amounts."""
    response = xero_request(organisation.xero_connection.pk, "GET", f"/Invoices/{invoice_id}", params={"unitdp": 4})
    return response.body["Invoices"][0]


def test_edit_of_only_the_reference_leaves_every_other_value_unchanged_in_xero_when_saved(
    xero, workers, page, login, live_server, screenshot
):
    from xero_sandbox.testing import AU_ID

    organisation, user = _organisation_with_accountant(xero, "Harbour Care", "accounts@harbour.test")
    batch = InvoiceBatch.objects.create(
        organisation=organisation, name="November consulting", eligibility=InvoiceBatch.Eligibility.ELIGIBLE
    )
    invoice = _pushed(
        organisation,
        batch,
        number="HC-0101",
        status="DRAFT",
        due=dt.date(2026, 12, 24),
        lines=[
            # Each line with its own account and tax rate, neither the mapping's default (200 / OUTPUT).
            {
                "description": "Care coordination, hourly",
                "quantity": Decimal("3.5"),
                "unit_amount": Decimal("99.995"),
                "account_code": "260",
                "tax_type": "OUTPUT",
            },
            {
                "description": "Interest on overdue account",
                "quantity": Decimal("2"),
                "unit_amount": Decimal("10.1234"),
                "account_code": "270",
                "tax_type": "EXEMPTOUTPUT",
            },
        ],
    )
    push(organisation)
    _until(lambda: _in_xero([invoice]), timeout=60, what="the push")
    invoice.refresh_from_db()
    assert invoice.xero_status == "DRAFT"
    before = _xero_copy(organisation, invoice.xero_invoice_id)
    assert [line["UnitAmount"] for line in before["LineItems"]] == [99.995, 10.1234]  # the starting point is right

    login(page, user.email)
    page.goto(f"{live_server.url}/batches/{batch.pk}/")
    page.locator(f"#xero-status-{invoice.pk}").get_by_role("link", name="Edit").click()
    expect(page.get_by_role("heading", name="Edit invoice HC-0101")).to_be_visible()
    # What the page shows is what is stored: ISO dates, prices as entered, four places kept.
    expect(page.get_by_label("Line 1 unit price")).to_have_value("99.995")
    expect(page.get_by_label("Line 2 unit price")).to_have_value("10.1234")
    expect(page.get_by_label("Line 1 quantity")).to_have_value("3.5")
    expect(page.locator("tbody")).to_contain_text("260 · OUTPUT")
    expect(page.locator("tbody")).to_contain_text("270 · EXEMPTOUTPUT")
    page.get_by_label("Reference").fill("PO 2207")
    shoot(screenshot, page, "issue12-edit-reference")
    page.get_by_role("button", name="Send changes to Xero").click()
    expect(page.get_by_text("Sending your changes to HC-0101 to Xero")).to_be_visible()

    _until(
        lambda: XeroInvoiceChange.objects.filter(invoice=invoice, action="edit", state="done").exists(),
        timeout=60,
        what="the edit to reach Xero",
    )
    after = _xero_copy(organisation, invoice.xero_invoice_id)
    assert before["Reference"] == "PO 100" and after["Reference"] == "PO 2207"
    for key in ("Date", "DueDate", "Status", "LineAmountTypes", "CurrencyCode", "InvoiceNumber"):
        assert after[key] == before[key], key
    assert after["Contact"]["ContactID"] == before["Contact"]["ContactID"]
    for key in ("SubTotal", "TotalTax", "Total", "AmountDue"):
        assert Decimal(str(after[key])) == Decimal(str(before[key])), key
    fields = ("Description", "Quantity", "UnitAmount", "AccountCode", "TaxType", "TaxAmount", "LineAmount")
    assert [{k: line[k] for k in fields} for line in after["LineItems"]] == [
        {k: line[k] for k in fields} for line in before["LineItems"]
    ]
    # And the values themselves, to the places they were entered with.
    assert after["DateString"].startswith("2026-11-02") and after["DueDateString"].startswith("2026-12-24")
    assert [
        (line["Description"], Decimal(str(line["Quantity"])), Decimal(str(line["UnitAmount"])), line["AccountCode"])
        for line in after["LineItems"]
    ] == [
        ("Care coordination, hourly", Decimal("3.5"), Decimal("99.995"), "260"),
        ("Interest on overdue account", Decimal("2"), Decimal("10.1234"), "270"),
    ]
    assert [line["TaxType"] for line in after["LineItems"]] == ["OUTPUT", "EXEMPTOUTPUT"]
    # 3.5 x 99.995 = 349.9825 -> 349.98, GST 35.00; 2 x 10.1234 = 20.2468 -> 20.25, GST free.
    assert Decimal(str(after["SubTotal"])) == Decimal("370.23")
    assert Decimal(str(after["TotalTax"])) == Decimal("35.00")
    assert Decimal(str(after["Total"])) == Decimal("405.23")

    # Xero's own page for the invoice says the same.
    xero_tab = page.context.new_page()
    xero_tab.goto(f"{xero.url}/orgs/{AU_ID}/invoices/{invoice.xero_invoice_id}")
    expect(xero_tab.locator("#status")).to_have_text("DRAFT")
    expect(xero_tab.get_by_text("Reference PO 2207")).to_be_visible()
    expect(xero_tab.locator("#lines")).to_contain_text("Care coordination, hourly")
    # Its line editor shows the unit prices to four places (the table above rounds them for display).
    expect(xero_tab.locator('#lines-form input[value="99.9950"]')).to_have_count(1)
    expect(xero_tab.locator('#lines-form input[value="10.1234"]')).to_have_count(1)
    screenshot(xero_tab, "issue12-edit-reference-in-xero")
    xero_tab.close()


def test_badges_and_counts_follow_a_payment_a_part_payment_a_void_and_a_delete_when_made_in_xeros_ui(
    xero, workers, page, login, live_server, screenshot
):
    from xero_sandbox.testing import AU_ID

    organisation, user = _organisation_with_accountant(xero, "Harbour Care", "accounts@harbour.test")
    batch = InvoiceBatch.objects.create(
        organisation=organisation, name="December care services", eligibility=InvoiceBatch.Eligibility.ELIGIBLE
    )
    due = dt.date.today() + dt.timedelta(days=60)  # never overdue: Overdue would win over Part paid
    line = {"description": "Care services", "quantity": Decimal("1"), "unit_amount": Decimal("100")}
    customer = make_customer(organisation=organisation, name="Harbour View Aged Care")
    invoices = {
        name: _pushed(organisation, batch, number=number, status=status, lines=[line], due=due, customer=customer)
        for name, number, status in (
            ("paid", "HC-0201", "AUTHORISED"),
            ("part_paid", "HC-0202", "AUTHORISED"),
            ("voided", "HC-0203", "AUTHORISED"),
            ("deleted", "HC-0204", "DRAFT"),  # Xero deletes drafts only
        )
    }
    push(organisation)
    _until(lambda: _in_xero(invoices.values()), timeout=60, what="the push")
    assert xero.flush_webhooks(timeout=10)  # the webhooks of the creation itself, out of the way

    login(page, user.email)
    page.goto(f"{live_server.url}/batches/{batch.pk}/")
    badge = {name: page.locator(f"#xero-status-{inv.pk} [data-status]") for name, inv in invoices.items()}
    for name in ("paid", "part_paid", "voided"):
        expect(badge[name]).to_have_text("Awaiting payment")
    expect(badge["deleted"]).to_have_text("Draft in Xero")
    expect(page.locator("#batch-progress")).to_contain_text("All invoices are in Xero")

    # A person in Xero's own UI (the sandbox's), in another tab: each invoice from the organisation's list.
    xero_tab = page.context.new_page()

    def open_in_xero(name: str) -> None:
        xero_tab.goto(f"{xero.url}/orgs/{AU_ID}")
        xero_tab.locator("#invoices").get_by_role("link", name=invoices[name].number, exact=True).click()
        expect(xero_tab.get_by_role("heading", name=f"Invoice {invoices[name].number}")).to_be_visible()

    open_in_xero("paid")
    xero_tab.locator("#amount").fill("110.00")
    xero_tab.locator("#record-payment").click()
    expect(xero_tab.locator("#status")).to_have_text("PAID")
    open_in_xero("part_paid")
    xero_tab.locator("#amount").fill("40.00")
    xero_tab.locator("#record-payment").click()
    expect(xero_tab.locator("#amount-due")).to_have_text("70.00")
    expect(xero_tab.locator("#status")).to_have_text("AUTHORISED")
    open_in_xero("voided")
    xero_tab.locator("#void").click()
    expect(xero_tab.locator("#status")).to_have_text("VOIDED")
    open_in_xero("deleted")
    xero_tab.locator("#delete").click()
    expect(xero_tab.locator("#status")).to_have_text("DELETED")
    xero_tab.goto(f"{xero.url}/orgs/{AU_ID}")
    screenshot(xero_tab, "issue12-badges-changes-in-xero")
    xero_tab.close()

    # Coordinoter's batch page, never reloaded: each badge says what is true in Xero.
    expected = {"paid": "Paid", "part_paid": "Part paid", "voided": "Voided", "deleted": "Deleted"}
    for name, label in expected.items():
        expect(badge[name]).to_have_text(label, timeout=15_000)
        expect(badge[name]).to_have_attribute("data-status", name)
    expect(page.locator(f"#xero-status-{invoices['part_paid'].pk}")).to_contain_text("Paid 40.00 · due 70.00")
    expect(page.locator(f"#xero-status-{invoices['paid'].pk}")).to_contain_text("Paid 110.00 · due 0.00")
    # Nothing is offered that Xero would refuse: no Void on a paid or part-paid invoice, nothing on the removed.
    for name in expected:
        expect(page.locator(f"#xero-status-{invoices[name].pk} .row-actions")).to_have_count(0)

    # The progress card is not polled once nothing is on its way: read it on the next visit. Two of four are
    # still in Xero (paid and part paid), two were removed there; none failed, none waiting, never 100%.
    page.reload()
    progress = page.locator("#batch-progress")
    expect(progress.get_by_role("heading")).to_have_text("Sent to Xero; 2 voided or deleted there")
    expect(progress.locator('[data-count="synced"]')).to_have_text("2")
    expect(progress.locator('[data-count="removed"]')).to_have_text("2")
    expect(progress.locator('[data-count="pending"]')).to_have_text("0")
    expect(progress.locator('[data-count="failed"]')).to_have_text("0")
    expect(progress).to_contain_text("of 4 invoices")
    expect(progress.locator(".progress-percent")).to_have_text("50% in Xero")
    expect(progress.locator(".progress-bar")).to_have_attribute(
        "aria-label", "2 of 4 in Xero, 2 voided or deleted, 0 failed, 0 waiting"
    )
    for name, label in expected.items():
        expect(badge[name]).to_have_text(label)
    shoot(screenshot, page, "issue12-badges-after-xero-changes")
    at_phone_width(page, screenshot, "issue12-badges-after-xero-changes")
    # The dashboard counts the same way: the voided and the deleted one are not "in Xero".
    helpers.menu(page, "Dashboard")
    tiles = page.locator(".tile")
    expect(tiles.filter(has_text="Invoices in Xero").locator(".tile-num")).to_have_text("2")
    expect(tiles.filter(has_text="Voided or deleted in Xero").locator(".tile-num")).to_have_text("2")
    expect(tiles.filter(has_text="Waiting to sync").locator(".tile-num")).to_have_text("0")
    expect(tiles.filter(has_text="Failed").locator(".tile-num")).to_have_text("0")
    assert {inv.number: Invoice.objects.get(pk=inv.pk).xero_status for inv in invoices.values()} == {
        "HC-0201": "PAID",
        "HC-0202": "AUTHORISED",
        "HC-0203": "VOIDED",
        "HC-0204": "DELETED",
    }
