"""Issue 12, item 10 in the browser: an Australian organisation types dates its own way and sees every time with
its zone named."""

import re

import pytest
from playwright.sync_api import expect

from invoices.models import Invoice
from organisations.models import Organisation
from tests.browser.helpers import shoot

pytestmark = pytest.mark.browser


def test_admin_types_a_day_first_date_and_sees_times_in_sydney_when_the_organisation_is_australian(
    page, live_server, demo_data, login, screenshot
):
    acme = Organisation.objects.get(name="Acme Care")
    acme.time_zone, acme.locale, acme.locale_source = "Australia/Sydney", "en-AU", "settings"
    acme.save()
    login(page, "admin@acme.test")
    page.goto(f"{live_server.url}/batches/new/")
    page.get_by_label("Batch name").fill("December visits")
    first = page.get_by_role("region", name="Invoice 1")
    expect(first.get_by_label("Issue date")).to_have_attribute("placeholder", "DD/MM/YYYY")
    first.get_by_label("Customer", exact=True).fill("Harbour View Aged Care")
    first.get_by_label("Issue date").fill("24/12/2026")
    first.get_by_label("Due date").fill("31/12/2026")
    first.get_by_label("Line 1 description").fill("Christmas Eve visit")
    first.get_by_label("Line 1 unit price").fill("85")
    page.get_by_role("button", name="Create batch").click()
    page.wait_for_url(re.compile(r"/batches/\d+/$"))
    expect(page.get_by_text(re.compile(r"Created \d{4}-\d{2}-\d{2} \d{2}:\d{2} AE[DS]T"))).to_be_visible()
    invoice = Invoice.objects.get(batch__name="December visits")
    assert str(invoice.issue_date) == "2026-12-24"
    shoot(screenshot, page, "issue12-batch-time-zone")
