"""The demo admin connects Xero in a real browser against xero_sandbox, disconnects, reconnects; support staff see
the tenant and ask the admins to reconnect."""

import pytest
from celery import current_app
from playwright.sync_api import expect

from integrations.models import IntegrationAuditEvent, XeroConnection
from tests.support.xero_live import point_settings_at_sandbox

pytestmark = [pytest.mark.browser, pytest.mark.integration]

CALLBACK_PATH = "/integrations/xero/callback/"


@pytest.fixture
def xero(sandbox, live_server, settings, enqueued):
    redirect_uri = live_server.url + CALLBACK_PATH
    sandbox.reset(keep_settings=True)
    sandbox.settings(redirect_uris=[redirect_uri])
    point_settings_at_sandbox(settings, sandbox, redirect_uri=redirect_uri)
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    # Tasks (the admins' email) are recorded, not published to the real broker; the test runs them.
    yield enqueued
    settings.XERO_AUTHORIZE_URL = "https://login.xero.com/identity/connect/authorize"


def test_admin_connects_disconnects_and_reconnects_xero_and_support_asks_for_a_reconnect(
    page, live_server, demo_data, login, screenshot, xero, mailoutbox
):
    page.on("dialog", lambda dialog: dialog.accept())  # data-confirm prompts on support actions
    login(page, "admin@acme.test")
    page.get_by_role("navigation", name="Main menu").get_by_role("link", name="Manage Integrations").click()
    card = page.locator("#xero-card")
    expect(card).to_contain_text("Not connected")
    screenshot(page, "xero-manage-not-connected")

    # Connect: Xero's login and consent (both organisations), then our picker.
    card.get_by_role("button", name="Connect to Xero").click()
    expect(page.get_by_role("heading", name="Log in to Xero")).to_be_visible()
    page.get_by_label("Email address").fill("demo@sandbox.test")
    page.get_by_label("Password").fill("sandbox")
    page.get_by_role("button", name="Log in").click()
    page.get_by_label("Koala Coffee Roasters (AU)").check()
    page.get_by_label("Thames Bicycle Works (UK)").check()
    screenshot(page, "xero-sandbox-consent")
    page.get_by_role("button", name="Allow access").click()

    expect(page.get_by_role("heading", name="Choose the Xero organisation")).to_be_visible()
    page.get_by_label("Koala Coffee Roasters (AU)").check()
    screenshot(page, "xero-choose-organisation")
    page.get_by_role("button", name="Connect this organisation").click()
    expect(page).to_have_url(f"{live_server.url}/integrations/")
    expect(page.get_by_role("status")).to_contain_text("Connected to Koala Coffee Roasters (AU).")
    expect(card).to_contain_text("Connected to Koala Coffee Roasters (AU)")
    expect(card).to_contain_text("Xero short code")
    screenshot(page, "xero-manage-connected")
    connection = XeroConnection.objects.get(organisation__name="Acme Care")
    assert connection.status == "active" and connection.tenant_name == "Koala Coffee Roasters (AU)"
    assert [c["tenantName"] for c in _active_connections(page, connection)] == ["Koala Coffee Roasters (AU)"]

    # Disconnect, with a confirmation page.
    card.get_by_role("link", name="Disconnect").click()
    expect(page.get_by_role("heading", name="Disconnect Xero?")).to_be_visible()
    screenshot(page, "xero-disconnect-confirm")
    page.get_by_role("button", name="Disconnect from Xero").click()
    expect(page.get_by_role("status")).to_contain_text("Disconnected from Koala Coffee Roasters (AU).")
    expect(card).to_contain_text("Disconnected")
    expect(card.get_by_role("button", name="Connect to Xero")).to_be_visible()
    screenshot(page, "xero-manage-disconnected")

    # Reconnect: still logged in at Xero, so straight to consent.
    card.get_by_role("button", name="Connect to Xero").click()
    page.get_by_label("Koala Coffee Roasters (AU)").check()
    page.get_by_role("button", name="Allow access").click()
    expect(page.get_by_role("status")).to_contain_text("Reconnected to Koala Coffee Roasters (AU).")
    expect(card).to_contain_text("Connected to Koala Coffee Roasters (AU)")
    page.get_by_role("button", name="Log out").click()

    # Support staff see the tenant and ask the admins to reconnect.
    login(page, "support@coordinoter.test")
    expect(page.get_by_role("heading", name="Support console")).to_be_visible()
    row = page.get_by_role("row", name="Acme Care")
    expect(row).to_contain_text("Koala Coffee Roasters (AU)")
    expect(row).to_contain_text("Connected")
    screenshot(page, "xero-support-console")
    row.get_by_role("link", name="Acme Care").click()
    expect(page.locator("#support-tenant")).to_contain_text("Koala Coffee Roasters (AU)")
    page.get_by_placeholder("Reason shown to the admins").fill("Please reconnect so we can renew your access.")
    page.get_by_role("button", name="Ask admins to reconnect").click()
    expect(page.get_by_role("status")).to_contain_text("The admins were asked to reconnect")
    expect(page.get_by_role("table")).to_contain_text("Asked the admins to reconnect Xero")
    screenshot(page, "xero-support-organisation", full_page=True)
    event = IntegrationAuditEvent.objects.get(action="reconnect_requested")
    assert event.actor.email == "support@coordinoter.test" and event.actor_kind == "support"
    for item in [e for e in xero if e.name.startswith("integrations.")]:  # the queued email to Acme Care's admins
        current_app.tasks[item.name].run(*item.args, **item.kwargs)
    assert [m.to for m in mailoutbox] == [["admin@acme.test"]]
    page.get_by_role("button", name="Log out").click()

    login(page, "admin@acme.test")
    expect(page.get_by_role("alert").first).to_contain_text("Coordinoter support asks an admin to reconnect Xero")
    screenshot(page, "xero-reconnect-banner")


def _active_connections(page, connection) -> list[dict]:
    import requests
    from django.conf import settings

    return requests.get(
        settings.XERO_CONNECTIONS_URL, timeout=10, headers={"Authorization": f"Bearer {connection.access_token}"}
    ).json()
