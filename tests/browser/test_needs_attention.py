"""A chunk whose answer from Xero could not be confirmed stops in needs_attention (issue 11): the accountant sees why on
the batch page, with Xero's answer, and is offered a retry; support sees the write among the tenant's writes needing
attention, with Xero's answer and its correlation id, and retries it (asked first, audited) under the same
Idempotency-Key. Screenshots at desktop and phone."""

import datetime as dt
import json

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from integrations.models import IntegrationAuditEvent
from integrations.outbound.models import OutboundAttempt, OutboundOperation
from invoices.models import Invoice
from tests.browser.helpers import acme_batch_on_a_chunk, shoot

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
WHY = (
    "Xero's answer could not be confirmed: Xero answered the request without this invoice, and 4 lookups by its "
    "number did not find it. Nothing was sent again, so it cannot be in Xero twice. Check Xero, then retry it or "
    "cancel it."
)
ANSWER = '{"Invoices": [], "Status": "OK"}'


@pytest.fixture
def stuck_chunk():
    now = timezone.now()
    batch, chunk = acme_batch_on_a_chunk(
        invoices=(("synced", "AUTHORISED"), ("needs_attention", ""), ("needs_attention", "")),
        on_chunk="needs_attention",
        state=OutboundOperation.State.NEEDS_ATTENTION,
        idempotency_key="browser-stuck-chunk",
        lookups=4,
        last_error="Xero answered the request without 2 of its invoices, and 4 lookups by their numbers found none.",
        last_answer=json.loads(ANSWER),
        correlation_id="corr-needs-attention-1",
        completed_at=now,
    )
    Invoice.objects.filter(chunk=chunk).update(sync_errors=[WHY, f"Xero's answer: {ANSWER}"])
    for seconds, action, outcome, status in (
        (60, OutboundAttempt.Action.SEND, OutboundAttempt.Outcome.UNCONFIRMED, 200),
        (40, OutboundAttempt.Action.LOOKUP, OutboundAttempt.Outcome.UNCONFIRMED, 200),
    ):
        OutboundAttempt.objects.create(
            operation=chunk,
            action=action,
            outcome=outcome,
            http_status=status,
            started_at=now - dt.timedelta(seconds=seconds),
        )
    return batch, chunk


def test_accountant_sees_why_the_invoices_need_attention_and_support_retries_the_write(
    page, live_server, demo_data, login, screenshot, stuck_chunk
):
    batch, chunk = stuck_chunk
    login(page, "accountant@acme.test")
    page.goto(f"{live_server.url}/batches/{batch.pk}/")
    numbers = list(
        batch.invoices.filter(sync_state="needs_attention").order_by("number").values_list("number", flat=True)
    )
    for number in numbers:
        issue = page.get_by_role("group", name=f"Invoice {number} needs attention")
        expect(issue).to_contain_text("Why it needs attention:")
        expect(issue).to_contain_text("4 lookups by its number did not find it")
        expect(issue).to_contain_text(f"Xero's answer: {ANSWER}")
    expect(page.get_by_role("button", name="Retry 2 invoices that failed or need attention")).to_be_visible()
    shoot(screenshot, page, "issue11-needs-attention-batch-desktop")
    page.set_viewport_size(PHONE)
    expect(page.get_by_role("group", name=f"Invoice {numbers[0]} needs attention")).to_be_visible()
    shoot(screenshot, page, "issue11-needs-attention-batch-phone")

    page.set_viewport_size({"width": 1280, "height": 900})
    page.context.clear_cookies()
    login(page, "support@coordinoter.test")
    page.goto(live_server.url + reverse("integrations:support_organisation", args=[batch.organisation_id]))
    section = page.locator("#writes-needing-attention")
    expect(section.get_by_role("heading", name="Writes to Xero needing attention")).to_be_visible()
    expect(section).to_contain_text("lookups by their numbers found none")
    expect(section).to_contain_text('"Invoices": []')
    expect(section).to_contain_text("Xero-Correlation-Id corr-needs-attention-1")
    shoot(screenshot, page, "issue11-needs-attention-support")
    prompts = []
    page.once("dialog", lambda dialog: (prompts.append(dialog.message), dialog.accept()))
    section.get_by_role("button", name="Retry").click()
    expect(page.locator("#writes-needing-attention")).to_contain_text("No write to Xero is waiting for a person")
    assert prompts == ["Have you checked Xero? Send this write again?"]
    chunk.refresh_from_db()
    assert (chunk.state, chunk.idempotency_key) == ("pending", "browser-stuck-chunk")
    # Its invoices wait on it again, their old reason cleared: the batch page shows them as being sent.
    assert sorted(Invoice.objects.filter(chunk=chunk).values_list("sync_state", "sync_errors")) == [
        ("in_flight", []),
        ("in_flight", []),
    ]
    event = IntegrationAuditEvent.objects.get(organisation=batch.organisation, action="xero_write_retried")
    assert (event.actor.email, event.actor_kind) == ("support@coordinoter.test", "support")
    shoot(screenshot, page, "issue11-needs-attention-support-retried")
