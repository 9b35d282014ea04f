"""The batch page while Xero refuses our access in a way that leaves the connection connected (a 403 for a permission
the connected Xero user lacks, the tenant's 403 while Xero's connections still list it): the notice says so, names
the next try and what happens after the last, and the invoices wait as sending. Screenshots at desktop and phone."""

import datetime as dt

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from integrations.outbound.models import OutboundAttempt, OutboundOperation
from tests.browser.helpers import acme_batch_on_a_chunk, shoot

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


def test_the_batch_page_says_xero_refused_our_access_while_a_chunk_backs_off(
    page, live_server, demo_data, login, screenshot
):
    now = timezone.now()
    batch, chunk = acme_batch_on_a_chunk(
        invoices=(("synced", "AUTHORISED"), ("in_flight", ""), ("in_flight", "")),
        on_chunk="in_flight",
        state=OutboundOperation.State.PENDING,
        idempotency_key="browser-refused-chunk",
        next_attempt_at=now + dt.timedelta(seconds=240),
    )
    OutboundAttempt.objects.create(
        operation=chunk,
        action=OutboundAttempt.Action.SEND,
        outcome=OutboundAttempt.Outcome.RETRY,
        http_status=403,
        started_at=now - dt.timedelta(seconds=2),
        detail="PUT /Invoices: Xero answered 403 to PUT /Invoices: You do not have permission to create invoices",
    )
    login(page, "accountant@acme.test")  # seeded by seed_demo: {role}@{slug}.test
    page.goto(f"{live_server.url}/batches/{batch.pk}/")
    notice = page.locator("[data-push-notice]")
    expect(notice).to_have_attribute("data-push-notice", "xero_refused")
    expect(notice).to_contain_text("Xero refused our access.")
    expect(notice).to_contain_text("(next try in 4 min)")
    expect(notice).to_contain_text("then show Xero's message on each of the invoices")
    expect(notice.get_by_role("link", name="Manage Integrations")).to_be_visible()
    shoot(screenshot, page, "issue11-push-notice-xero-refused-desktop")
    page.set_viewport_size(PHONE)
    expect(notice).to_be_visible()
    shoot(screenshot, page, "issue11-push-notice-xero-refused-phone")
