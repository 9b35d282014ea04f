"""The new-batch form in the browser (issue 12: "every status on every page says what is true in Xero"): switching a
document's Type to Credit note renames its card, its number and its statuses as Xero names them for a credit note,
hides the due date (a Xero credit note has none) and shows the allocation; switching back undoes it. What is posted
does not change: the credit note is created with the values typed."""

import re

import pytest
from playwright.sync_api import expect

from invoices.models import CreditNote, XeroMapping
from tests.browser.helpers import shoot
from tests.factories import make_membership, make_organisation, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_switching_the_type_to_credit_note_relabels_the_card_and_hides_the_due_date(
    page, live_server, login, screenshot
):
    organisation = make_organisation(name="Émile Care")
    XeroMapping.objects.create(organisation=organisation, revenue_account_code="200", tax_type="OUTPUT")
    admin = make_user(email="admin@emile.test", password="demo")
    make_membership(user=admin, organisation=organisation, role="admin")

    login(page, admin.email)
    page.goto(f"{live_server.url}/batches/new/")
    page.get_by_label("Batch name").fill("Roses, November")
    first = page.locator("section.invoice-card").nth(0)
    first.get_by_label("Customer", exact=True).fill("İzmir Florist")
    first.get_by_label("Invoice number").fill("EF-0001")
    first.get_by_label("Line 1 description").fill("Roses, 2 dozen")
    first.get_by_label("Line 1 quantity").fill("2")
    first.get_by_label("Line 1 unit price").fill("55")
    # An invoice: a due date, Xero's invoice statuses, and no allocation to fill in.
    expect(first.get_by_label("Due date")).to_be_visible()
    expect(first.locator("[name=inv-0-allocate_to]")).to_be_hidden()
    expect(first.locator("[name=inv-0-status] option")).to_have_text(["Draft", "Awaiting approval", "Awaiting payment"])

    page.get_by_role("button", name="+ Add another invoice").click()
    second = page.locator("section.invoice-card").nth(1)
    expect(second.get_by_role("heading")).to_have_text("Invoice 2")
    second.get_by_label("Type", exact=True).select_option("credit_note")
    expect(page.get_by_role("region", name="Credit note 2")).to_be_visible()
    expect(second.get_by_role("heading")).to_have_text("Credit note 2")
    expect(second.get_by_label("Credit note number")).to_be_visible()
    expect(second.locator("label[for=id_inv-1-issue_date]")).to_have_text(re.compile(r"^\s*Date\s*\*\s*$"))
    expect(second.get_by_text("Invoice number")).to_have_count(0)
    expect(second.locator("[name=inv-1-due_date]")).to_be_hidden()
    expect(second.get_by_label("Allocate to invoice")).to_be_visible()
    expect(second.locator("[name=inv-1-status] option")).to_have_text(["Draft", "Awaiting approval", "Approved"])
    expect(second.locator("[name=inv-1-status]")).to_have_value("AUTHORISED")
    expect(first.get_by_role("heading")).to_have_text("Invoice 1")  # the other card keeps its own Type's words

    # Back to an invoice and again: each switch says what the document is now.
    second.get_by_label("Type", exact=True).select_option("invoice")
    expect(second.get_by_role("heading")).to_have_text("Invoice 2")
    expect(second.get_by_label("Due date")).to_be_visible()
    expect(second.get_by_label("Issue date")).to_be_visible()
    expect(second.locator("[name=inv-1-allocate_to]")).to_be_hidden()
    expect(second.locator("[name=inv-1-status] option")).to_have_text(
        ["Draft", "Awaiting approval", "Awaiting payment"]
    )
    second.get_by_label("Type", exact=True).select_option("credit_note")

    second.get_by_label("Customer", exact=True).fill("İzmir Florist")
    second.get_by_label("Credit note number").fill("CN-0001")
    second.get_by_label("Allocate to invoice").fill("EF-0001")
    second.get_by_label("Line 1 description").fill("Wilted roses returned")
    second.get_by_label("Line 1 unit price").fill("20.00")
    page.evaluate("document.activeElement.blur()")
    shoot(screenshot, page, "issue12-credit-note-form")
    page.set_viewport_size({"width": 390, "height": 844})
    expect(second.get_by_role("heading")).to_have_text("Credit note 2")
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the form is {overflow} px wider than a 390 px phone"
    shoot(screenshot, page, "issue12-credit-note-form-phone")
    page.set_viewport_size({"width": 1280, "height": 820})

    page.get_by_role("button", name="Create batch").click()
    page.wait_for_url(re.compile(r"/batches/\d+/$"))
    note = CreditNote.objects.get(organisation=organisation, number="CN-0001")
    assert (note.status, note.total > 0, note.allocations.get().invoice.number) == ("AUTHORISED", True, "EF-0001")
