"""The mapping page when Xero refuses to read the organisation's accounts: the admin reads what the one classifier
decided (integrations/xero/errors.describe), in a sentence: a 403 that leaves the connection connected is Xero
refusing our access (not an outage, not a reconnect), and a 400 shows Xero's own words without promising that
trying again helps. Screenshots at desktop and phone."""

import pytest
import responses
from django.conf import settings
from playwright.sync_api import expect

from organisations.models import Organisation
from tests.browser.helpers import shoot
from tests.factories import make_connection

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


@pytest.mark.parametrize(
    ("status", "answer", "said", "not_said", "name"),
    [
        (
            403,
            {"Title": "Forbidden", "Detail": "You don't have permission to access this resource."},
            "Xero refused our access when we tried to read your accounts",
            "couldn't reach Xero",
            "issue11-mapping-xero-refused",
        ),
        (
            400,
            {"Title": "Bad request", "Detail": "Çalışma alanı arşivlendi (Ōtautahi Ltd)"},
            "Çalışma alanı arşivlendi (Ōtautahi Ltd)",
            "try again in a minute",
            "issue11-mapping-xero-words",
        ),
    ],
    ids=["403", "400"],
)
def test_the_mapping_page_says_what_xero_answered_when_it_cannot_read_the_accounts(
    page, live_server, demo_data, login, screenshot, status, answer, said, not_said, name
):
    make_connection(organisation=Organisation.objects.get(name="Acme Care"))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as xero:
        xero.get(f"{settings.XERO_API_URL}/Accounts", status=status, json=answer)
        xero.get(f"{settings.XERO_API_URL}/TaxRates", status=status, json=answer)
        xero.get(f"{settings.XERO_API_URL}/Currencies", status=status, json=answer)
        login(page, "admin@acme.test")
        page.goto(f"{live_server.url}/settings/xero-mapping/")
        expect(page.get_by_role("heading", name="Xero mapping")).to_be_visible()
        main = page.locator("main")
        expect(main).to_contain_text(said)
        expect(main).not_to_contain_text(not_said)
        shoot(screenshot, page, f"{name}-desktop")
        page.set_viewport_size(PHONE)
        expect(main).to_contain_text(said)
        shoot(screenshot, page, f"{name}-phone")
