"""The support console's usage chart in a real browser, on a realistic day: pushes at Xero's limit in the morning
with a few 429s, quiet afternoon calls, webhook lag mostly seconds with one slow hour. Takes the screenshot
docs/operations.md shows (docs/screenshots/support-usage-chart.png with UPDATE_SCREENSHOTS=1)."""

import datetime as dt
import random
import uuid

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from integrations.models import WebhookEvent, XeroApiUsage
from integrations.usage.record import minute_of
from organisations.models import Organisation
from tests.factories import make_connection

pytestmark = pytest.mark.browser


def _a_realistic_day(organisation: Organisation) -> None:
    connection = make_connection(
        organisation=organisation,
        tenant_id=str(uuid.uuid4()),
        tenant_name="Acme Care (NZ)",
        connection_id=str(uuid.uuid4()),
    )
    rng = random.Random(7)
    now = timezone.now()
    end = minute_of(now)
    rows, day_left = [], 5000
    for i in range(24 * 60, 0, -1):
        minute = end - dt.timedelta(minutes=i)
        hours_ago = i / 60
        if 17 <= hours_ago < 17.75:  # a 2,500-invoice batch: the limiter keeps it just under Xero's ceiling
            calls = rng.randint(55, 59)
        elif 6 <= hours_ago < 6.2:  # a push while another app uses the same tenant: Xero counts both, 429s
            calls = 60
        elif 1 <= hours_ago < 12:  # working hours: small batches, webhook fetches, reconciliation
            calls = rng.choice([0, 0, 0, 0, 0, 0, 1, 2, 3, 5, 9])
        else:
            calls = rng.choice([0] * 10 + [1, 2])
        if not calls:
            continue
        rate_limited = 1 if 6 <= hours_ago < 6.2 and i % 4 == 0 else 0
        day_left = max(0, day_left - calls)
        rows.append(
            XeroApiUsage(
                organisation=organisation,
                minute=minute,
                calls=calls,
                rate_limited=rate_limited,
                min_remaining=max(0, 60 - calls),
                day_remaining=day_left,
                updated_at=minute,
            )
        )
    XeroApiUsage.objects.bulk_create(rows)
    events = []
    for hour in range(1, 24):
        for n in range(rng.randint(4, 20)):
            received = now - dt.timedelta(hours=hour, minutes=rng.randint(0, 59))
            lag = rng.uniform(0.4, 3.0) if hour != 6 else rng.uniform(8, 45)  # one slow hour: the 429s above
            events.append(
                WebhookEvent(
                    organisation=organisation,
                    tenant_id=connection.tenant_id,
                    category="INVOICE",
                    event_type="UPDATE",
                    resource_id=str(uuid.uuid4()),
                    event_date=received,
                    state="processed",
                    outcome="applied",
                    received_at=received,
                    processed_at=received + dt.timedelta(seconds=lag),
                )
            )
    WebhookEvent.objects.bulk_create(events)


def test_support_sees_a_days_xero_usage_against_the_limit(page, live_server, demo_data, login, screenshot):  # noqa: F811
    organisation = Organisation.objects.get(name="Acme Care")
    _a_realistic_day(organisation)
    login(page, "support@coordinoter.test", "demo")
    page.goto(f"{live_server.url}/support/organisations/{organisation.pk}/")

    card = page.locator("section.usage-card")
    expect(card.get_by_role("heading", name="Xero usage, last 24 hours")).to_be_visible()
    expect(
        card.get_by_role(
            "img", name="Calls to Xero per minute over the last 24 hours, against Xero's limit of 60 a minute"
        )
    ).to_be_visible()
    expect(
        card.get_by_role(
            "img", name="Webhook lag per hour: 95th percentile of the time from receiving an event to applying it"
        )
    ).to_be_visible()
    expect(card.locator("#usage-figures")).to_contain_text("Peak calls a minute")
    expect(card.locator(".mark-429").first).to_be_attached()
    card.locator("details.usage-table > summary").click()
    expect(card.locator("details.usage-table tbody tr").first).to_be_visible()
    card.locator("details.usage-table > summary").click()  # closed again for the screenshot
    page.set_viewport_size({"width": 1280, "height": 1000})
    page.evaluate("y => window.scrollTo(0, y)", card.bounding_box()["y"] + page.evaluate("window.scrollY") - 80)
    path = screenshot(page, "support-usage-chart")
    card.screenshot(path=str(path))  # just the card, below the sticky top bar


def test_support_sees_the_whole_apps_usage_by_class_against_the_app_limit(
    page, live_server, demo_data, login, screenshot
):  # noqa: F811
    """Issue 15: every organisation's calls a minute by class against the app-wide limit and the background cap."""
    organisation = Organisation.objects.get(name="Acme Care")
    _a_realistic_day(organisation)
    rows = list(XeroApiUsage.objects.filter(organisation=organisation))
    for row in rows:  # part of each minute was background work: echoes fetched, reconciliation, checks
        row.webhook_calls = row.calls // 4
        row.reconcile_calls = 1 if row.calls > 2 else 0
        row.health_calls = 1 if row.minute.minute == 0 else 0
    XeroApiUsage.objects.bulk_update(rows, ["webhook_calls", "reconcile_calls", "health_calls"])
    login(page, "support@coordinoter.test", "demo")
    page.goto(f"{live_server.url}/support/")
    page.locator("#xero-usage-link a").click()
    expect(page.get_by_role("heading", name="Xero usage of the whole app")).to_be_visible()
    card = page.locator("section.usage-card")
    expect(
        card.get_by_role(
            "img",
            name="Calls to Xero per minute over the last 24 hours, all classes and background, against the "
            "app-wide limit and the background cap",
        )
    ).to_be_visible()
    expect(card.locator("#app-usage-figures")).to_contain_text("Customers' calls")
    expect(card.locator("#app-usage-webhook")).not_to_have_text("0")
    page.set_viewport_size({"width": 1280, "height": 1000})
    page.evaluate("y => window.scrollTo(0, y)", card.bounding_box()["y"] + page.evaluate("window.scrollY") - 80)
    path = screenshot(page, "support-app-usage")
    card.screenshot(path=str(path))  # just the card, below the sticky top bar
