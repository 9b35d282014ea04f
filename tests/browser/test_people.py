"""Issue 14 in a real browser: an invitation accepted, the last admin kept, support opening a tenant's invoice
read-only (and the tenant's audit trail showing it), the first-run checklist and the health card. Takes the
screenshots the README's tour shows, at desktop (1280) and phone (390) widths (UPDATE_SCREENSHOTS=1 writes them to
docs/screenshots/)."""

import datetime as dt
import re
import uuid

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from integrations.models import XeroApiUsage
from integrations.usage.record import minute_of
from invoices.models import Invoice, InvoiceBatch, XeroMapping
from organisations.models import Membership, Organisation
from tests.browser.helpers import menu, shoot
from tests.factories import make_batch, make_connection

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}


def _both_widths(page, screenshot, name: str) -> None:
    shoot(screenshot, page, name)
    page.set_viewport_size(PHONE)
    shoot(screenshot, page, f"{name}-phone")
    page.set_viewport_size({"width": 1280, "height": 820})


def test_invitation_is_accepted_when_the_invitee_signs_up_from_the_emailed_link(
    page, another_page, live_server, demo_data, login, screenshot, mailoutbox
):
    login(page, "admin@acme.test")
    menu(page, "Settings")
    page.get_by_role("link", name="Invite people and manage roles →").click()
    expect(page.get_by_role("heading", name="People", exact=True)).to_be_visible()
    invite = page.locator("#invite")
    invite.get_by_label("Email").fill("zoe.unal@example.test")
    invite.get_by_label("Role").select_option("accountant")
    invite.get_by_role("button", name="Send invitation").click()
    expect(page.get_by_role("status")).to_contain_text("Invitation sent to zoe.unal@example.test")
    expect(page.locator("#invitations")).to_contain_text("zoe.unal@example.test")
    _both_widths(page, screenshot, "issue14-people")

    [mail] = [m for m in mailoutbox if m.to == ["zoe.unal@example.test"]]
    link = re.search(r"http://\S+/invitations/\S+/", mail.body).group(0)
    invitee = another_page()
    invitee.goto(link.replace("http://127.0.0.1:8000", live_server.url))
    expect(invitee.get_by_role("heading", name="Join Acme Care")).to_be_visible()
    invitee.get_by_label("First name").fill("Zoë")
    invitee.get_by_label("Last name").fill("Ünal")
    invitee.get_by_label("Choose a password").fill("grüne Äpfel am Straßenrand")
    invitee.get_by_label("Type it again").fill("grüne Äpfel am Straßenrand")
    invitee.get_by_role("button", name="Create account and join").click()
    expect(invitee.get_by_role("status")).to_contain_text("Welcome to Acme Care. You joined as Accountant.")
    expect(invitee.get_by_role("heading", name="Acme Care")).to_be_visible()
    assert Membership.objects.get(user__email="zoe.unal@example.test").role == "accountant"

    page.reload()
    expect(page.locator("#members")).to_contain_text("Zoë Ünal")
    expect(page.locator("#invitations")).to_contain_text("No invitations waiting")
    invitee.goto(link.replace("http://127.0.0.1:8000", live_server.url))
    expect(invitee.get_by_role("heading", name="This invitation can't be used")).to_be_visible()


def test_last_admin_cannot_be_removed_when_they_try_to_remove_themselves(page, live_server, demo_data, login):
    login(page, "admin@bolt.test")
    page.goto(f"{live_server.url}/settings/people/")
    me = page.locator(".person", has_text="admin@bolt.test")
    expect(me).to_contain_text("The only admin")
    expect(me.get_by_role("combobox")).to_have_count(0)
    page.once("dialog", lambda dialog: dialog.accept())
    me.get_by_role("button", name="Remove admin@bolt.test").click()
    expect(page.locator(".flash-error")).to_contain_text("admin@bolt.test is the only admin of Bolt Services")
    assert Membership.objects.filter(user__email="admin@bolt.test", role="admin").exists()


