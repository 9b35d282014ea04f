import pytest
from playwright.sync_api import expect

from organisations.models import SupportRequest

pytestmark = pytest.mark.browser


def test_admin_walks_the_portal_and_sends_a_support_request_when_signed_in(
    page, live_server, demo_data, login, screenshot
):
    login(page, "admin@acme.test")

    menu = page.get_by_role("navigation", name="Main menu")
    expect(menu.get_by_text("Business Portal")).to_be_visible()
    for item in ("Dashboard", "Invoice batches", "Manage Integrations", "Settings"):
        expect(menu.get_by_role("link", name=item)).to_be_visible()
    expect(menu.get_by_role("link", name="Support console")).to_have_count(0)
    expect(page.get_by_role("heading", name="Acme Care")).to_be_visible()
    screenshot(page, "portal-dashboard")

    menu.get_by_role("link", name="Invoice batches").click()
    expect(page.get_by_role("heading", name="Invoice batches")).to_be_visible()
    expect(page.get_by_role("link", name="October services")).to_be_visible()

    menu.get_by_role("link", name="Manage Integrations").click()
    expect(page.get_by_role("heading", name="Manage Integrations")).to_be_visible()
    expect(page.locator("#xero-card")).to_contain_text("Xero")

    page.get_by_label("Help").first.click()
    panel = page.get_by_role("dialog", name="Help")
    expect(panel).to_be_visible()
    expect(panel).to_contain_text("Connect to Xero")
    panel.get_by_label("Subject").fill("Question about Xero")
    panel.get_by_label("How can we help?").fill("Which Xero plan do we need?")
    screenshot(page, "portal-help-panel")
    panel.get_by_role("button", name="Send to support").click()
    expect(panel.get_by_role("status")).to_contain_text("reached our support team")
    assert SupportRequest.objects.filter(subject="Question about Xero", user__email="admin@acme.test").exists()

    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("status")).to_contain_text("You're signed out")
    page.goto(f"{live_server.url}/portal/")
    expect(page).to_have_url(f"{live_server.url}/accounts/login/?next=/portal/")


def test_support_staff_see_the_request_in_the_console_when_signed_in(page, live_server, demo_data, login, screenshot):
    from django.contrib.auth import get_user_model

    sender = get_user_model().objects.get(email="accountant@acme.test")
    SupportRequest.objects.create(
        user=sender,
        organisation=sender.memberships.get().organisation,
        subject="Cannot find Manage Integrations",
        message="Where is it?",
    )
    login(page, "support@coordinoter.test")
    expect(page.get_by_role("heading", name="Support console")).to_be_visible()
    expect(page.get_by_text("Cannot find Manage Integrations")).to_be_visible()
    expect(page.get_by_role("cell", name="Acme Care").first).to_be_visible()
    screenshot(page, "support-console")


def test_accountant_menu_has_no_settings_when_signed_in(page, live_server, demo_data, login):
    login(page, "accountant@bolt.test")
    menu = page.get_by_role("navigation", name="Main menu")
    expect(menu.get_by_role("link", name="Manage Integrations")).to_be_visible()
    expect(menu.get_by_role("link", name="Settings")).to_have_count(0)
    response = page.goto(f"{live_server.url}/settings/")
    assert response.status == 403
