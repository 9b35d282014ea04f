"""Our own 403 and 404 pages in a real browser, with DEBUG off as in production: styled, with the menu and a way
back, and nothing of Django's debug pages."""

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_404_and_403_pages_are_ours_when_debug_is_off(page, live_server, demo_data, login, screenshot, settings):
    settings.DEBUG = False
    login(page, "admin@acme.test")
    response = page.goto(f"{live_server.url}/batches/999999999/")
    assert response.status == 404
    expect(page.get_by_role("heading", name="We couldn't find that page")).to_be_visible()
    expect(page.get_by_role("navigation", name="Main menu")).to_be_visible()
    expect(page.get_by_role("link", name="Back to the dashboard")).to_be_visible()
    for leak in ("Traceback", "Page not found at", "URLconf", "Http404"):
        expect(page.locator("body")).not_to_contain_text(leak)
    screenshot(page, "error-404")

    page.context.clear_cookies()
    login(page, "accountant@acme.test")
    response = page.goto(f"{live_server.url}/settings/")
    assert response.status == 403
    expect(page.get_by_role("heading", name="You don't have access to this page")).to_be_visible()
    expect(page.get_by_role("link", name="Back to the dashboard")).to_be_visible()
    expect(page.locator("body")).not_to_contain_text("PermissionDenied")
    screenshot(page, "error-403")
