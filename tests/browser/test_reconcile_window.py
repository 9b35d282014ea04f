"""Support sees, on a tenant's webhook page, a reconciliation window that passes have not read to its end yet: since
when it asks Xero for changes, since when its passes read it, and the page the next pass goes on at."""

import datetime as dt

import pytest
from playwright.sync_api import expect

from integrations.models import ReconciliationState
from organisations.models import Organisation
from tests.browser.helpers import shoot

pytestmark = pytest.mark.browser


def test_support_sees_where_a_reconciliation_window_goes_on(page, live_server, demo_data, login, screenshot):
    organisation = Organisation.objects.get(name="Acme Care")
    ReconciliationState.objects.update_or_create(
        organisation=organisation,
        defaults={
            "last_success_at": dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.UTC),
            "resume_since": dt.datetime(2026, 11, 24, 8, 58, tzinfo=dt.UTC),
            "resume_started_at": dt.datetime(2026, 11, 24, 9, 30, 12, tzinfo=dt.UTC),
            "resume_category": "INVOICE",
            "resume_page": 51,
            "last_error": "More than 50 pages changed; the next pass goes on at page 51 of invoices",
        },
    )
    login(page, "support@coordinoter.test", "demo")
    page.goto(f"{live_server.url}/support/organisations/{organisation.pk}/webhooks/")
    window = page.locator("#reconcile-window")
    expect(window).to_contain_text("the next pass goes on at page 51 of invoices")
    expect(window).to_contain_text("changes since 2026-11-24")
    shoot(screenshot, page, "issue11-reconcile-window-desktop")
    page.set_viewport_size({"width": 390, "height": 844})
    expect(window).to_be_visible()
    shoot(screenshot, page, "issue11-reconcile-window-phone")
