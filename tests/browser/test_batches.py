"""Invoice batches in the browser: create in the form, CSV errors, a batch's Xero outcomes, the Xero mapping."""

import json
from decimal import Decimal
from pathlib import Path

import pytest
import responses
from django.conf import settings
from playwright.sync_api import expect

from invoices.models import Invoice, InvoiceBatch, InvoiceEvent, XeroMapping
from organisations.models import Organisation
from tests.browser.helpers import shoot, xero_connect_through_sandbox
from tests.factories import make_batch, make_connection
from tests.support.xero_live import point_settings_at_sandbox

pytestmark = pytest.mark.browser

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def test_admin_creates_a_batch_in_the_form_and_sees_it_listed_when_signed_in(
    page, live_server, demo_data, login, screenshot
):
    login(page, "admin@acme.test")
    page.get_by_role("navigation", name="Main menu").get_by_role("link", name="Invoice batches").click()
    page.get_by_role("link", name="New batch").click()
    expect(page.get_by_role("heading", name="New invoice batch")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("not synced to Xero")  # said before anything is created

    page.get_by_label("Batch name").fill("November care services")
    first = page.get_by_role("region", name="Invoice 1")
    first.get_by_label("Customer", exact=True).fill("Harbour View Aged Care")
    expect(first.get_by_label("Invoice number")).to_have_value("ACME-0007")  # continues the demo numbering
    first.get_by_label("Reference").fill("PO 4471")
    first.get_by_label("Line 1 description").fill("Care coordination, November")
    first.get_by_label("Line 1 quantity").fill("12")
    first.get_by_label("Line 1 unit price").fill("85")
    first.get_by_label("Line 2 description").fill("After-hours call-outs")
    first.get_by_label("Line 2 quantity").fill("3")
    first.get_by_label("Line 2 unit price").fill("120.50")

    page.get_by_role("button", name="+ Add another invoice").click()
    second = page.get_by_role("region", name="Invoice 2")
    expect(second.get_by_label("Invoice number")).to_have_value("ACME-0008")
    expect(first.get_by_label("Line 2 unit price")).to_have_value("120.50")  # what was typed survives
    second.get_by_label("Customer", exact=True).fill("Riverside Physio")  # a new customer
    second.get_by_label("Customer email").fill("accounts@riverside.example")
    second.get_by_label("Line 1 description").fill("Group sessions")
    second.get_by_label("Line 1 unit price").fill("")  # forgotten: the form says so on the line
    page.get_by_role("button", name="Create batch").click()
    expect(page.get_by_role("alert").first).to_contain_text("The batch was not created.")
    expect(second).to_contain_text("Enter the unit price.")
    shoot(screenshot, page, "batch-form-errors")
    assert not InvoiceBatch.objects.filter(name="November care services").exists()

    second.get_by_label("Line 1 unit price").fill("64.9950")
    shoot(screenshot, page, "batch-form")
    page.get_by_role("button", name="Create batch").click()

    expect(page.get_by_role("heading", name="November care services")).to_be_visible()
    expect(page.get_by_text("Batch “November care services” created with 2 invoices.")).to_be_visible()
    expect(page.get_by_text("Not synced to Xero.", exact=True)).to_be_visible()
    expect(page.get_by_role("cell", name="Riverside Physio")).to_be_visible()
    batch = InvoiceBatch.objects.get(name="November care services")
    assert batch.eligibility == "before_connection" and batch.invoices.count() == 2
    assert batch.invoices.get(number="ACME-0008").lines.get().unit_amount == Decimal("64.995")

    page.get_by_role("navigation", name="Main menu").get_by_role("link", name="Invoice batches").click()
    row = page.get_by_role("row").filter(has_text="November care services")
    expect(row).to_contain_text("Not synced")
    expect(row).to_contain_text("2")


def test_csv_with_bad_rows_is_reported_row_by_row_when_uploaded(
    page, live_server, demo_data, login, screenshot, tmp_path
):
    login(page, "admin@acme.test")
    page.goto(f"{live_server.url}/batches/upload/")
    page.get_by_label("Batch name").fill("December upload")
    page.get_by_label("CSV file").set_input_files(str(FIXTURES / "csv" / "bad_rows.csv"))
    page.get_by_role("button", name="Upload and create batch").click()
    errors = page.get_by_role("region", name="Nothing was imported")
    expect(errors).to_contain_text("problems in bad_rows.csv")
    conflict = errors.get_by_role("row").filter(has_text="Differs from row 4 of invoice INV-3003")
    expect(conflict.first).to_contain_text("5customer_name")
    shoot(screenshot, page, "batch-csv-errors")
    assert not InvoiceBatch.objects.filter(name="December upload").exists()

    # Acme's demo data has no Xero connection: lines cannot name their own account or tax rate (nothing to check
    # them against), so this upload leaves both to the defaults.
    good = tmp_path / "good_batch.csv"
    good.write_text(
        (FIXTURES / "csv" / "good_batch.csv").read_text().replace(",260,", ",,").replace(",EXEMPTOUTPUT", ",")
    )
    page.get_by_label("Batch name").fill("December upload")
    page.get_by_label("CSV file").set_input_files(str(good))
    page.get_by_role("button", name="Upload and create batch").click()
    expect(page.get_by_role("heading", name="December upload")).to_be_visible()
    assert InvoiceBatch.objects.get(name="December upload").source == "csv"


def test_batch_page_shows_each_invoices_xero_outcome_when_pushed(page, live_server, demo_data, login, screenshot):
    organisation = Organisation.objects.get(name="Acme Care")
    make_connection(organisation=organisation, tenant_short_code="!AcmeC")
    XeroMapping.objects.create(
        organisation=organisation,
        revenue_account_code="200",
        revenue_account_name="Sales",
        tax_type="OUTPUT",
        tax_name="GST on Income",
    )
    batch = make_batch(
        organisation=organisation,
        name="Weekly visits",
        invoices=6,
        eligibility="eligible",
        sync_state=Invoice.SyncState.SYNCED,
    )
    invoices = list(batch.invoices.order_by("number"))
    for i, invoice in enumerate(invoices):
        invoice.xero_invoice_id = f"2b0e3c1a-0000-4000-8000-00000000000{i}"
        invoice.xero_status = "AUTHORISED"
    failed, warned, waiting = invoices[0], invoices[1], invoices[5]
    failed.sync_state, failed.xero_invoice_id, failed.xero_status = "failed", "", ""
    failed.sync_errors = [{"Message": "Account code '999' is not a valid code for this document."}]
    warned.sync_state = "warning"
    warned.sync_warnings = [{"Message": "The contact's email address is missing, so the invoice was not sent."}]
    waiting.sync_state, waiting.xero_invoice_id, waiting.xero_status = "pending", "", ""
    Invoice.objects.bulk_update(
        invoices, ["sync_state", "xero_invoice_id", "xero_status", "sync_errors", "sync_warnings"]
    )
    InvoiceEvent.objects.create(
        invoice=failed,
        organisation=organisation,
        source="system",
        kind="failed",
        message="Xero rejected it: Account code '999' is not a valid code for this document.",
    )

    login(page, "accountant@acme.test")
    page.goto(f"{live_server.url}/batches/{batch.pk}/")
    progress = page.locator("#batch-progress")
    expect(progress).to_contain_text("Sending to Xero")
    expect(progress.locator('[data-count="synced"]')).to_have_text("4")
    expect(progress.locator('[data-count="failed"]')).to_have_text("1")
    expect(page.get_by_role("group", name=f"Xero rejected invoice {failed.number}")).to_contain_text(
        "Account code '999'"
    )
    expect(page.get_by_role("group", name=f"Xero warnings for invoice {warned.number}")).to_be_visible()
    link = page.get_by_role("link", name=f"Open in Xero (invoice {warned.number}, new tab)")
    expect(link).to_have_attribute(
        "href", settings.XERO_INVOICE_DEEP_LINK.format(short_code="%21AcmeC", invoice_id=warned.xero_invoice_id)
    )
    expect(page.get_by_role("button", name="Retry failed invoices (1)")).to_be_visible()
    shoot(screenshot, page, "batch-detail-errors")

    # The last invoice lands while the page is open: polling notices and the page reloads with the outcome.
    waiting.sync_state, waiting.xero_invoice_id = "synced", "2b0e3c1a-0000-4000-8000-0000000000ff"
    waiting.save(update_fields=["sync_state", "xero_invoice_id"])
    expect(page.locator("#batch-progress")).to_contain_text("Sent to Xero, with failures", timeout=8000)
    expect(page.locator("#batch-progress[hx-get]")).to_have_count(0)  # polling stopped
    # 5 of 6 in Xero, 1 failed: the bar reads what is in Xero, never 100% while an invoice failed.
    expect(page.locator("#batch-progress [data-percent-in-xero]")).to_have_attribute("data-percent-in-xero", "83")


def test_admin_chooses_the_xero_mapping_from_their_own_accounts_when_connected(
    page, live_server, demo_data, login, screenshot
):
    organisation = Organisation.objects.get(name="Acme Care")
    make_connection(organisation=organisation)
    api = settings.XERO_API_URL
    with responses.RequestsMock(assert_all_requests_are_fired=False) as xero:
        xero.get(f"{api}/Accounts", json=json.loads((FIXTURES / "xero" / "accounts.json").read_text()))
        xero.get(f"{api}/TaxRates", json=json.loads((FIXTURES / "xero" / "tax_rates.json").read_text()))
        login(page, "admin@acme.test")
        page.get_by_role("navigation", name="Main menu").get_by_role("link", name="Settings").click()
        page.get_by_role("link", name="Choose account and tax rate →").click()
        expect(page.get_by_role("heading", name="Xero mapping")).to_be_visible()
        account = page.get_by_label("Default revenue account")
        expect(account.locator("option")).to_have_text(["Choose an account", "200 · Sales", "260 · Other Revenue"])
        account.select_option("200")
        page.get_by_label("Default tax rate").select_option("OUTPUT")
        shoot(screenshot, page, "xero-mapping")
        page.get_by_role("button", name="Save mapping").click()
        expect(page.get_by_text("Xero mapping saved.")).to_be_visible()
        expect(page.get_by_text("by admin@acme.test")).to_be_visible()
    mapping = XeroMapping.objects.get(organisation=organisation)
    assert (mapping.revenue_account_code, mapping.tax_type) == ("200", "OUTPUT")


# ---------------------------------------------------------------- the whole journey against xero_sandbox


class PushWorker:
    """Runs the push tasks the app queues, in a thread of this process, honouring their countdowns.

    Publishing is intercepted (like tests/browser/test_connect_xero.py does) so nothing reaches the shared
    broker; the tasks themselves are the real ones, run through Celery's `apply`.
    """

    def __init__(self) -> None:
        import threading

        self.queue: list[tuple[float, object, dict]] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.failures: list[str] = []
        self.ran: list[str] = []
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def publish(self, task, args=None, kwargs=None, countdown=None, eta=None, **options) -> None:
        import time

        if not task.name.startswith("invoices.tasks.push"):
            return  # other apps' background work is not part of this journey
        with self.lock:
            self.queue.append((time.monotonic() + float(countdown or 0), task, tuple(args or ()), dict(kwargs or {})))

    def _loop(self) -> None:
        import time

        from django.db import connections

        try:
            while not self.stop.is_set():
                now, due = time.monotonic(), None
                with self.lock:
                    for item in sorted(self.queue, key=lambda i: i[0]):
                        if item[0] <= now:
                            self.queue.remove(item)
                            due = item
                            break
                if due is None:
                    time.sleep(0.05)
                    continue
                _, task, args, kwargs = due
                result = task.apply(args=args, kwargs=kwargs)
                self.ran.append(task.name)
                if result.failed():
                    self.failures.append(f"{task.name}({args}, {kwargs}): {result.result!r}")
        finally:
            connections.close_all()


@pytest.fixture
def xero(sandbox, live_server, settings, monkeypatch):
    from celery.app.task import Task

    redirect_uri = live_server.url + "/integrations/xero/callback/"
    sandbox.reset(keep_settings=True)
    sandbox.settings(redirect_uris=[redirect_uri])
    point_settings_at_sandbox(settings, sandbox, redirect_uri=redirect_uri)

    settings.XERO_INVOICE_DEEP_LINK = sandbox.url + "/app/{short_code}/invoicing/view/{invoice_id}"  # as make run
    worker = PushWorker()
    monkeypatch.setattr(
        Task, "apply_async", lambda self, args=None, kwargs=None, **o: worker.publish(self, args, kwargs, **o)
    )
    worker.thread.start()
    yield worker
    worker.stop.set()
    worker.thread.join(timeout=10)


@pytest.mark.integration
def test_admin_batch_lands_in_xero_and_a_failure_is_fixed_by_the_mapping_and_retried(
    page, live_server, demo_data, login, screenshot, xero, sandbox
):
    from xero_sandbox.testing import AU_ID

    page.on("dialog", lambda dialog: dialog.accept())  # the retry button asks first
    login(page, "admin@acme.test")

    # Connect Acme Care to the sandbox's Koala Coffee Roasters (AU).
    page.get_by_role("navigation", name="Main menu").get_by_role("link", name="Manage Integrations").click()
    xero_connect_through_sandbox(page)

    # A mapping chosen long ago whose account has since been archived in Xero: the push will be refused.
    organisation = Organisation.objects.get(name="Acme Care")
    XeroMapping.objects.create(
        organisation=organisation,
        revenue_account_code="280",
        revenue_account_name="Old",
        tax_type="OUTPUT",
        tax_name="GST on Income",
    )

    # Create a batch in the form: it goes to Xero by itself.
    page.goto(f"{live_server.url}/batches/new/")
    expect(page.get_by_text("Invoices in this batch appear in Xero by themselves")).to_be_visible()
    page.get_by_label("Batch name").fill("Koala roastery visits")
    first = page.get_by_role("region", name="Invoice 1")
    first.get_by_label("Customer", exact=True).fill("Harbour View Aged Care")
    first.get_by_label("Line 1 description").fill("Espresso machine service")
    first.get_by_label("Line 1 unit price").fill("180")
    page.get_by_role("button", name="+ Add another invoice").click()
    second = page.get_by_role("region", name="Invoice 2")
    second.get_by_label("Customer", exact=True).fill("Wattle Street Clinic")
    second.get_by_label("Line 1 description").fill("Barista training")
    second.get_by_label("Line 1 quantity").fill("3")
    second.get_by_label("Line 1 unit price").fill("95.50")
    page.get_by_role("button", name="Create batch").click()
    expect(page.get_by_role("heading", name="Koala roastery visits")).to_be_visible()

    # The progress bar runs until Xero has answered for every invoice; Xero refuses the archived account.
    progress = page.locator("#batch-progress")
    expect(progress).to_contain_text("No invoice reached Xero", timeout=30_000)  # both refused: 0% in Xero
    expect(progress.locator('[data-count="failed"]')).to_have_text("2")
    batch = InvoiceBatch.objects.get(name="Koala roastery visits")
    failed = batch.invoices.order_by("number").first()
    expect(page.get_by_role("group", name=f"Xero rejected invoice {failed.number}")).to_contain_text(
        "Account code '280' has been archived"
    )
    shoot(screenshot, page, "journey-validation-failure")

    # Fix the mapping: the page says the saved account is no longer usable; choose Sales (200).
    page.get_by_role("link", name="Xero mapping").click()
    expect(page.get_by_role("alert").filter(has_text="280")).to_contain_text("no longer an active revenue account")
    page.get_by_label("Default revenue account").select_option("200")
    page.get_by_label("Default tax rate").select_option("OUTPUT")
    page.get_by_role("button", name="Save mapping").click()
    expect(page.get_by_text("Xero mapping saved.")).to_be_visible()

    # Retry only the failed invoices; this time they land.
    page.goto(f"{live_server.url}/batches/{batch.pk}/")
    page.get_by_role("button", name="Retry failed invoices (2)").click()
    expect(page.get_by_role("status").filter(has_text="Sending 2 failed invoices")).to_be_visible()
    expect(page.locator("#batch-progress")).to_contain_text("All invoices are in Xero", timeout=30_000)
    expect(page.locator('#batch-progress [data-count="synced"]')).to_have_text("2")
    shoot(screenshot, page, "journey-all-in-xero")
    assert xero.failures == []

    # Each invoice is in the sandbox exactly once, and its link opens it there.
    in_xero = [i for i in sandbox.invoices(AU_ID) if i["InvoiceNumber"] in {"ACME-0007", "ACME-0008"}]
    assert sorted(i["InvoiceNumber"] for i in in_xero) == ["ACME-0007", "ACME-0008"]
    assert failed.events.filter(kind="retried", actor__email="admin@acme.test").exists()
    link = page.get_by_role("link", name=f"Open in Xero (invoice {failed.number}, new tab)")
    with page.context.expect_page() as opened:
        link.click()
    xero_page = opened.value
    expect(xero_page.locator("body")).to_contain_text(failed.number)
    expect(xero_page.locator("body")).to_contain_text("Harbour View Aged Care")
