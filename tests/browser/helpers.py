"""Steps several browser tests share: a full-page screenshot from the top, the main menu, connecting Xero through
the sandbox, pointing the sandbox and the live server at each other, a clean broker for live workers, a demo
batch whose invoices wait on one chunk."""

from celery import current_app
from playwright.sync_api import expect

from integrations.outbound.models import OutboundOperation
from invoices.models import Invoice, XeroMapping
from invoices.outbound.chunks import CHUNK_KIND
from organisations.models import Organisation
from tests.factories import make_batch_in_states, make_connection
from tests.support.xero_live import point_settings_at_sandbox

BATCH_NAME = "Décembre — Ōtautahi visits"

WEBHOOK_KEY = "browser-webhook-signing-key"  # the key the `webhook_sandbox` fixture signs with


def shoot(screenshot, page, name: str) -> None:
    """A full-page capture that starts at the top (the sticky top bar stays at the top of the image). On a page
    taller than the window the floating help button would sit in the middle of the image, so it is left out."""
    page.evaluate("window.scrollTo(0, 0)")
    # Set through the CSSOM: the Content-Security-Policy refuses an injected stylesheet.
    hidden = page.evaluate("""() => {
        const help = document.getElementById('help');
        if (!help || document.documentElement.scrollHeight <= window.innerHeight) return false;
        help.style.visibility = 'hidden';
        return true;
    }""")
    screenshot(page, name, full_page=True)
    if hidden:
        page.evaluate("document.getElementById('help').style.visibility = ''")


def menu(page, name: str) -> None:
    """Follow a link of the main menu (Business Portal and Coordinoter staff groups)."""
    page.get_by_role("navigation", name="Main menu").get_by_role("link", name=name).click()


def xero_connect_through_sandbox(
    page, *, button: str = "Connect to Xero", tenant: str = "Koala Coffee Roasters (AU)"
) -> None:
    """From Manage Integrations: Xero's login (when not logged in there yet), consent for one organisation, and
    our picker when Xero hands back several. Ends back on Manage Integrations, connected to `tenant`."""
    page.locator("#xero-card").get_by_role("button", name=button).click()
    consent = page.get_by_role("button", name="Allow access")
    login = page.get_by_role("heading", name="Log in to Xero")
    expect(login.or_(consent)).to_be_visible()
    if login.is_visible():
        page.get_by_label("Email address").fill("demo@sandbox.test")
        page.get_by_label("Password").fill("sandbox")
        page.get_by_role("button", name="Log in").click()
    page.get_by_label(tenant).check()
    consent.click()
    picker = page.get_by_role("heading", name="Choose the Xero organisation")
    expect(picker.or_(page.locator("#xero-card"))).to_be_visible()
    if picker.is_visible():
        page.get_by_label(tenant).check()
        page.get_by_role("button", name="Connect this organisation").click()
    expect(page.locator("#xero-card")).to_contain_text(f"Connected to {tenant}")


def sandbox_for_live_server(sandbox, settings, live_server, *, webhook_key: str) -> None:
    """A fresh sandbox and the live server pointed at each other, as `make run` does: OAuth redirect, API URLs,
    Xero's invoice deep link, and signed webhooks delivered to our receiver."""
    redirect_uri = live_server.url + "/integrations/xero/callback/"
    sandbox.reset(keep_settings=True)
    sandbox.settings(redirect_uris=[*sandbox.redirect_uris, redirect_uri])  # theirs stay for `sandbox.connect()`
    point_settings_at_sandbox(settings, sandbox, redirect_uri=redirect_uri)
    settings.XERO_WEBHOOK_KEY = webhook_key
    settings.XERO_INVOICE_DEEP_LINK = sandbox.url + "/app/{short_code}/invoicing/view/{invoice_id}"
    sandbox.set_webhook(url=live_server.url + "/integrations/xero/webhooks/", key=webhook_key)


def broker_queues_emptied(queues: str) -> None:
    """Empty these queues (comma-separated) on this run's own broker (TEST_REDIS_URL) before live workers start:
    tasks that earlier tests, run without workers, left there would otherwise reach them."""
    with current_app.connection_for_write() as connection:
        for queue in queues.split(","):
            connection.default_channel.queue_purge(queue)


def acme_batch_on_a_chunk(*, invoices: tuple[tuple[str, str], ...], on_chunk: str, **chunk_fields):
    """The demo's Acme Care, connected and mapped, with a batch of `invoices` (sync state, Xero status), and one
    push chunk (`chunk_fields`: its state, key, ...) that holds the batch's invoices in sync state `on_chunk`."""
    acme = Organisation.objects.get(name="Acme Care")
    connection = make_connection(organisation=acme)
    XeroMapping.objects.update_or_create(
        organisation=acme, defaults={"revenue_account_code": "200", "tax_type": "OUTPUT"}
    )
    batch = make_batch_in_states(organisation=acme, name=BATCH_NAME, invoices=invoices)
    chunk = OutboundOperation.objects.create(
        organisation=acme, tenant_id=connection.tenant_id, kind=CHUNK_KIND, **chunk_fields
    )
    Invoice.objects.filter(batch=batch, sync_state=on_chunk).update(chunk=chunk)
    return batch, chunk
