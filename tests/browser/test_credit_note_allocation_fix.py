"""Issue 12 in the browser: an allocation Xero refused is no dead end. The batch page offers Try again and Remove…;
Remove asks first, then drops the request: the credit stays on the credit note and its history says who removed it.
Screenshots of the batch page and the confirmation at desktop and phone widths."""

import re
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from invoices.models import CreditNoteAllocation
from organisations.models import Organisation
from tests.browser.helpers import shoot
from tests.factories import make_batch_in_states, make_credit_note

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 820}
REFUSAL = "The amount being allocated exceeds the amount due on the invoice."


def refused_allocation(organisation: Organisation) -> CreditNoteAllocation:
    batch = make_batch_in_states(organisation=organisation, name="Refused credit", invoices=(("synced", "AUTHORISED"),))
    invoice = batch.invoices.get()
    note = make_credit_note(
        batch=batch, sync_state="synced", xero_status="AUTHORISED", remaining_credit=Decimal("11.00")
    )
    return CreditNoteAllocation.objects.create(
        organisation=organisation,
        credit_note=note,
        invoice=invoice,
        state=CreditNoteAllocation.State.REFUSED,
        amount=Decimal("11.00"),
        last_error=REFUSAL,
    )


def test_a_refused_allocation_is_removed_after_a_confirmation_and_the_credit_stays(
    page, live_server, demo_data, login, screenshot
):
    acme = Organisation.objects.get(name="Acme Care")
    allocation = refused_allocation(acme)
    note = allocation.credit_note
    login(page, "admin@acme.test")

    page.goto(f"{live_server.url}/batches/{note.batch_id}/")
    row = page.locator("tr.allocation-row")
    expect(row).to_contain_text(allocation.invoice.number)
    expect(row).to_contain_text(REFUSAL)
    expect(page.locator(".allocation-hint")).to_contain_text("Xero did not make 1 allocation")
    expect(row.get_by_role("button", name="Try again")).to_be_visible()
    expect(row.get_by_role("link", name="Remove…")).to_be_visible()
    shoot(screenshot, page, "issue12-allocation-refused-desktop")
    page.set_viewport_size(PHONE)
    expect(row.get_by_role("button", name="Try again")).to_be_visible()
    shoot(screenshot, page, "issue12-allocation-refused-phone")
    page.set_viewport_size(DESKTOP)

    row.get_by_role("link", name="Remove…").click()
    expect(page.locator("h1")).to_have_text(f"Remove the allocation of {note.number} to {allocation.invoice.number}?")
    shoot(screenshot, page, "issue12-allocation-remove-confirm")
    page.get_by_role("button", name="Remove the allocation").click()

    expect(page).to_have_url(re.compile(rf"{re.escape(live_server.url)}/batches/{note.batch_id}/(#credit-note-\d+)?$"))
    expect(page.locator("tr.allocation-row")).to_have_count(0)
    assert not CreditNoteAllocation.objects.filter(pk=allocation.pk).exists()
    note.refresh_from_db()
    assert note.remaining_credit == Decimal("11.00")  # the credit stays on the credit note
    event = note.events.get(kind="allocation_removed")
    assert event.actor.email == "admin@acme.test"
