"""Fix and resend, and Send to Xero, in the browser against xero_sandbox (issue 12, items 2 and 9): an invoice Xero
refused is fixed on its own page and resent until it is in Xero; a batch made before Xero was connected is sent on
purpose through its review page. Screenshots at desktop (1280) and phone (390) widths; at 390 no page is wider than
the phone."""

import pytest
from playwright.sync_api import expect

from invoices.models import Invoice, InvoiceBatch, InvoiceLine, XeroMapping
from invoices.services.push import push_enqueue_for_organisation
from organisations.models import Organisation
from tests.browser import test_batches
from tests.browser.helpers import shoot, xero_connect_through_sandbox

# The journey's fixture: the push worker running the real push tasks (the sandbox is tests/conftest.py's).
xero = test_batches.xero

pytestmark = [pytest.mark.browser, pytest.mark.integration]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 820}


def at_phone_width(page, screenshot, name: str) -> None:
    """The same page on a 390-pixel phone: nothing wider than the screen (no column cut off), then a screenshot."""
    page.set_viewport_size(PHONE)
    page.wait_for_timeout(150)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{name}: the page is {width}px wide on a 390px phone"
    # Every cell of every table fits inside the screen.
    overflowing = page.evaluate(
        """() => [...document.querySelectorAll('table td, table th')]
            .filter(c => c.offsetParent !== null)
            .filter(c => {
                const r = c.getBoundingClientRect();
                return r.right > window.innerWidth + 1 || r.left < -1;
            })
            .map(c => c.textContent.trim().slice(0, 40))"""
    )
    assert overflowing == [], f"{name}: cells outside a 390px screen: {overflowing[:5]}"
    shoot(screenshot, page, f"{name}-phone")
    page.set_viewport_size(DESKTOP)


def fix_line_account_and_resend(page, screenshot, title: str, *, reference: str, shots: tuple[str, str]) -> None:
    """On a document's fix page: Xero's words beside the form; the refused line's own account replaced and a
    reference given; the page shot at desktop and phone widths (`shots`: the two names); then Save and resend.
    `title`: "invoice ACME-0100". Its line names account 280 (archived in the sandbox) at 180.00; 200 is right."""
    number, was, now = title.split()[-1], "280", "200"
    expect(page.get_by_role("heading", name=f"Fix {title}")).to_be_visible()
    expect(page.get_by_role("group", name=f"What Xero said about {number}")).to_contain_text(was)
    expect(page.get_by_label("Line 1 account code")).to_have_value(was)
    expect(page.get_by_label("Line 1 unit price")).to_have_value("180.00")
    page.get_by_label("Line 1 account code").fill(now)
    page.get_by_label("Reference").fill(reference)
    shoot(screenshot, page, shots[0])
    at_phone_width(page, screenshot, shots[1])
    page.get_by_role("button", name="Save and resend to Xero").click()


def connected_acme(page, login) -> Organisation:
    login(page, "admin@acme.test")
    page.get_by_role("navigation", name="Main menu").get_by_role("link", name="Manage Integrations").click()
    xero_connect_through_sandbox(page)
    organisation = Organisation.objects.get(name="Acme Care")
    XeroMapping.objects.create(
        organisation=organisation,
        revenue_account_code="200",
        revenue_account_name="Sales",
        tax_type="OUTPUT",
        tax_name="GST on Income",
    )
    return organisation


