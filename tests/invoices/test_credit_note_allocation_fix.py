"""A credit note's allocation Xero refused, or whose fate needs attention, is no dead end (issue 12): a refused one
is tried again (a new operation, its amount re-checked against what we hold) or removed (the credit stays on the
credit note), after a confirmation; one that needs attention is retried under its own Idempotency-Key, looked up in
Xero first. POST only, members, tenant-scoped; both documents' histories say who did what. Xero is mocked."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
import responses
from django.test import Client
from django.urls import reverse

from integrations.models import IntegrationAuditEvent
from integrations.outbound.models import OutboundAttempt, OutboundOperation
from invoices.models import CreditNote, CreditNoteAllocation, Invoice, InvoiceEvent
from invoices.services.fix import FixRefused
from invoices.services.fix.allocations import allocation_remove, allocation_retry
from tests.factories import make_user
from tests.invoices.test_credit_note_fix import org as fix_org
from tests.invoices.test_credit_note_fix import run
from tests.invoices.test_credit_notes import (
    API,
    CREDIT_NOTE_ID,
    allocation_answer,
    confirmed_note,
    dispatch,
    synced_invoice,
    xero_credit_note,
)
from tests.invoices.test_fix_resend import login

pytestmark = pytest.mark.django_db
AS = CreditNoteAllocation.State
org = fix_org  # the fixture: connected, with a mapping and a chart
ALLOCATIONS = f"{API}/CreditNotes/{CREDIT_NOTE_ID}/Allocations"


def allocate_ops(allocation: CreditNoteAllocation) -> list[OutboundOperation]:
    return list(OutboundOperation.objects.filter(kind="credit_note_allocate", subject_id=allocation.pk).order_by("pk"))


def refused_allocation(org) -> CreditNoteAllocation:
    """Xero refused the allocation: over the amount due (the invoice was changed in Xero meanwhile)."""
    note = confirmed_note(org, synced_invoice(org))
    answer = allocation_answer()
    answer["Allocations"][0]["ValidationErrors"] = [
        {"Message": "The amount being allocated exceeds the amount due on the invoice."}
    ]
    with responses.RequestsMock() as xero:
        xero.put(ALLOCATIONS, json=answer)
        dispatch(org)
        allocation = note.allocations.get()
        assert run(allocate_ops(allocation)[0]).state == "refused"
    allocation.refresh_from_db()
    assert allocation.state == AS.REFUSED
    return allocation


def in_doubt_allocation(org, settings) -> CreditNoteAllocation:
    """Xero answered about another invoice, and the lookup could not confirm it either."""
    settings.OUTBOUND_MAX_LOOKUPS = 1
    note = confirmed_note(org, synced_invoice(org))
    other = "11111111-2222-4333-8444-555555555555"
    with responses.RequestsMock() as xero:
        xero.put(ALLOCATIONS, json=allocation_answer(invoice_id=other))
        dispatch(org)
        allocation = note.allocations.get()
        (operation,) = allocate_ops(allocation)
        assert run(operation).state == "pending"
        xero.get(f"{API}/CreditNotes/{CREDIT_NOTE_ID}", json={"CreditNotes": []})
        assert run(operation).state == "needs_attention"
    allocation.refresh_from_db()
    assert allocation.state == AS.NEEDS_ATTENTION
    return allocation


def retry_url(allocation) -> str:
    return reverse("invoices:credit_note_allocation_retry", args=[allocation.pk])


def remove_url(allocation) -> str:
    return reverse("invoices:credit_note_allocation_remove", args=[allocation.pk])


def test_refused_allocation_is_offered_a_way_out_on_the_batch_page(client, accountant_a, org):
    allocation = refused_allocation(org)
    page = login(client, accountant_a).get(reverse("invoices:batch_detail", args=[allocation.credit_note.batch_id]))
    html = page.content.decode()
    assert "exceeds the amount due" in html
    assert retry_url(allocation) in html and remove_url(allocation) in html
    # The progress card says it too: both documents are in Xero, their allocation is not.
    assert "Xero did not make 1 allocation: see why under" in html


def test_refused_allocation_is_tried_again_as_a_new_operation_with_the_amount_rechecked(
    client, accountant_a, org, django_capture_on_commit_callbacks
):
    allocation = refused_allocation(org)
    (first,) = allocate_ops(allocation)
    # Changed in Xero meanwhile (a payment came back): less is due now, so the amount is clamped to it.
    Invoice.objects.filter(pk=allocation.invoice_id).update(amount_due=Decimal("40.00"))
    with django_capture_on_commit_callbacks(execute=True):
        response = login(client, accountant_a).post(retry_url(allocation))
    assert response.status_code == 302 and response["Location"].endswith(f"#credit-note-{allocation.credit_note_id}")
    allocation.refresh_from_db()
    assert (allocation.state, allocation.last_error) == (AS.WAITING, "")
    with responses.RequestsMock() as xero:
        put = xero.put(ALLOCATIONS, json=allocation_answer(amount=40.0))
        dispatch(org)
        allocation.refresh_from_db()
        assert (allocation.state, allocation.amount) == (AS.SENDING, Decimal("40.00"))
        first_, second = allocate_ops(allocation)
        assert first_.pk == first.pk and second.idempotency_key != first.idempotency_key  # proven not applied
        assert run(second).state == "done"
        assert json.loads(put.calls[0].request.body)["Allocations"][0]["Amount"] == 40.0
    allocation.refresh_from_db()
    assert allocation.state == AS.DONE
    note = allocation.credit_note
    assert note.events.filter(kind="allocation_retried", actor=accountant_a).exists()
    assert InvoiceEvent.objects.filter(
        invoice_id=allocation.invoice_id, kind="allocation_retried", actor=accountant_a
    ).exists()


def test_refused_allocation_is_not_tried_again_when_nothing_is_left_to_allocate(org, accountant_a):
    allocation = refused_allocation(org)
    Invoice.objects.filter(pk=allocation.invoice_id).update(amount_due=Decimal("0.00"))
    with pytest.raises(FixRefused, match="Nothing left to allocate"):
        allocation_retry(organisation=org, allocation_id=allocation.pk, user=accountant_a)
    allocation.refresh_from_db()
    assert allocation.state == AS.REFUSED and len(allocate_ops(allocation)) == 1


def test_remove_asks_first_then_drops_the_allocation_and_the_credit_stays_on_the_credit_note(client, accountant_a, org):
    allocation = refused_allocation(org)
    note = allocation.credit_note
    confirm = login(client, accountant_a).get(remove_url(allocation))
    assert confirm.status_code == 200 and "Remove the allocation of CN-0001 to INV-0001?" in confirm.content.decode()
    assert CreditNoteAllocation.objects.filter(pk=allocation.pk).exists()  # a GET changes nothing
    assert client.post(remove_url(allocation)).status_code == 302
    assert not CreditNoteAllocation.objects.filter(pk=allocation.pk).exists()
    note.refresh_from_db()
    assert note.remaining_credit == Decimal("115.00")
    assert note.events.get(kind="allocation_removed").actor == accountant_a
    assert InvoiceEvent.objects.get(invoice_id=allocation.invoice_id, kind="allocation_removed").actor == accountant_a


def test_needs_attention_allocation_is_retried_under_its_key_and_looked_up_first(org, accountant_a, settings):
    allocation = in_doubt_allocation(org, settings)
    (operation,) = allocate_ops(allocation)
    batch_page = login(Client(), accountant_a).get(
        reverse("invoices:batch_detail", args=[allocation.credit_note.batch_id])
    )
    assert remove_url(allocation) not in batch_page.content.decode()
    with pytest.raises(FixRefused):  # Xero may hold it: never dropped here
        allocation_remove(organisation=org, allocation_id=allocation.pk, user=accountant_a)
    allocation_retry(organisation=org, allocation_id=allocation.pk, user=accountant_a)
    allocation.refresh_from_db()
    assert allocation.state == AS.SENDING
    assert [op.pk for op in allocate_ops(allocation)] == [operation.pk]  # no new operation, no new key
    audit = IntegrationAuditEvent.objects.get(organisation=org, action="xero_write_retried")
    assert (audit.actor, audit.detail["operation_id"]) == (accountant_a, operation.pk)
    before = OutboundAttempt.objects.filter(operation=operation).count()
    with responses.RequestsMock() as xero:
        held = xero_credit_note(
            Allocations=[{"Amount": 110.0, "Invoice": {"InvoiceID": allocation.invoice.xero_invoice_id}}]
        )
        xero.get(f"{API}/CreditNotes/{CREDIT_NOTE_ID}", json={"CreditNotes": [held]})
        assert run(operation).state == "done"  # found in Xero: not sent again
    actions = OutboundAttempt.objects.filter(operation=operation).order_by("pk").values_list("action", flat=True)
    assert list(actions)[before:] == ["lookup"]
    allocation.refresh_from_db()
    assert allocation.state == AS.DONE
    assert allocation.credit_note.events.filter(kind="allocation_retried", actor=accountant_a).exists()


def test_an_allocation_in_doubt_in_a_xero_organisation_no_longer_connected_can_be_removed(org, accountant_a, settings):
    """It can never be looked up again (it was for the Xero organisation connected before): a retry would only stop
    where it was, so removing it (its write withdrawn) is the way out, and the credit stays on the credit note."""
    import uuid

    from integrations.models import XeroConnection

    allocation = in_doubt_allocation(org, settings)
    (operation,) = allocate_ops(allocation)
    XeroConnection.objects.filter(organisation=org).update(tenant_id=str(uuid.uuid4()))
    client = login(Client(), accountant_a)
    batch_page = client.get(reverse("invoices:batch_detail", args=[allocation.credit_note.batch_id])).content.decode()
    assert remove_url(allocation) in batch_page  # offered only now: before the move it is looked up instead
    confirm = client.get(remove_url(allocation)).content.decode()
    assert "can never be looked up from here" in confirm and 'type="submit"' in confirm
    allocation_remove(organisation=org, allocation_id=allocation.pk, user=accountant_a)
    assert not CreditNoteAllocation.objects.filter(pk=allocation.pk).exists()
    operation.refresh_from_db()
    assert operation.state == OutboundOperation.State.REFUSED
    message = allocation.credit_note.events.get(kind="allocation_removed").message
    assert "another Xero organisation" in message


def test_allocation_that_is_waiting_or_done_is_neither_retried_nor_removed(org, accountant_a):
    note = confirmed_note(org, synced_invoice(org))
    allocation = note.allocations.get()
    for state in (AS.WAITING, AS.SENDING, AS.DONE):
        CreditNoteAllocation.objects.filter(pk=allocation.pk).update(state=state)
        with pytest.raises(FixRefused):
            allocation_retry(organisation=org, allocation_id=allocation.pk, user=accountant_a)
        with pytest.raises(FixRefused):
            allocation_remove(organisation=org, allocation_id=allocation.pk, user=accountant_a)


def test_allocation_actions_404_for_another_organisation_and_need_a_member(client, admin_b, org_b, org):
    allocation = refused_allocation(org)
    login(client, admin_b)
    assert client.post(retry_url(allocation)).status_code == 404
    assert client.get(remove_url(allocation)).status_code == 404
    assert client.post(remove_url(allocation)).status_code == 404
    client.logout()
    for url in (retry_url(allocation), remove_url(allocation)):
        response = client.post(url)
        assert response.status_code == 302 and "/login" in response["Location"]
    login(client, make_user(email="nobody@elsewhere.test"))
    for url in (retry_url(allocation), remove_url(allocation)):
        assert client.post(url).status_code == 302
    allocation.refresh_from_db()
    assert allocation.state == AS.REFUSED


def test_allocation_retry_is_post_only_and_both_need_a_csrf_token(accountant_a, org):
    allocation = refused_allocation(org)
    strict = login(Client(enforce_csrf_checks=True), accountant_a)
    assert strict.get(retry_url(allocation)).status_code == 405
    assert strict.post(retry_url(allocation)).status_code == 403
    assert strict.post(remove_url(allocation)).status_code == 403
    allocation.refresh_from_db()
    assert allocation.state == AS.REFUSED and CreditNote.objects.filter(pk=allocation.credit_note_id).exists()
