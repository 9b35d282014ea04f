"""The guided tour: the three people who use Coordinoter, in one browser test whose screenshots illustrate the
README's "Tour" section (docs/screenshots/tour-*.png with UPDATE_SCREENSHOTS=1).

1. The business admin connects Xero (the sandbox's login and consent), chooses the Xero mapping and creates a
   batch of three invoices in the form. Two land in Xero; Xero refuses the third because its contact was
   archived in Xero.
2. The accountant, in a browser of their own, follows "Open in Xero" to an invoice, records its payment in Xero's
   UI, and sees it Paid on the batch page without reloading (Xero's webhook). They restore the archived contact
   in Xero, retry the failed invoice, and see it reach Xero.
3. Support staff find the tenant in the support console, read its health (connection, token expiry, last sync,
   open errors, webhook inbox) and ask the admins to reconnect; the admin sees the banner and reconnects.

Real pieces, as in tests/browser/test_two_way_sync.py: xero_sandbox (subprocess, delivering signed webhooks to
the live server), REAL Celery workers (subprocesses) for the push, the webhook inbox and the emails, on the test
database and this run's own Redis database (TEST_REDIS_URL), and Debian's Chromium.
"""

import uuid

import pytest
import requests
from playwright.sync_api import expect

from coordinoter import queue
from integrations.models import IntegrationAuditEvent, XeroConnection
from invoices.models import Customer, InvoiceBatch
from organisations.models import Organisation
from tests.browser.helpers import (
    WEBHOOK_KEY,
    broker_queues_emptied,
    menu,
    sandbox_for_live_server,
    shoot,
    xero_connect_through_sandbox,
)
from tests.support.live import CeleryProcesses, live_env
from tests.support.xero_live import sandbox_settings

pytestmark = [pytest.mark.browser, pytest.mark.integration]

TENANT = "Koala Coffee Roasters (AU)"
ARCHIVED_CONTACT = "Melbourne Makers Co-op"
RECONNECT_REASON = "Please reconnect Xero so we can renew Coordinoter's access."
QUEUES = "xero,webhooks,default"
LANDED = 60_000  # ms for Xero's answers to reach a page: real workers on a shared 2-vCPU machine


@pytest.fixture
def xero(webhook_sandbox, live_server, settings):
    sandbox_for_live_server(webhook_sandbox, settings, live_server, webhook_key=WEBHOOK_KEY)
    return webhook_sandbox


@pytest.fixture
def workers(settings, xero, transactional_db):
    """Two workers on every queue, on this run's broker (TEST_REDIS_URL), emptied first of the tasks that tests
    without workers left there."""
    broker_queues_emptied(QUEUES)
    queue.fail_fast_connection_drop()
    processes = CeleryProcesses(
        env=live_env(settings, **sandbox_settings(xero), XERO_RATE_LIMIT_PREFIX=f"test:tour:{uuid.uuid4().hex}")
    )
    processes.start_workers(2, queues=QUEUES)
    yield processes
    processes.stop()
    queue.fail_fast_connection_drop()


