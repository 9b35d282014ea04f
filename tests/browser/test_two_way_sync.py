"""Two-way sync in the browser: a payment recorded in (sandbox) Xero's own UI shows as Paid on the Coordinoter
batch page within 5 seconds, with no refresh; voiding in Coordinoter makes Xero show VOIDED.

Real pieces: xero_sandbox (subprocess, delivering signed webhooks), our receiver in Django's live server, REAL
Celery workers (subprocesses) on Postgres and their own Redis database, Debian's Chromium.
"""

import time
import uuid

import pytest
from playwright.sync_api import expect

from coordinoter import queue
from integrations.webhooks import fetch
from invoices.models import Invoice
from tests.browser.helpers import WEBHOOK_KEY, broker_queues_emptied, sandbox_for_live_server
from tests.factories import make_membership, make_user
from tests.support.live import CeleryProcesses, live_env
from tests.support.xero_live import connect_organisation, sandbox_settings, xero_invoice_of_ours

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def broker(settings):
    """This run's own broker (TEST_REDIS_URL), its queues emptied first."""
    broker_queues_emptied("webhooks,default")
    queue.fail_fast_connection_drop()
    yield settings.REDIS_URL
    queue.fail_fast_connection_drop()


@pytest.fixture
def xero(webhook_sandbox, settings, live_server, monkeypatch):
    sandbox_for_live_server(webhook_sandbox, settings, live_server, webhook_key=WEBHOOK_KEY)
    monkeypatch.setattr(fetch, "xero_rate_limiter", lambda: None)
    return webhook_sandbox


@pytest.fixture
def workers(settings, xero, broker, transactional_db):
    processes = CeleryProcesses(
        env=live_env(
            settings,
            **sandbox_settings(xero),
            REDIS_URL=broker,
            XERO_RATE_LIMIT_PREFIX=f"test:browser-webhooks:{uuid.uuid4().hex}",
        )
    )
    processes.start_workers(2, queues="webhooks,default")
    yield processes
    processes.stop()


def test_payment_in_xero_shows_paid_without_refresh_and_void_reaches_xero(
    xero, workers, page, login, live_server, screenshot
):
    from xero_sandbox.testing import AU_ID

    organisation = connect_organisation(xero, name="Harbour Care", tenant_id=AU_ID)
    user = make_user(email="accounts@harbour.test", password="demo")
    make_membership(user=user, organisation=organisation, role="accountant")
    paid = xero_invoice_of_ours(organisation, number="HC-0001")
    to_void = xero_invoice_of_ours(organisation, number="HC-0002")
    Invoice.objects.filter(pk=to_void.pk).update(batch=paid.batch)
    paid.batch.name = "November care services"
    paid.batch.save(update_fields=["name"])
    assert xero.flush_webhooks(timeout=10)

    login(page, user.email)
    page.goto(f"{live_server.url}/batches/{paid.batch_id}/")
    paid_state = page.locator(f"#xero-status-{paid.pk}")
    expect(paid_state).to_contain_text("Overdue")  # AUTHORISED in Xero, due date passed

    # A person records the payment in Xero's own UI (the sandbox's), in another tab.
    xero_tab = page.context.new_page()
    xero_tab.goto(f"{xero.url}/orgs/{AU_ID}/invoices/{paid.xero_invoice_id}")
    xero_tab.locator("#amount").fill("110.00")
    xero_tab.locator("#record-payment").click()
    expect(xero_tab.locator("#status")).to_have_text("PAID")
    paid_at = time.monotonic()
    screenshot(xero_tab, "two-way-sync-payment-in-xero")

    # Coordinoter's batch page, never reloaded, shows it within 5 seconds.
    expect(paid_state.locator("[data-xero-status]")).to_have_attribute("data-xero-status", "PAID", timeout=5000)
    seen_after = time.monotonic() - paid_at
    expect(paid_state).to_contain_text("Paid")
    expect(paid_state).to_contain_text("due 0.00")
    assert seen_after < 5, seen_after
    # The invoice's history says where the change came from (read on the next visit).
    page.reload()
    page.locator(f"#invoice-{paid.pk} summary").click()
    expect(page.locator(f"#invoice-{paid.pk} .history")).to_contain_text("changed in Xero: status AUTHORISED → PAID")
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "two-way-sync-paid-in-coordinoter", full_page=True)

    # A paid invoice offers no Void; the unpaid one does. Void it in Coordinoter, with confirmation.
    expect(paid_state.get_by_role("link", name="Void")).to_have_count(0)
    page.locator(f"#xero-status-{to_void.pk}").get_by_role("link", name="Void").click()
    expect(page.get_by_role("heading", name="Void invoice HC-0002 in Xero?")).to_be_visible()
    screenshot(page, "two-way-sync-void-confirm")
    page.get_by_role("button", name="Void HC-0002").click()
    expect(page.locator(".flash").first).to_contain_text("Voiding HC-0002 in Xero")
    expect(page.locator(f"#xero-status-{to_void.pk} [data-xero-status]")).to_have_attribute(
        "data-xero-status", "VOIDED", timeout=8000
    )

    # Xero shows it VOIDED.
    xero_tab.goto(f"{xero.url}/orgs/{AU_ID}/invoices/{to_void.xero_invoice_id}")
    expect(xero_tab.locator("#status")).to_have_text("VOIDED")
    screenshot(xero_tab, "two-way-sync-voided-in-xero")
    assert Invoice.objects.get(pk=to_void.pk).status == "VOIDED"

    # Support staff see the tenant's webhook inbox: what arrived, what it did, and the lag.
    staff = make_user(email="support@coordinoter.test", password="demo", support=True)
    support_page = page.context.browser.new_page(viewport={"width": 1280, "height": 900})
    login(support_page, staff.email)
    support_page.goto(f"{live_server.url}/support/")
    support_page.get_by_role("link", name="Xero webhook inbox").click()
    support_page.get_by_role("link", name="Harbour Care").click()
    expect(support_page.get_by_role("heading", name="Harbour Care: Xero webhook inbox")).to_be_visible()
    expect(support_page.locator("#count-failed")).to_have_text("0")
    expect(support_page.locator("table").last).to_contain_text("applied")
    screenshot(support_page, "two-way-sync-support-inbox", full_page=True)
    support_page.close()