def test_refused_invoice_is_fixed_on_its_page_and_resent_until_it_is_in_xero(
    page, live_server, demo_data, login, screenshot, xero, sandbox
):
    from xero_sandbox.testing import AU_ID

    organisation = connected_acme(page, login)
    # A batch made while the line's own account was still open; it has since been archived in Xero (280), so Xero
    # refuses the invoice, and the mapping cannot help: the line's own account wins.
    batch = InvoiceBatch.objects.create(
        organisation=organisation, name="Roastery visits", eligibility=InvoiceBatch.Eligibility.ELIGIBLE
    )
    customer = organisation.customers.order_by("name").first()
    refused = Invoice.objects.create(
        organisation=organisation,
        batch=batch,
        customer=customer,
        number="ACME-0100",
        issue_date="2026-11-02",
        due_date="2026-11-16",
        currency="AUD",
        sync_state=Invoice.SyncState.PENDING,
        total="198.00",
        amount_due="198.00",
    )
    InvoiceLine.objects.create(
        invoice=refused, position=1, description="Espresso machine service", unit_amount="180", account_code="280"
    )
    push_enqueue_for_organisation(organisation_id=organisation.pk)

    page.goto(f"{live_server.url}/batches/{batch.pk}/")
    expect(page.locator("#batch-progress")).to_contain_text("No invoice reached Xero", timeout=30_000)
    problem = page.get_by_role("group", name="Xero rejected invoice ACME-0100")
    expect(problem).to_contain_text("Account code '280' has been archived")
    expect(page.locator(".retry-hint")).to_contain_text("a line's own account and tax rate win over the defaults")
    shoot(screenshot, page, "issue12-fix-refused")

    problem.get_by_role("link", name="Fix ACME-0100").click()
    fix_line_account_and_resend(
        page, screenshot, "invoice ACME-0100", reference="PO 5521", shots=("issue12-fix-invoice",) * 2
    )
    expect(page.get_by_text("Saved. Sending invoice ACME-0100 to Xero again.")).to_be_visible()
    expect(page.locator("#batch-progress")).to_contain_text("All invoices are in Xero", timeout=30_000)
    history = page.locator(f"#invoice-{refused.pk} .history")
    page.locator(f"#invoice-{refused.pk} summary").click()
    expect(history).to_contain_text("Edited by admin@acme.test")
    expect(history).to_contain_text("Retry requested by admin@acme.test")
    shoot(screenshot, page, "issue12-fix-resent")
    at_phone_width(page, screenshot, "issue12-fix-resent")
    assert xero.failures == []

    in_xero = [i for i in sandbox.invoices(AU_ID) if i["InvoiceNumber"] == "ACME-0100"]
    assert len(in_xero) == 1 and in_xero[0]["Reference"] == "PO 5521"
    assert [line["AccountCode"] for line in in_xero[0]["LineItems"]] == ["200"]
    refused.refresh_from_db()
    assert refused.xero_tenant_id == AU_ID and refused.xero_short_code


def test_batch_made_before_connecting_is_sent_through_its_review_page(
    page, live_server, demo_data, login, screenshot, xero, sandbox
):
    from xero_sandbox.testing import AU_ID

    organisation = connected_acme(page, login)
    batch = InvoiceBatch.objects.get(organisation=organisation, name="October services")
    first = batch.invoices.order_by("number").first()
    InvoiceLine.objects.filter(invoice=first).update(account_code="999")  # Xero's chart has no 999

    page.goto(f"{live_server.url}/batches/{batch.pk}/")
    expect(page.get_by_text("Not synced to Xero.", exact=True)).to_be_visible()
    page.get_by_role("link", name="Send to Xero…").click()
    expect(page.get_by_role("heading", name="Send “October services” to Xero?")).to_be_visible()
    count = batch.invoices.count()
    expect(page.locator('[data-review="count"]')).to_have_text(str(count))
    refusals = page.get_by_role("table", name="What Xero would refuse")
    expect(refusals).to_contain_text("Account 999 is not one of your active revenue accounts in Xero.")
    expect(page.get_by_role("button", name=f"Send {count} invoices to Xero")).to_have_count(0)
    shoot(screenshot, page, "issue12-send-review-refused")

    refusals.get_by_role("link", name=f"Fix {first.number}").click()
    page.get_by_label("Line 1 account code").fill("")  # back to the default from the mapping
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_text(f"Saved your changes to {first.number}.")).to_be_visible()

    page.goto(f"{live_server.url}/batches/{batch.pk}/send/")
    expect(page.get_by_text("Every line was checked against your Xero chart")).to_be_visible()
    expect(page.locator('[data-review="totals"]')).to_contain_text("AUD")
    shoot(screenshot, page, "issue12-send-review")
    at_phone_width(page, screenshot, "issue12-send-review")
    page.get_by_role("button", name=f"Send {count} invoices to Xero").click()

    expect(page.get_by_text(f"Sending {count} invoices of “October services” to Xero.")).to_be_visible()
    expect(page.locator("#batch-progress")).to_contain_text("All invoices are in Xero", timeout=30_000)
    expect(page.get_by_text("Sent to Xero on purpose by admin@acme.test")).to_be_visible()
    shoot(screenshot, page, "issue12-send-sent")
    assert xero.failures == []
    numbers = {i["InvoiceNumber"] for i in sandbox.invoices(AU_ID)}
    assert set(batch.invoices.values_list("number", flat=True)) <= numbers
    # The other batch made before connecting stays out of Xero: the help article's rule.
    september = InvoiceBatch.objects.get(organisation=organisation, name="September services")
    assert not set(september.invoices.values_list("number", flat=True)) & numbers

    # The invoice list and the batch list, at both widths.
    page.get_by_role("navigation", name="Main menu").get_by_role("link", name="Invoices", exact=True).click()
    expect(page.get_by_role("heading", name="Invoices", exact=True)).to_be_visible()
    page.get_by_label("Status").select_option("not_synced")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("tbody tr")).to_have_count(september.invoices.count())
    shoot(screenshot, page, "issue12-invoice-list")
    at_phone_width(page, screenshot, "issue12-invoice-list")
    page.goto(f"{live_server.url}/batches/")
    at_phone_width(page, screenshot, "issue12-batch-list")