def test_support_opens_an_invoice_read_only_and_the_tenants_audit_trail_shows_it(
    page, another_page, live_server, demo_data, login, screenshot
):
    login(page, "support@coordinoter.test")
    page.get_by_role("link", name="Acme Care").first.click()
    page.get_by_role("link", name="Invoice batches and invoices (read-only) →").click()
    page.get_by_role("link", name="October services").click()
    page.get_by_role("link", name="ACME-0004").click()
    expect(page.get_by_role("heading", name=re.compile("Invoice ACME-0004"))).to_be_visible()
    expect(page.get_by_role("note")).to_contain_text("Read-only.")
    expect(page.locator("main form")).to_have_count(0)
    expect(page.locator("#help")).not_to_contain_text("Contact support")
    _both_widths(page, screenshot, "issue14-support-invoice")

    admin = another_page()
    login(admin, "admin@acme.test")
    admin.goto(f"{live_server.url}/settings/audit/")
    row = admin.get_by_role("row", name=re.compile("Support looked at invoice ACME-0004"))
    expect(row).to_contain_text("support@coordinoter.test (Coordinoter support)")
    expect(
        admin.get_by_role("row", name=re.compile("Support looked at the invoice batch “October services”"))
    ).to_be_visible()
    shoot(screenshot, admin, "issue14-audit-trail")


def test_dashboard_guides_with_a_checklist_then_shows_the_health_card_when_setup_is_done(
    page, live_server, demo_data, login, screenshot
):
    login(page, "admin@acme.test")
    checklist = page.locator("#setup-checklist")
    expect(checklist).to_contain_text("0 of 3 done")
    expect(checklist.get_by_role("link", name="Connect to Xero")).to_be_visible()
    page.get_by_label("Help").first.click()
    expect(page.locator("#help-topic")).to_have_text("Connecting Coordinoter to Xero")
    page.get_by_label("Help").first.click()
    _both_widths(page, screenshot, "issue14-checklist")

    acme = Organisation.objects.get(name="Acme Care")
    make_connection(
        organisation=acme,
        tenant_id=str(uuid.uuid4()),
        tenant_name="Koala Coffee Roasters (AU)",
        connection_id=str(uuid.uuid4()),
    )
    page.goto(f"{live_server.url}/integrations/")
    expect(page.get_by_role("alert").filter(has_text="Next step")).to_contain_text("Choose the Xero mapping")
    XeroMapping.objects.create(
        organisation=acme, revenue_account_code="200", tax_type="OUTPUT", tax_name="GST on Income"
    )
    batch = make_batch(
        organisation=acme, name="November services", invoices=4, eligibility=InvoiceBatch.Eligibility.ELIGIBLE
    )
    first, second, *rest = batch.invoices.order_by("pk")
    Invoice.objects.filter(pk=first.pk).update(sync_state="failed", sync_errors=["Contact is archived"])
    Invoice.objects.filter(pk=second.pk).update(sync_state="needs_attention")
    Invoice.objects.filter(pk__in=[i.pk for i in rest]).update(sync_state="synced", xero_status="AUTHORISED")
    now = timezone.now()
    XeroApiUsage.objects.bulk_create(
        XeroApiUsage(
            organisation=acme,
            minute=minute_of(now - dt.timedelta(minutes=m)),
            calls=calls,
            day_remaining=5000 - 37 * (50 - m),
            updated_at=now,
        )
        for m, calls in zip(range(50, 0, -5), [30, 42, 8, 5, 60, 3, 2, 9, 1, 4], strict=True)
    )
    acme.xero_connection.__class__.objects.filter(organisation=acme).update(
        last_synced_at=now - dt.timedelta(minutes=3), last_verified_at=now - dt.timedelta(hours=2)
    )
    page.goto(f"{live_server.url}/portal/")
    health = page.locator("#health-card")
    expect(health).to_contain_text("Connected")
    expect(health).to_contain_text("Koala Coffee Roasters (AU)")
    expect(health).to_contain_text("1 invoice")
    expect(health).to_contain_text("164")
    expect(page.locator("#setup-checklist")).to_have_count(0)
    _both_widths(page, screenshot, "issue14-health-card")
