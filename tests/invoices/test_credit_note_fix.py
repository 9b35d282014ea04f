"""Credit notes are no dead end either (issue 12): one Xero refused can be fixed (customer, date, reference, lines
with their own account and tax), resent (a new operation built from the edited lines) or cancelled (its number
freed); one whose fate needs attention is resent under its own Idempotency-Key, looked up in Xero first, and reads
"Sending" whoever retried it. The pages are the invoice's (one implementation), tenant-scoped, CSRF-protected and
for members only; the history says who did what. Xero is mocked with `responses`."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import responses
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from integrations.models import IntegrationAuditEvent
from integrations.outbound import engine
from integrations.outbound.models import OutboundAttempt, OutboundOperation
from integrations.outbound.services import outbound_operation_retry
from invoices.models import CancelledInvoice, CreditNote, Invoice, XeroMapping
from invoices.services.batches import batch_problems
from invoices.services.fix import DocumentFix, FixRefused, document_cancel, document_fix, document_resend
from invoices.services.fix.credit_notes import CREDIT_NOTE
from invoices.states import CreditNoteStatus
from tests.factories import chart_read_from_xero, make_connection, make_line_input, make_user
from tests.invoices.test_credit_notes import (
    API,
    OTHER_CONTACT,
    credit_input,
    dispatch,
    pending_note,
    synced_invoice,
    xero_credit_note,
)
from tests.invoices.test_fix_resend import fix_post, login

pytestmark = pytest.mark.django_db
S = Invoice.SyncState
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def org(org_a, settings):
    settings.XERO_API_URL = API
    make_connection(organisation=org_a, base_currency="NZD")
    XeroMapping.objects.create(organisation=org_a, revenue_account_code="200", tax_type="OUTPUT")
    chart_read_from_xero(org_a)
    return org_a


def run(operation: OutboundOperation):
    OutboundOperation.objects.filter(pk=operation.pk).update(next_attempt_at=timezone.now())
    return engine.operation_run(operation_id=operation.pk)


def operations(note: CreditNote) -> list[OutboundOperation]:
    return list(OutboundOperation.objects.filter(kind="credit_note_create", subject_id=note.pk).order_by("pk"))


def refused_note(org, *, allocate=False) -> CreditNote:
    """A credit note Xero refused because its line names an archived account (through the engine, as it happens)."""
    note = pending_note(org, allocate_to=synced_invoice(org) if allocate else None)
    note.lines.update(account_code="210")
    refused = xero_credit_note(
        CreditNoteID="00000000-0000-0000-0000-000000000000",
        HasErrors=True,
        StatusAttributeString="ERROR",
        ValidationErrors=[{"Message": "Account code '210' has been archived, or deleted."}],
    )
    with responses.RequestsMock() as xero:
        xero.put(f"{API}/CreditNotes", json={"CreditNotes": [refused]})
        dispatch(org)
        assert run(operations(note)[0]).state == "refused"
    note.refresh_from_db()
    assert note.sync_state == S.FAILED
    return note


def in_doubt_note(org, settings) -> CreditNote:
    """A credit note whose answer could not be confirmed: Xero holds one of its number for another contact."""
    settings.OUTBOUND_MAX_LOOKUPS = 1
    note = pending_note(org)
    with responses.RequestsMock() as xero:
        xero.put(f"{API}/CreditNotes", json={"CreditNotes": [xero_credit_note(CreditNoteNumber="CN-0999")]})
        dispatch(org)
        operation = operations(note)[0]
        assert run(operation).state == "pending"
        xero.get(f"{API}/CreditNotes", json={"CreditNotes": [xero_credit_note(Contact={"ContactID": OTHER_CONTACT})]})
        assert run(operation).state == "needs_attention"
    note.refresh_from_db()
    assert note.sync_state == S.NEEDS_ATTENTION
    return note


# ---------------------------------------------------------------- fix and resend a refused credit note


def test_refused_credit_note_is_fixed_and_resent_as_a_new_operation_from_its_edited_lines(
    client, accountant_a, org, enqueued, django_capture_on_commit_callbacks
):
    note = refused_note(org, allocate=True)
    assert note.allocations.get().state == "refused"
    page = login(client, accountant_a).get(reverse("invoices:credit_note_fix", args=[note.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Fix credit note CN-0001" in html and "Account code &#x27;210&#x27; has been archived" in html
    assert 'name="due_date"' not in html  # a credit note has no due date

    lines = [{"description": "Returned roses", "unit_amount": "100.1234", "account_code": "200"}]
    data = fix_post(note, action="resend", reference="Returned İzmir roses", lines=lines)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("invoices:credit_note_fix", args=[note.pk]), data)
    assert response.status_code == 302 and response["Location"].endswith(f"#credit-note-{note.pk}")
    note.refresh_from_db()
    assert (note.sync_state, note.sync_errors, note.reference) == (S.PENDING, [], "Returned İzmir roses")
    assert list(note.lines.values_list("account_code", "unit_amount")) == [("200", note.lines.get().unit_amount)]
    assert str(note.lines.get().unit_amount) == "100.1234"
    assert list(note.events.order_by("pk").values_list("kind", "actor")) == [
        ("refused", None),  # Xero's refusal, in the credit note's own history
        ("edited", accountant_a.pk),
        ("retried", accountant_a.pk),
    ]
    assert "Edited by accountant@a.test" in note.events.get(kind="edited").message
    assert note.allocations.get().state == "waiting"  # refused only because the note had not reached Xero
    assert [item.args for item in enqueued.named("invoices.tasks.push_organisation")] == [(org.pk,)]

    dispatch(org)
    first, second = operations(note)
    assert first.state == "refused" and second.state == "pending"
    assert first.idempotency_key != second.idempotency_key  # refused: nothing of it is in Xero
    line = second.payload["LineItems"][0]
    assert (line["AccountCode"], str(line["UnitAmount"]), second.payload["Reference"]) == (
        "200",
        "100.1234",
        "Returned İzmir roses",
    )
    note.refresh_from_db()
    assert note.display_status.label == "Sending"


def test_fixed_credit_note_keeps_its_own_number_without_a_clash_when_checked(org):
    note = pending_note(org)
    wanted = credit_input(number=note.number)
    assert any(p.field == "number" for p in batch_problems(organisation=org, name="B", invoices=[wanted]))
    assert batch_problems(organisation=org, name="B", invoices=[wanted], existing_credit_notes=[note.pk]) == []


# ---------------------------------------------------------------- needs attention: the same key, looked up first


def test_needs_attention_credit_note_is_retried_as_the_same_operation_and_looked_up_before_it_is_sent_again(
    org, accountant_a, settings, enqueued
):
    """A person's retry keeps the operation and its key; the lookup comes first. When it proves the credit note
    absent while Xero still remembers the key, Xero would replay its earlier answer (the one that could not be
    confirmed) to a send under that key (docs/xero-facts 2.4), so the send goes under a new one."""
    note = in_doubt_note(org, settings)
    (operation,) = operations(note)
    document_resend(kind=CREDIT_NOTE, organisation=org, document_id=note.pk, user=accountant_a)
    note.refresh_from_db()
    assert note.sync_state == S.IN_FLIGHT and note.display_status.label == "Sending"
    assert note.events.filter(kind="retried", actor=accountant_a).exists()
    audit = IntegrationAuditEvent.objects.get(organisation=org, action="xero_write_retried")
    assert (audit.actor, audit.actor_kind, audit.detail["operation_id"]) == (accountant_a, "user", operation.pk)
    assert [op.pk for op in operations(note)] == [operation.pk]  # no new operation, no new key

    before = OutboundAttempt.objects.filter(operation=operation).count()
    with responses.RequestsMock() as xero:
        xero.get(f"{API}/CreditNotes", json={"CreditNotes": []})  # proved absent: only now may it go again
        assert run(operation).state == "pending"
        xero.put(f"{API}/CreditNotes", json={"CreditNotes": [xero_credit_note()]})
        assert run(operation).state == "done"
        renewed = xero.calls[1].request.headers["Idempotency-Key"]
        assert renewed != operation.idempotency_key and renewed.startswith(operation.idempotency_key)
    after = list(
        OutboundAttempt.objects.filter(operation=operation).order_by("pk").values_list("action", "outcome")[before:]
    )
    assert after == [("lookup", "absent"), ("send", "confirmed")]
    note.refresh_from_db()
    assert note.sync_state == S.SYNCED


def test_a_key_sent_again_after_xero_forgot_it_starts_a_new_window(org, settings, enqueued):
    """Past the key's six minutes Xero has forgotten it: a send under it then is a first send, which Xero remembers
    from then on. So when that send's 500 is looked up and proved absent, the next send goes under a new key (Xero
    would replay the 500 to the old one), not under the old key as if its window had long closed."""
    import requests

    note = pending_note(org)
    with responses.RequestsMock() as xero:
        xero.put(f"{API}/CreditNotes", body=requests.ReadTimeout("lost"))
        dispatch(org)
        (operation,) = operations(note)
        assert run(operation).state == "pending"
    OutboundOperation.objects.filter(pk=operation.pk).update(key_first_sent_at=timezone.now() - dt.timedelta(hours=1))
    with responses.RequestsMock() as xero:
        xero.get(f"{API}/CreditNotes", json={"CreditNotes": []})
        put = xero.put(f"{API}/CreditNotes", status=500, json={})
        assert run(operation).state == "pending"  # looked up past the window: absent
        assert run(operation).state == "pending"  # sent again under its key (Xero forgot it): a 500, kept
        assert run(operation).state == "pending"  # looked up: absent
        xero.replace(responses.PUT, f"{API}/CreditNotes", json={"CreditNotes": [xero_credit_note()]})
        assert run(operation).state == "done"
        keys = [c.request.headers["Idempotency-Key"] for c in xero.calls if c.request.method == "PUT"]
    assert put.call_count >= 1 and len(keys) == 2
    assert keys[0] == operation.idempotency_key and keys[1] != keys[0]


def test_a_cancelled_credit_note_is_never_sent_by_the_operation_it_leaves_behind(org, accountant_a, settings, enqueued):
    """Cancelling withdraws its write: support's retry (or a sweep) must not create in Xero what the customer
    cancelled."""
    note = in_doubt_note(org, settings)
    (operation,) = operations(note)
    document_cancel(kind=CREDIT_NOTE, organisation=org, document_id=note.pk, user=accountant_a)
    operation.refresh_from_db()
    assert operation.state == OutboundOperation.State.REFUSED
    assert "cancelled" in operation.last_error.lower()
    support = make_user(email="support@coordinoter.test", support=True)
    assert not outbound_operation_retry(organisation=org, operation_id=operation.pk, actor=support, as_support=True)
    with responses.RequestsMock():  # any call to Xero would fail this test
        assert run(operation).state == "noop"


def test_support_retry_shows_the_credit_note_sending_when_it_needed_attention(org, settings, enqueued):
    note = in_doubt_note(org, settings)
    support = make_user(email="support@coordinoter.test", support=True)
    (operation,) = operations(note)
    assert outbound_operation_retry(organisation=org, operation_id=operation.pk, actor=support, as_support=True)
    note.refresh_from_db()
    assert note.sync_state == S.IN_FLIGHT and note.display_status == CreditNoteStatus.SENDING
    assert note.events.get(kind="retried").actor == support


def test_needs_attention_credit_note_cannot_be_edited_but_can_be_cancelled(client, accountant_a, org, settings):
    note = in_doubt_note(org, settings)
    fix = DocumentFix(customer_name="Harbour View", issue_date=dt.date(2026, 11, 20), reference="", lines=[])
    with pytest.raises(FixRefused, match="could not confirm whether Xero has it"):
        document_fix(kind=CREDIT_NOTE, organisation=org, document_id=note.pk, user=accountant_a, fix=fix)
    page = login(client, accountant_a).get(reverse("invoices:batch_detail", args=[note.batch_id])).content.decode()
    assert reverse("invoices:credit_note_fix", args=[note.pk]) not in page
    assert reverse("invoices:credit_note_resend", args=[note.pk]) in page
    assert reverse("invoices:credit_note_cancel", args=[note.pk]) in page
    cancel = client.get(reverse("invoices:credit_note_cancel", args=[note.pk])).content.decode()
    assert "Check Xero first." in cancel


def test_credit_note_in_xero_or_being_sent_is_not_fixed_cancelled_or_resent(org, accountant_a):
    fix = DocumentFix(
        customer_name="Harbour View", issue_date=dt.date(2026, 11, 20), reference="", lines=[make_line_input()]
    )
    note = pending_note(org)
    for state in (S.SYNCED, S.IN_FLIGHT):
        CreditNote.objects.filter(pk=note.pk).update(sync_state=state)
        for act in (
            lambda: document_fix(kind=CREDIT_NOTE, organisation=org, document_id=note.pk, user=accountant_a, fix=fix),
            lambda: document_cancel(kind=CREDIT_NOTE, organisation=org, document_id=note.pk, user=accountant_a),
            lambda: document_resend(kind=CREDIT_NOTE, organisation=org, document_id=note.pk, user=accountant_a),
        ):
            with pytest.raises(FixRefused):
                act()


# ---------------------------------------------------------------- cancel


def test_cancel_asks_first_then_removes_the_credit_note_and_frees_its_number(client, accountant_a, org):
    note = refused_note(org)
    number, batch_id = note.number, note.batch_id
    confirm = login(client, accountant_a).get(reverse("invoices:credit_note_cancel", args=[note.pk]))
    assert confirm.status_code == 200 and "Cancel credit note CN-0001?" in confirm.content.decode()
    assert CreditNote.objects.filter(pk=note.pk).exists()  # a GET changes nothing

    assert client.post(reverse("invoices:credit_note_cancel", args=[note.pk])).status_code == 302
    assert not CreditNote.objects.filter(pk=note.pk).exists()
    cancelled = CancelledInvoice.objects.get(batch_id=batch_id)
    assert (cancelled.document, cancelled.number, cancelled.cancelled_by, cancelled.sync_state) == (
        "credit_note",
        number,
        accountant_a,
        S.FAILED,
    )
    assert any("Xero rejected it" in entry["message"] for entry in cancelled.history)
    assert batch_problems(organisation=org, name="B", invoices=[credit_input(number=number)]) == []
    page = client.get(reverse("invoices:batch_detail", args=[batch_id])).content.decode()
    assert "Cancelled" in page and number in page and accountant_a.email in page


# ---------------------------------------------------------------- who may: tenants, roles, CSRF


def test_credit_note_pages_404_when_the_credit_note_is_another_organisations(client, admin_b, org_b, org):
    note = refused_note(org)
    login(client, admin_b)
    for name in ("credit_note_fix", "credit_note_cancel"):
        assert client.get(reverse(f"invoices:{name}", args=[note.pk])).status_code == 404
        assert client.post(reverse(f"invoices:{name}", args=[note.pk]), {}).status_code == 404
    assert client.post(reverse("invoices:credit_note_resend", args=[note.pk])).status_code == 404
    note.refresh_from_db()
    assert note.sync_state == S.FAILED and CreditNote.objects.filter(pk=note.pk).exists()


def test_credit_note_pages_need_a_member_of_the_organisation(client, org):
    note = refused_note(org)
    urls = [reverse(f"invoices:credit_note_{name}", args=[note.pk]) for name in ("fix", "cancel", "resend")]
    for url in urls:  # anonymous: to the sign-in page
        response = client.post(url)
        assert response.status_code == 302 and "/login" in response["Location"]
    outsider = make_user(email="nobody@elsewhere.test")
    login(client, outsider)
    for url in urls:  # signed in, but a member of no organisation
        response = client.post(url)
        assert response.status_code == 302 and "/login" not in response["Location"]
    note.refresh_from_db()
    assert note.sync_state == S.FAILED and not note.events.filter(kind__in=["edited", "retried"]).exists()


def test_resend_is_post_only_and_refused_without_a_csrf_token(accountant_a, org):
    note = refused_note(org)
    strict = login(Client(enforce_csrf_checks=True), accountant_a)
    assert strict.get(reverse("invoices:credit_note_resend", args=[note.pk])).status_code == 405
    assert strict.post(reverse("invoices:credit_note_resend", args=[note.pk])).status_code == 403
    assert strict.post(reverse("invoices:credit_note_cancel", args=[note.pk])).status_code == 403
    note.refresh_from_db()
    assert note.sync_state == S.FAILED


def test_batch_page_offers_fix_resend_and_cancel_when_a_credit_note_was_refused(client, accountant_a, org):
    note = refused_note(org)
    page = login(client, accountant_a).get(reverse("invoices:batch_detail", args=[note.batch_id])).content.decode()
    for name in ("fix", "resend", "cancel"):
        assert reverse(f"invoices:credit_note_{name}", args=[note.pk]) in page
    assert "Resend CN-0001" in page and "Fix CN-0001" in page
