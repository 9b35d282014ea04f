"""Sign up and sign in with Xero in a real browser against xero_sandbox (its own process): a new business signs up
and lands on its connected dashboard; an existing user links Xero and later signs in with it; an email that belongs
to an account cannot be taken over through Xero. And the sign-in page at desktop and phone widths."""

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from integrations.models import XeroConnection
from integrations.signin.models import XeroIdentity
from organisations.models import Membership, Organisation
from tests.browser.helpers import shoot
from tests.support.xero_live import point_settings_at_sandbox

pytestmark = [pytest.mark.browser, pytest.mark.integration]


@pytest.fixture
def xero(sandbox, live_server, settings):
    connect_uri = live_server.url + "/integrations/xero/callback/"
    signin_uri = live_server.url + "/accounts/xero/callback/"
    sandbox.reset(keep_settings=True)
    sandbox.settings(redirect_uris=[connect_uri, signin_uri])
    point_settings_at_sandbox(settings, sandbox, redirect_uri=connect_uri)
    settings.XERO_SIGNIN_REDIRECT_URI = signin_uri
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    return sandbox


def create_xero_account(page, *, email: str, organisation: str, country: str = "United Kingdom") -> None:
    """On the sandbox's login page: Xero's own sign-up, a new login and its first organisation."""
    expect(page.get_by_role("heading", name="Log in to Xero")).to_be_visible()
    page.get_by_role("link", name="Create an account").click()
    page.get_by_label("First name").fill("Siobhán")
    page.get_by_label("Last name").fill("Ó Briain")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill("a-sandbox-password")
    page.get_by_label("Organisation name").fill(organisation)
    page.get_by_label("Country").select_option(label=country)
    page.get_by_role("button", name="Create account").click()


def test_new_business_signs_up_with_xero_and_lands_on_its_connected_dashboard(page, live_server, xero, screenshot):
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_role("button", name="Sign up with Xero").click()
    create_xero_account(page, email="siobhan@fjord-foroyar.example", organisation="Fjord & Føroyar Ltd")
    consent = page.get_by_role("button", name="Allow access")
    expect(consent).to_be_visible()
    expect(page.get_by_text("Your email address")).to_be_visible()  # openid profile email in the same consent
    page.get_by_label("Fjord & Føroyar Ltd").check()
    screenshot(page, "xero-sign-up-consent")
    consent.click()

    expect(page.get_by_role("heading", name="Fjord & Føroyar Ltd")).to_be_visible()  # the dashboard
    expect(page.get_by_role("status")).to_contain_text(
        "Welcome to Coordinoter. Fjord & Føroyar Ltd is connected to Xero."
    )
    expect(page.locator(".user-chip")).to_contain_text("siobhan@fjord-foroyar.example · Admin")
    # The first run guides from here: Xero is connected (done), the mapping is the next step.
    checklist = page.locator("#setup-checklist")
    expect(checklist).to_be_visible()
    expect(checklist).to_contain_text("1 of 3 done")
    shoot(screenshot, page, "xero-sign-up-dashboard")
    page.get_by_role("navigation", name="Main menu").get_by_role("link", name="Manage Integrations").click()
    expect(page.locator("#xero-card")).to_contain_text("Connected to Fjord & Føroyar Ltd")

    user = get_user_model().objects.get(email="siobhan@fjord-foroyar.example")
    assert (user.first_name, user.last_name) == ("Siobhán", "Ó Briain")
    organisation = Organisation.objects.get(name="Fjord & Føroyar Ltd")
    assert Membership.objects.get(user=user, organisation=organisation).role == "admin"
    connection = XeroConnection.objects.get(organisation=organisation)
    assert connection.status == "active" and connection.base_currency == "GBP"
    assert XeroIdentity.objects.get(user=user).xero_user_id == connection.xero_user_id