def test_tour_admin_accountant_and_support(
    xero, workers, demo_data, page, another_page, login, live_server, screenshot
):
    from xero_sandbox.testing import AU_ID

    acme = Organisation.objects.get(name="Acme Care")
    # Before the tour: an earlier sync linked Acme Care's customer to its Xero contact, which someone has since
    # archived while tidying up Xero. Xero refuses new invoices for an archived contact until it is restored.
    contact = next(c for c in xero.contacts(AU_ID) if c["Name"] == ARCHIVED_CONTACT)
    Customer.objects.create(organisation=acme, name=ARCHIVED_CONTACT, xero_contact_id=contact["ContactID"])
    _xero_contact_status(xero, AU_ID, contact, "ARCHIVED")

    # ------------------------------------------------------------ 1. the business admin
    admin = page
    login(admin, "admin@acme.test")
    menu(admin, "Manage Integrations")
    expect(admin.locator("#xero-card")).to_contain_text("Not connected")
    xero_connect_through_sandbox(admin, tenant=TENANT)
    expect(admin.get_by_role("status")).to_contain_text(f"Connected to {TENANT}.")
    expect(admin.locator("#xero-card")).to_contain_text("Xero short code")
    shoot(screenshot, admin, "tour-1-admin-connected")

    menu(admin, "Settings")
    admin.get_by_role("link", name="Choose account and tax rate →").click()
    admin.get_by_label("Default revenue account").select_option("200")  # read from the sandbox's chart
    admin.get_by_label("Default tax rate").select_option("OUTPUT")
    admin.get_by_role("button", name="Save mapping").click()
    expect(admin.get_by_text("Xero mapping saved.")).to_be_visible()

    menu(admin, "Invoice batches")
    admin.get_by_role("link", name="New batch").click()
    expect(admin.get_by_text("Invoices in this batch appear in Xero by themselves")).to_be_visible()
    admin.get_by_label("Batch name").fill("December care visits")
    for index, (customer, description, quantity, price) in enumerate(
        [
            ("Harbour View Aged Care", "Care coordination, December", "12", "85"),
            ("Wattle Street Clinic", "Physio group sessions", "4", "64.50"),
            (ARCHIVED_CONTACT, "Workshop safety review", "1", "420"),
        ],
        start=1,
    ):
        if index > 1:
            admin.get_by_role("button", name="+ Add another invoice").click()
        invoice = admin.get_by_role("region", name=f"Invoice {index}")
        invoice.get_by_label("Customer", exact=True).fill(customer)
        invoice.get_by_label("Line 1 description").fill(description)
        invoice.get_by_label("Line 1 quantity").fill(quantity)
        invoice.get_by_label("Line 1 unit price").fill(price)
    admin.get_by_role("button", name="Create batch").click()
    expect(admin.get_by_text("created with 3 invoices. They are on their way to Xero.")).to_be_visible()

    batch = InvoiceBatch.objects.get(organisation=acme, name="December care visits")
    to_pay, _, refused = batch.invoices.order_by("number")
    assert refused.customer.name == ARCHIVED_CONTACT
    progress = admin.locator("#batch-progress")
    expect(progress).to_contain_text("Sent to Xero, with failures", timeout=LANDED)
    expect(progress.locator('[data-count="synced"]')).to_have_text("2")
    expect(progress.locator('[data-count="failed"]')).to_have_text("1")
    expect(admin.get_by_role("group", name=f"Xero rejected invoice {refused.number}")).to_contain_text(
        f"The contact '{ARCHIVED_CONTACT}' has been archived. Restore the contact to use it."
    )
    shoot(screenshot, admin, "tour-1-admin-batch")

    # ------------------------------------------------------------ 2. the accountant
    accountant = another_page()
    login(accountant, "accountant@acme.test")
    menu(accountant, "Invoice batches")
    accountant.get_by_role("link", name="December care visits").click()
    expect(accountant.get_by_role("heading", name="December care visits")).to_be_visible()
    expect(accountant.get_by_role("button", name="Retry failed invoices (1)")).to_be_visible()
    payment_state = accountant.locator(f"#xero-status-{to_pay.pk}")
    expect(payment_state).to_contain_text("Awaiting payment")

    with accountant.context.expect_page() as opened:
        accountant.get_by_role("link", name=f"Open in Xero (invoice {to_pay.number}, new tab)").click()
    in_xero = opened.value
    expect(in_xero.locator("body")).to_contain_text(to_pay.number)
    expect(in_xero.locator("body")).to_contain_text("Harbour View Aged Care")
    expect(in_xero.locator("#amount")).to_have_value(f"{to_pay.total:.2f}")  # the full amount due
    in_xero.locator("#record-payment").click()
    expect(in_xero.locator("#status")).to_have_text("PAID")
    shoot(screenshot, in_xero, "tour-2-payment-in-xero")

    # Back on the batch page, never reloaded: Xero's webhook brings the payment in.
    accountant.bring_to_front()
    expect(payment_state.locator("[data-xero-status]")).to_have_attribute("data-xero-status", "PAID", timeout=LANDED)
    expect(payment_state).to_contain_text("Paid")
    shoot(screenshot, accountant, "tour-2-accountant-paid")

    # The refused invoice: restore the contact in Xero, then retry just that invoice.
    in_xero.goto(f"{xero.url}/orgs/{AU_ID}/contacts")
    in_xero.get_by_role("link", name=ARCHIVED_CONTACT).click()
    in_xero.get_by_label("Status").select_option("ACTIVE")
    in_xero.locator("#save-contact").click()
    expect(in_xero.locator("body")).to_contain_text("Contact saved")
    in_xero.close()
    accountant.get_by_role("button", name=f"Retry {refused.number}").click()
    expect(
        accountant.get_by_role("status").filter(has_text=f"Sending invoice {refused.number} to Xero again.")
    ).to_be_visible()
    expect(accountant.locator("#batch-progress")).to_contain_text("All invoices are in Xero", timeout=LANDED)
    expect(accountant.locator('#batch-progress [data-count="synced"]')).to_have_text("3")
    expect(accountant.get_by_role("group", name=f"Xero rejected invoice {refused.number}")).to_have_count(0)
    expect(accountant.locator(f"#xero-status-{to_pay.pk}")).to_contain_text("Paid")
    accountant.locator(f"#invoice-{refused.pk} summary").click()  # its history: refused, retried by whom, sent
    history = accountant.locator(f"#invoice-{refused.pk} .history")
    expect(history).to_contain_text("has been archived")
    expect(history).to_contain_text("(accountant@acme.test)")
    shoot(screenshot, accountant, "tour-2-accountant-all-in-xero")
    numbers = sorted(i["InvoiceNumber"] for i in xero.invoices(AU_ID) if i["InvoiceNumber"].startswith("ACME-"))
    assert numbers == sorted(batch.invoices.values_list("number", flat=True))  # each once
    assert refused.events.filter(kind="retried", actor__email="accountant@acme.test").exists()

    # ------------------------------------------------------------ 3. support staff
    support = another_page()
    support.on("dialog", lambda dialog: dialog.accept())  # support actions ask first
    login(support, "support@coordinoter.test")
    expect(support.get_by_role("heading", name="Support console")).to_be_visible()
    support.get_by_label("Search organisations").fill("Koala")  # by the Xero organisation's name
    support.get_by_role("button", name="Filter").click()
    row = support.get_by_role("row", name="Acme Care")
    expect(row).to_contain_text(TENANT)
    expect(row).to_contain_text("Connected")
    expect(row.get_by_role("cell")).to_have_count(7)
    for column in (3, 5):  # token expiry and last successful sync are known
        expect(row.get_by_role("cell").nth(column)).not_to_have_text("—")
    expect(row.get_by_role("cell").nth(6)).to_have_text("None")  # no open errors
    shoot(screenshot, support, "tour-3-support-console")

    support.get_by_role("link", name="Xero webhook inbox").click()
    support.get_by_role("link", name="Acme Care").click()
    expect(support.get_by_role("heading", name="Acme Care: Xero webhook inbox")).to_be_visible()
    expect(support.locator("#count-failed")).to_have_text("0")
    expect(support.locator("#count-processed")).not_to_have_text("0")
    expect(support.locator("table").last).to_contain_text("applied")
    shoot(screenshot, support, "tour-3-support-webhooks")

    menu(support, "Support console")
    support.get_by_role("link", name="Acme Care").click()
    tenant_facts = support.locator("dl.facts")
    expect(tenant_facts).to_contain_text(TENANT)
    expect(tenant_facts).to_contain_text("Access token expires")
    support.get_by_placeholder("Reason shown to the admins").fill(RECONNECT_REASON)
    support.get_by_role("button", name="Ask admins to reconnect").click()
    expect(support.get_by_role("status")).to_contain_text("The admins were asked to reconnect")
    expect(tenant_facts).to_contain_text(RECONNECT_REASON)
    expect(support.get_by_role("table").last).to_contain_text("Asked the admins to reconnect Xero")
    shoot(screenshot, support, "tour-3-support-organisation")
    event = IntegrationAuditEvent.objects.get(organisation=acme, action="reconnect_requested")
    assert event.actor.email == "support@coordinoter.test" and event.actor_kind == "support"

    # The admin sees the banner on every page, and reconnects from it (still logged in at Xero).
    menu(admin, "Dashboard")
    banner = admin.get_by_role("alert").filter(has_text="Coordinoter support asks an admin to reconnect Xero")
    expect(banner).to_contain_text(RECONNECT_REASON)
    shoot(screenshot, admin, "tour-3-admin-banner")
    banner.get_by_role("link", name="Reconnect Xero").click()
    xero_connect_through_sandbox(admin, button="Reconnect", tenant=TENANT)
    expect(admin.get_by_role("status")).to_contain_text(f"Reconnected to {TENANT}.")
    expect(admin.get_by_text("Coordinoter support asks an admin to reconnect Xero")).to_have_count(0)
    connection = XeroConnection.objects.get(organisation=acme)
    assert connection.status == "active" and connection.reconnect_requested_at is None


def _xero_contact_status(sandbox, tenant_id: str, contact: dict, status: str) -> None:
    """Change a contact's status the way a person does in (sandbox) Xero's UI."""
    response = requests.post(
        f"{sandbox.url}/orgs/{tenant_id}/contacts/{contact['ContactID']}",
        timeout=10,
        data={"name": contact["Name"], "email": contact.get("EmailAddress") or "", "status": status},
        allow_redirects=False,
    )
    assert response.status_code in (302, 303), response.text[:500]
    assert (
        next(c for c in sandbox.contacts(tenant_id) if c["ContactID"] == contact["ContactID"])["ContactStatus"]
        == status
    )
