"""A credit note Xero refused is no dead end (issue 12): the sandbox refuses it (its line names an account archived
in Xero, and a line's own account wins over the mapping), the accountant fixes it on its own page and resends it,
and real workers send it through the outbound engine until it is in (sandbox) Xero, once, with the fixed account.
Screenshots of the fix page at desktop (1280) and phone (390) widths; at 390 nothing is cut off.

Real pieces: xero_sandbox (subprocess), Django's live server, REAL Celery workers on Postgres and their own Redis
database (the push dispatcher and the outbound engine), Debian's Chromium.
"""

import pytest
from playwright.sync_api import expect

from integrations.models import XeroConnection
from integrations.outbound.models import OutboundOperation
from integrations.xero import accounting
from integrations.xero.client import XeroClient
from integrations.xero.types import NoRateLimit
from invoices.models import CreditNote, CreditNoteLine, Invoice, InvoiceBatch
from invoices.services.push import push_enqueue_for_organisation
from tests.browser.test_credit_notes import _until
from tests.browser.test_fix_and_send import at_phone_width, fix_line_account_and_resend
from tests.factories import make_customer, make_membership, make_user
from tests.support.xero_live import connect_organisation

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_refused_credit_note_is_fixed_on_its_page_and_resent_until_it_is_in_xero(
    xero, workers, page, login, live_server, screenshot
):
    from xero_sandbox.testing import AU_ID

    organisation = connect_organisation(xero, name="Harbour Care", tenant_id=AU_ID)
    accountant = make_user(email="accountant@harbour.test", password="demo")
    make_membership(user=accountant, organisation=organisation, role="accountant")
    # Made while the line's own account (280) was still open; it has since been archived in Xero, so Xero refuses
    # the credit note, and the mapping cannot help: the line's own account wins.
    batch = InvoiceBatch.objects.create(
        organisation=organisation, name="Returns, November", eligibility=InvoiceBatch.Eligibility.ELIGIBLE
    )
    customer = make_customer(organisation=organisation, name="Émile Café")
    fields = {"number": "CN-0100", "currency": "AUD", "issue_date": "2026-11-20", "total": "198.00"}
    note = CreditNote.objects.create(organisation=organisation, batch=batch, customer=customer, **fields)
    CreditNoteLine.objects.create(
        credit_note=note, position=1, description="Grinder returned, unopened", unit_amount="180", account_code="280"
    )
    CreditNote.objects.filter(pk=note.pk).update(sync_state=Invoice.SyncState.PENDING)  # as a new batch's would be
    push_enqueue_for_organisation(organisation_id=organisation.pk)
    _until(lambda: CreditNote.objects.get(pk=note.pk).sync_state == "failed", timeout=60)

    login(page, accountant.email)
    page.goto(f"{live_server.url}/batches/{batch.pk}/")
    problem = page.get_by_role("group", name="Xero rejected credit note CN-0100")
    expect(problem).to_contain_text("280")
    expect(problem.get_by_role("button", name="Resend CN-0100")).to_be_visible()
    at_phone_width(page, screenshot, "issue12-credit-note-refused")  # the actions fit a phone too
    problem.get_by_role("link", name="Fix CN-0100").click()

    expect(page.get_by_label("Due date")).to_have_count(0)  # a credit note has none
    shots = ("issue12-credit-note-fix-desktop", "issue12-credit-note-fix")
    fix_line_account_and_resend(page, screenshot, "credit note CN-0100", reference="RMA 7731", shots=shots)
    expect(page.get_by_text("Saved. Sending credit note CN-0100 to Xero again.")).to_be_visible()
    _until(lambda: CreditNote.objects.get(pk=note.pk).sync_state == "synced", timeout=60, page=page)
    row = page.locator(f"#credit-note-{note.pk}")
    expect(row.get_by_role("group", name="Xero rejected credit note CN-0100")).to_have_count(0)
    expect(row).to_contain_text("Credit available")
    row.locator("summary").click()
    expect(row.locator(".history")).to_contain_text("Edited by accountant@harbour.test")
    expect(row.locator(".history")).to_contain_text("Resend requested by accountant@harbour.test")
    expect(row.locator(".history")).to_contain_text("In Xero as CN-0100")

    # In Xero once, under our number, with the fixed account and reference: the refused send made nothing.
    note.refresh_from_db()
    client = XeroClient(XeroConnection.objects.get(organisation=organisation).pk, rate_limiter=NoRateLimit())
    found = accounting.items(
        accounting.credit_notes_get(client, where=accounting.credit_note_number_where("CN-0100")), "CreditNotes"
    )
    assert [c["CreditNoteID"] for c in found] == [note.xero_credit_note_id]
    in_xero = accounting.first(
        accounting.credit_note_get(client, credit_note_id=note.xero_credit_note_id), "CreditNotes"
    )
    assert in_xero["Reference"] == "RMA 7731"
    assert [line["AccountCode"] for line in in_xero["LineItems"]] == ["200"]
    operations = OutboundOperation.objects.filter(organisation=organisation, kind="credit_note_create")
    assert sorted(operations.values_list("state", flat=True)) == ["done", "refused"]