def test_existing_user_links_xero_and_later_signs_in_with_it(page, live_server, demo_data, login, xero, screenshot):
    login(page, "accountant@acme.test")
    page.locator(".user-chip").click()
    expect(page.get_by_role("heading", name="Sign in with Xero")).to_be_visible()
    screenshot(page, "xero-sign-in-link")
    page.locator("#xero-sign-in-card").get_by_role("button", name="Sign in with Xero").click()
    page.get_by_label("Email address").fill("solo@sandbox.test")
    page.get_by_label("Password").fill("sandbox")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_text("Your Xero user identity")).to_be_visible()
    expect(page.get_by_text("Select organisations to connect")).to_have_count(0)  # identity only: no organisation
    page.get_by_role("button", name="Allow access").click()
    expect(page.get_by_role("status")).to_contain_text("Xero linked: you can now sign in with Xero.")
    expect(page.locator("#xero-sign-in-card")).to_contain_text("solo@sandbox.test")
    screenshot(page, "xero-sign-in-linked")
    page.get_by_role("button", name="Log out").click()

    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_role("button", name="Sign in with Xero").click()
    page.get_by_role("button", name="Allow access").click()  # still logged in at Xero: straight to its consent
    expect(page.get_by_role("status")).to_contain_text("Signed in with Xero.")
    expect(page.locator(".user-chip")).to_contain_text("accountant@acme.test · Accountant")
    expect(page.get_by_role("heading", name="Acme Care")).to_be_visible()
    accountant = get_user_model().objects.get(email="accountant@acme.test")
    assert XeroIdentity.objects.get(user=accountant).email_at_link == "solo@sandbox.test"


def test_email_of_another_account_cannot_be_taken_over_through_xero(page, live_server, demo_data, xero):
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_role("button", name="Sign up with Xero").click()
    # Someone makes a Xero login with the email of Acme Care's admin and tries to sign up with it.
    create_xero_account(page, email="admin@acme.test", organisation="Takeover Trading Ltd")
    page.get_by_label("Takeover Trading Ltd").check()
    page.get_by_role("button", name="Allow access").click()
    expect(page.get_by_role("status")).to_contain_text("An account with this email address already exists")
    expect(page.get_by_role("heading", name="Sign in to your Business Portal")).to_be_visible()  # not signed in

    # Sign in with Xero: that Xero login is linked to nobody, so it signs in nobody.
    page.get_by_role("button", name="Sign in with Xero").click()
    page.get_by_role("button", name="Allow access").click()
    expect(page.get_by_role("status")).to_contain_text("isn't linked to your Coordinoter account yet")
    expect(page.get_by_role("heading", name="Sign in to your Business Portal")).to_be_visible()

    admin = get_user_model().objects.get(email="admin@acme.test")
    assert not XeroIdentity.objects.exists()
    assert not Organisation.objects.filter(name__startswith="Takeover").exists()
    # The demo gives admin@acme.test Bolt Services too (to try the switcher): nothing was added to those.
    assert sorted(m.organisation.name for m in Membership.objects.filter(user=admin)) == ["Acme Care", "Bolt Services"]
    authorised = {c["tenantName"] for c in xero.state()["connections"] if c["active"]}
    assert "Takeover Trading Ltd" not in authorised  # the refused sign-up left nothing authorised at Xero


@pytest.mark.parametrize(("width", "name"), [(1280, "sign-in-desktop"), (390, "sign-in-phone")])
def test_sign_in_page_shows_password_and_xero_buttons_at_desktop_and_phone_widths(
    browser, live_server, screenshot, width, name
):
    context = browser.new_context(viewport={"width": width, "height": 844 if width < 600 else 820})
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/accounts/login/")
        for label in ("Sign in with Xero", "Sign up with Xero"):
            button = page.get_by_role("button", name=label)
            expect(button).to_be_visible()
            box = button.bounding_box()
            assert box["height"] >= 44 and box["x"] >= 0 and box["x"] + box["width"] <= width
        assert page.evaluate("document.documentElement.scrollWidth") <= width  # nothing wider than the screen
        screenshot(page, name, full_page=True)
    finally:
        context.close()
