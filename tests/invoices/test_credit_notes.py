"""Credit notes (issue 12): a batch line can be one (service, CSV, form), it goes to Xero as a `credit_note_create`
operation and may be allocated to an invoice of the same customer as a `credit_note_allocate` operation; what
Xero holds comes back through reconciliation. Xero is mocked with `responses`."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
import requests
import responses
from celery.app.task import Task
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from integrations.outbound import engine
from integrations.outbound.models import OutboundAttempt, OutboundOperation
from invoices.csv_import.parse import parse_batch_csv
from invoices.models import CreditNote, CreditNoteAllocation, Invoice, InvoiceBatch, InvoiceEvent, XeroMapping
from invoices.services import credit_notes as service
from invoices.services.apply import credit_notes_apply_from_xero
from invoices.services.batches.create import batch_create
from invoices.services.batches.inputs import (
    KIND_CREDIT_NOTE,
    NEGATIVE_CREDIT_NOTE_MESSAGE,
    NEGATIVE_TOTAL_MESSAGE,
    BatchInvalid,
)
from invoices.services.batches.validation import batch_problems
from invoices.states import CreditNoteStatus, credit_note_status
from tests.factories import make_connection, make_customer, make_invoice_input, make_line_input, make_pushed_invoice

pytestmark = pytest.mark.django_db

API = "https://api.xero.com/api.xro/2.0"
CONTACT_ID = "2b4d6f80-1a3c-4e5f-9a7b-8c9d0e1f2a3b"
OTHER_CONTACT = "7c1e2d3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f"
CREDIT_NOTE_ID = "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b"
INVOICE_XERO_ID = "0f0d5a46-9c4a-4f7e-8a39-2d2c4a7b1e01"
UPDATED = "/Date(1764748800000+0000)/"


@pytest.fixture(autouse=True)
def xero_api(settings):
    settings.XERO_API_URL = API


@pytest.fixture(autouse=True)
def enqueued(monkeypatch):
    calls = []
    monkeypatch.setattr(
        Task,
        "apply_async",
        lambda self, args=None, kwargs=None, **options: calls.append((self.name, kwargs or tuple(args or ()))),
    )
    return calls


@pytest.fixture
def org(org_a):
    make_connection(organisation=org_a, base_currency="NZD")
    XeroMapping.objects.create(organisation=org_a, revenue_account_code="200", tax_type="OUTPUT")
    return org_a


def credit_input(number="CN-0001", customer="Harbour View", **kw):
    kw.setdefault("currency", "NZD")
    return make_invoice_input(number, customer, kind=KIND_CREDIT_NOTE, **kw)


def xero_credit_note(**changes) -> dict:
    data = {
        "Type": "ACCRECCREDIT",
        "CreditNoteID": CREDIT_NOTE_ID,
        "CreditNoteNumber": "CN-0001",
        "Contact": {"ContactID": CONTACT_ID},
        "Status": "AUTHORISED",
        "SubTotal": 100.0,
        "TotalTax": 15.0,
        "Total": 115.0,
        "RemainingCredit": 115.0,
        "UpdatedDateUTC": UPDATED,
        "Allocations": [],
        "StatusAttributeString": "OK",
        "ValidationErrors": [],
    }
    data.update(changes)
    return data


def pending_note(org, *, number="CN-0001", allocate_to: Invoice | None = None) -> CreditNote:
    """A credit note of an eligible batch, waiting to go, for a customer already in Xero."""
    customer = allocate_to.customer if allocate_to else make_customer(organisation=org, name="Harbour View")
    customer.xero_contact_id = CONTACT_ID
    customer.save(update_fields=["xero_contact_id"])
    batch = InvoiceBatch.objects.create(organisation=org, name="Credits", eligibility=InvoiceBatch.Eligibility.ELIGIBLE)
    note = CreditNote.objects.create(
        organisation=org,
        batch=batch,
        customer=customer,
        number=number,
        currency="NZD",
        issue_date=dt.date(2026, 11, 20),
        sync_state=Invoice.SyncState.PENDING,
        total=Decimal("115.00"),
    )
    note.lines.create(position=1, description="Returned roses", quantity=Decimal("1"), unit_amount=Decimal("100"))
    if allocate_to is not None:
        CreditNoteAllocation.objects.create(organisation=org, credit_note=note, invoice=allocate_to)
    return note


def synced_invoice(org, **kw) -> Invoice:
    invoice = make_pushed_invoice(organisation=org, xero_invoice_id=INVOICE_XERO_ID, number="INV-0001", **kw)
    Invoice.objects.filter(pk=invoice.pk).update(currency="NZD")
    invoice.refresh_from_db()
    return invoice


def dispatch(org) -> None:
    from integrations.models import XeroConnection

    service.credit_notes_dispatch(
        organisation_id=org.pk,
        connection=XeroConnection.objects.get(organisation=org),
        mapping=XeroMapping.objects.get(organisation=org),
    )


def run(kind: str, subject_id: int):
    operation = OutboundOperation.objects.get(kind=kind, subject_id=subject_id)
    OutboundOperation.objects.filter(pk=operation.pk).update(next_attempt_at=timezone.now())
    return engine.operation_run(operation_id=operation.pk)


def forget_key(kind: str, subject_id: int) -> None:
    """Xero's six minutes have passed since the first send: a replay under the key is no longer possible."""
    OutboundOperation.objects.filter(kind=kind, subject_id=subject_id).update(
        key_first_sent_at=timezone.now() - dt.timedelta(hours=1), next_attempt_at=timezone.now()
    )


# ---------------------------------------------------------------- batches: service, CSV, form


def test_credit_note_is_created_beside_invoices_with_its_own_numbers_when_a_batch_has_one(org):
    batch = batch_create(
        organisation=org,
        user=None,
        name="November",
        invoices=[
            make_invoice_input("INV-0001", currency="NZD"),
            credit_input("INV-0001", allocate_to="inv-0001", lines=[make_line_input(unit="20")]),
        ],
        source="form",
    )
    invoice = Invoice.objects.get(batch=batch)
    note = CreditNote.objects.get(batch=batch)
    assert (note.number, note.customer_id, note.sync_state) == ("INV-0001", invoice.customer_id, "pending")
    assert note.total == Decimal("20.00") and list(note.lines.values_list("unit_amount", flat=True)) == [Decimal("20")]
    (allocation,) = note.allocations.all()
    assert (allocation.invoice_id, allocation.state, allocation.amount) == (invoice.pk, "waiting", None)
    assert InvoiceEvent.objects.filter(invoice=invoice, kind="credit_requested").exists()
    assert Invoice.objects.filter(organisation=org).count() == 1  # the push never sees the credit note


def test_credit_note_number_taken_by_another_credit_note_is_refused_when_batch_created(org):
    pending_note(org, number="CN-0001")
    found = batch_problems(organisation=org, name="B", invoices=[credit_input("cn-0001")])
    assert [(p.field, p.message) for p in found] == [
        ("number", "Credit note number cn-0001 is already used by another credit note of this organisation.")
    ]


def test_negative_credit_note_is_refused_when_amounts_are_given_with_a_minus(org):
    found = batch_problems(organisation=org, name="B", invoices=[credit_input(lines=[make_line_input(unit="-20")])])
    assert (found[0].field, found[0].message) == ("lines", NEGATIVE_CREDIT_NOTE_MESSAGE)


@pytest.mark.parametrize(
    ("target", "change", "message"),
    [
        ("INV-9", {}, "There is no invoice INV-9 in this batch or in Coordinoter."),
        ("INV-1", {"customer": "Wattle Clinic"}, "Invoice INV-1 is for another customer."),
        ("INV-1", {"currency": "AUD"}, "Invoice INV-1 is in NZD, this credit note in AUD."),
        (
            "INV-1",
            {"status": "DRAFT"},
            "Only an approved credit note can be allocated: set its status to Approved (AUTHORISED in a CSV).",
        ),
    ],
)
def test_allocation_is_refused_before_anything_is_created_when_xero_could_not_allocate_it(org, target, change, message):
    customer = change.pop("customer", "Harbour View")
    note = credit_input(customer=customer, allocate_to=target, **change)
    found = batch_problems(organisation=org, name="B", invoices=[make_invoice_input("INV-1", currency="NZD"), note])
    assert ("allocate_to", message) in [(p.field, p.message) for p in found]
    with pytest.raises(BatchInvalid):
        batch_create(
            organisation=org,
            user=None,
            name="B",
            invoices=[make_invoice_input("INV-1", currency="NZD"), note],
            source="form",
        )
    assert not CreditNote.objects.exists()


def test_allocation_to_an_invoice_sent_before_is_accepted_when_same_customer(org):
    earlier = synced_invoice(org)
    found = batch_problems(
        organisation=org, name="B", invoices=[credit_input(customer=earlier.customer.name, allocate_to="INV-0001")]
    )
    assert found == []


def test_csv_type_and_allocate_to_columns_make_a_credit_note_when_given():
    header = "invoice_number,customer_name,issue_date,due_date,currency,description,unit_amount,type,allocate_to"
    rows = [
        "INV-7,Émile Care,2026-11-01,2026-11-15,NZD,Roses,100,,",
        "CN-7,Émile Care,2026-11-02,2026-11-02,NZD,Wilted roses,30,Credit note,INV-7",
        "CN-7,Émile Care,2026-11-02,2026-11-02,NZD,Late delivery,5,,",
        "CN-8,Émile Care,2026-11-02,2026-11-02,NZD,x,5,refund,",
    ]
    result = parse_batch_csv(("\n".join([header, *rows]) + "\n").encode())
    assert [(e.row, e.column) for e in result.errors] == [(5, "type")]
    good = parse_batch_csv(("\n".join([header, *rows[:3]]) + "\n").encode())
    assert good.ok, good.errors
    invoice, note = good.invoices
    assert (invoice.kind, note.kind, note.allocate_to) == ("invoice", "credit_note", "INV-7")
    assert [item.description for item in note.lines] == ["Wilted roses", "Late delivery"]


def test_negative_invoice_in_the_form_offers_to_become_a_credit_note_when_refused(client, admin_a, org_a):
    from tests.invoices.test_batch_views import form_data, login

    data = form_data({"customer_name": "Harbour View", "currency": "NZD", "lines": [line_data("-40.50")]})
    response = login(client, admin_a).post(reverse("invoices:batch_new"), data)
    body = response.content.decode()
    assert response.status_code == 422 and escape(NEGATIVE_TOTAL_MESSAGE) in body
    assert 'value="credit_note:0"' in body and "Make it a credit note" in body
    data["action"] = "credit_note:0"
    turned = client.post(reverse("invoices:batch_new"), data).content.decode()
    assert 'value="credit_note" selected' in turned and 'value="40.50"' in turned
    data.update({"inv-0-kind": "credit_note", "inv-0-lines-0-unit_amount": "40.50", "action": "create"})
    created = client.post(reverse("invoices:batch_new"), data)
    assert created.status_code == 302
    note = CreditNote.objects.get(organisation=org_a)
    assert note.total > 0 and not Invoice.objects.filter(organisation=org_a).exists()


def line_data(unit: str) -> dict:
    return {"description": "Refund of deposit", "quantity": "1", "unit_amount": unit}


# ---------------------------------------------------------------- credit_note_create


@responses.activate
def test_credit_note_goes_with_its_key_and_takes_xeros_id_when_confirmed(org):
    note = pending_note(org)
    put = responses.put(f"{API}/CreditNotes", json={"CreditNotes": [xero_credit_note()]})
    dispatch(org)
    note.refresh_from_db()
    assert note.sync_state == "in_flight"
    assert run("credit_note_create", note.pk).state == "done"
    note.refresh_from_db()
    assert (note.sync_state, note.xero_credit_note_id, note.remaining_credit) == (
        "synced",
        CREDIT_NOTE_ID,
        Decimal("115.00"),
    )
    assert note.display_status == CreditNoteStatus.CREDIT_AVAILABLE
    operation = OutboundOperation.objects.get(kind="credit_note_create", subject_id=note.pk)
    sent = put.calls[0].request
    assert sent.headers["Idempotency-Key"] == operation.idempotency_key
    assert "unitdp=4" in sent.url and "summarizeErrors=false" in sent.url
    assert operation.payload["CreditNoteNumber"] == "CN-0001" and operation.payload["Type"] == "ACCRECCREDIT"
    dispatch(org)  # a second pass makes no second operation
    assert OutboundOperation.objects.filter(kind="credit_note_create").count() == 1


@responses.activate
def test_lost_answer_is_looked_up_by_number_and_not_sent_twice_when_xero_holds_it(org):
    note = pending_note(org)
    put = responses.put(f"{API}/CreditNotes", body=requests.ReadTimeout("lost"))
    dispatch(org)
    assert run("credit_note_create", note.pk).state == "pending"
    forget_key("credit_note_create", note.pk)
    lookup = responses.get(f"{API}/CreditNotes", json={"CreditNotes": [xero_credit_note()]})
    assert run("credit_note_create", note.pk).state == "done"
    assert put.call_count == 1
    assert 'CreditNoteNumber=="CN-0001"' in requests.utils.unquote(lookup.calls[0].request.url)
    note.refresh_from_db()
    assert (note.sync_state, note.xero_credit_note_id) == ("synced", CREDIT_NOTE_ID)


@responses.activate
def test_lost_answer_is_sent_again_under_its_key_when_the_lookup_finds_nothing(org):
    note = pending_note(org)
    responses.put(f"{API}/CreditNotes", body=requests.ReadTimeout("lost"))
    dispatch(org)
    run("credit_note_create", note.pk)
    forget_key("credit_note_create", note.pk)
    responses.get(f"{API}/CreditNotes", json={"CreditNotes": []})
    assert run("credit_note_create", note.pk).state == "pending"  # absent: safe to send
    responses.replace(responses.PUT, f"{API}/CreditNotes", json={"CreditNotes": [xero_credit_note()]})
    assert run("credit_note_create", note.pk).state == "done"
    actions = list(
        OutboundAttempt.objects.filter(operation__subject_id=note.pk).order_by("pk").values_list("action", "outcome")
    )
    assert actions == [("send", "unknown"), ("lookup", "absent"), ("send", "confirmed")]


@responses.activate
def test_a_500_is_looked_up_not_replayed_and_sent_again_under_a_new_key_when_the_lookup_finds_nothing(org):
    """Xero keeps a 500 under the Idempotency-Key for its six minutes (docs/xero-facts 2.4): sending again under it
    would only replay the 500, a call spent against the tenant's limits each time. The engine looks the number up
    (as the push does for a chunk), and once the lookup proves the credit note absent it sends under a new key."""
    note = pending_note(org)
    put = responses.put(f"{API}/CreditNotes", status=500, json={"Message": "An error occurred"})
    dispatch(org)
    assert run("credit_note_create", note.pk).state == "pending"
    first_key = OutboundOperation.objects.get(kind="credit_note_create", subject_id=note.pk).idempotency_key
    lookup = responses.get(f"{API}/CreditNotes", json={"CreditNotes": []})
    assert run("credit_note_create", note.pk).state == "pending"  # the key is still remembered: looked up instead
    assert (put.call_count, lookup.call_count) == (1, 1)
    responses.replace(responses.PUT, f"{API}/CreditNotes", json={"CreditNotes": [xero_credit_note()]})
    assert run("credit_note_create", note.pk).state == "done"
    keys = [call.request.headers["Idempotency-Key"] for call in responses.calls if call.request.method == "PUT"]
    assert keys[0] == first_key and keys[1] != first_key and len(keys[1]) <= 128
    actions = list(
        OutboundAttempt.objects.filter(operation__subject_id=note.pk).order_by("pk").values_list("action", "outcome")
    )
    assert actions == [("send", "unconfirmed"), ("lookup", "absent"), ("send", "confirmed")]


@responses.activate
def test_a_key_renewed_after_a_persons_retry_is_none_sent_before(org):
    """A retry starts the operation's sends again from nought; a renewed key must still be new, or Xero would
    replay the answer it keeps under the earlier renewed one (a 500) for six minutes."""
    note = pending_note(org)
    responses.put(f"{API}/CreditNotes", status=500, json={"Message": "An error occurred"})
    responses.get(f"{API}/CreditNotes", json={"CreditNotes": []})
    dispatch(org)
    operation = OutboundOperation.objects.get(kind="credit_note_create", subject_id=note.pk)
    for _ in range(2):  # a send answered 500, then a lookup that finds nothing: the key is renewed
        assert run("credit_note_create", note.pk).state == "pending"
        assert run("credit_note_create", note.pk).state == "pending"
    OutboundOperation.objects.filter(pk=operation.pk).update(state="needs_attention")  # as after its bound of sends
    engine.operation_retry(organisation_id=org.pk, operation_id=operation.pk)
    for _ in range(2):
        assert run("credit_note_create", note.pk).state == "pending"
        assert run("credit_note_create", note.pk).state == "pending"
    keys = [call.request.headers["Idempotency-Key"] for call in responses.calls if call.request.method == "PUT"]
    assert len(keys) == 4 and len(set(keys)) == 4, keys


@responses.activate
def test_answer_about_another_credit_note_is_not_taken_as_done_when_numbers_differ(org, settings):
    settings.OUTBOUND_MAX_LOOKUPS = 2
    note = pending_note(org)
    responses.put(f"{API}/CreditNotes", json={"CreditNotes": [xero_credit_note(CreditNoteNumber="CN-0999")]})
    dispatch(org)
    assert run("credit_note_create", note.pk).state == "pending"
    note.refresh_from_db()
    assert note.sync_state == "in_flight" and not note.xero_credit_note_id
    # Xero holds CN-0001, but for another contact: still not ours, and after the bounded lookups a person looks.
    responses.get(f"{API}/CreditNotes", json={"CreditNotes": [xero_credit_note(Contact={"ContactID": OTHER_CONTACT})]})
    assert run("credit_note_create", note.pk).state == "pending"
    assert run("credit_note_create", note.pk).state == "needs_attention"
    note.refresh_from_db()
    assert note.sync_state == "needs_attention" and "another contact" in note.sync_errors[0]
    assert note.display_status == CreditNoteStatus.NEEDS_ATTENTION


@responses.activate
def test_refused_credit_note_fails_with_xeros_words_and_its_allocation_is_refused_when_xero_says_no(org):
    invoice = synced_invoice(org)
    note = pending_note(org, allocate_to=invoice)
    refused = xero_credit_note(
        CreditNoteID="00000000-0000-0000-0000-000000000000",
        HasErrors=True,
        StatusAttributeString="ERROR",
        ValidationErrors=[{"Message": "Account code '200' has been archived, or deleted."}],
    )
    responses.put(f"{API}/CreditNotes", json={"CreditNotes": [refused]})
    dispatch(org)
    assert run("credit_note_create", note.pk).state == "refused"
    note.refresh_from_db()
    assert note.sync_state == "failed" and note.sync_errors == ["Account code '200' has been archived, or deleted."]
    allocation = note.allocations.get()
    assert allocation.state == "refused" and allocation.last_error == "The credit note did not reach Xero."


# ---------------------------------------------------------------- credit_note_allocate


def confirmed_note(org, invoice: Invoice) -> CreditNote:
    note = pending_note(org, allocate_to=invoice)
    CreditNote.objects.filter(pk=note.pk).update(
        sync_state="synced",
        xero_credit_note_id=CREDIT_NOTE_ID,
        xero_status="AUTHORISED",
        remaining_credit=Decimal("115.00"),
    )
    return note


def allocation_answer(amount=110.0, invoice_id=INVOICE_XERO_ID) -> dict:
    return {
        "Allocations": [
            {
                "Amount": amount,
                "Date": "/Date(1764720000000+0000)/",
                "Invoice": {"InvoiceID": invoice_id},
                "CreditNote": {"CreditNoteID": CREDIT_NOTE_ID},
                "ValidationErrors": [],
            }
        ]
    }


@responses.activate
def test_allocation_goes_once_both_are_in_xero_and_the_invoice_shows_the_credit_when_confirmed(org):
    invoice = synced_invoice(org)  # total and amount due 110.00
    note = confirmed_note(org, invoice)
    put = responses.put(f"{API}/CreditNotes/{CREDIT_NOTE_ID}/Allocations", json=allocation_answer())
    dispatch(org)
    allocation = note.allocations.get()
    assert (allocation.state, allocation.amount) == ("sending", Decimal("110.00"))  # the smaller: the amount due
    assert run("credit_note_allocate", allocation.pk).state == "done"
    [sent] = json.loads(put.calls[0].request.body)["Allocations"]
    assert sent["Amount"] == 110.0 and sent["Invoice"]["InvoiceID"] == INVOICE_XERO_ID
    allocation.refresh_from_db()
    invoice.refresh_from_db()
    note.refresh_from_db()
    assert allocation.state == "done"
    assert (invoice.amount_credited, invoice.amount_due, invoice.xero_status) == (
        Decimal("110.00"),
        Decimal("0.00"),
        "PAID",
    )
    assert note.remaining_credit == Decimal("5.00") and note.display_status == CreditNoteStatus.CREDIT_AVAILABLE
    assert InvoiceEvent.objects.filter(invoice=invoice, kind="credit_allocated").exists()


@responses.activate
def test_allocation_waits_when_its_invoice_is_not_in_xero_yet(org):
    invoice = synced_invoice(org)
    Invoice.objects.filter(pk=invoice.pk).update(sync_state="in_flight")
    note = confirmed_note(org, invoice)
    dispatch(org)
    assert note.allocations.get().state == "waiting"
    assert not OutboundOperation.objects.filter(kind="credit_note_allocate").exists()


@responses.activate
def test_answer_about_another_invoice_is_looked_up_on_the_credit_note_when_allocating(org):
    invoice = synced_invoice(org)
    note = confirmed_note(org, invoice)
    other = "11111111-2222-4333-8444-555555555555"
    put = responses.put(f"{API}/CreditNotes/{CREDIT_NOTE_ID}/Allocations", json=allocation_answer(invoice_id=other))
    dispatch(org)
    allocation = note.allocations.get()
    assert run("credit_note_allocate", allocation.pk).state == "pending"
    allocation.refresh_from_db()
    assert allocation.state == "sending"  # not taken as done
    held = xero_credit_note(
        Allocations=[{"Amount": 110.0, "Invoice": {"InvoiceID": INVOICE_XERO_ID}, "Date": "/Date(1764720000000)/"}]
    )
    get = responses.get(f"{API}/CreditNotes/{CREDIT_NOTE_ID}", json={"CreditNotes": [held]})
    assert run("credit_note_allocate", allocation.pk).state == "done"
    assert put.call_count == 1 and get.call_count == 1 and "unitdp=4" in get.calls[0].request.url
    allocation.refresh_from_db()
    assert allocation.state == "done"


@responses.activate
def test_allocation_refused_by_xero_is_shown_with_its_words_when_over_the_amount_due(org):
    invoice = synced_invoice(org)
    note = confirmed_note(org, invoice)
    answer = allocation_answer()
    answer["Allocations"][0]["ValidationErrors"] = [
        {"Message": "The amount being allocated exceeds the amount due on the invoice."}
    ]
    responses.put(f"{API}/CreditNotes/{CREDIT_NOTE_ID}/Allocations", json=answer)
    dispatch(org)
    allocation = note.allocations.get()
    assert run("credit_note_allocate", allocation.pk).state == "refused"
    allocation.refresh_from_db()
    invoice.refresh_from_db()
    assert allocation.state == "refused" and "exceeds the amount due" in allocation.last_error
    assert invoice.amount_credited == Decimal("0.00")


def test_allocation_is_refused_without_a_call_when_the_invoice_was_paid_in_xero_meanwhile(org):
    invoice = synced_invoice(org, status="PAID")
    note = confirmed_note(org, invoice)
    service.credit_note_allocations_dispatch(organisation_id=org.pk, tenant_id="t")
    allocation = note.allocations.get()
    assert allocation.state == "refused" and "only an approved, unpaid invoice" in allocation.last_error
    assert not OutboundOperation.objects.filter(kind="credit_note_allocate").exists()


# ---------------------------------------------------------------- back from Xero (reconciliation)


def test_newer_copy_from_xero_is_applied_and_an_older_one_is_not_when_reconciling(org):
    invoice = synced_invoice(org)
    note = confirmed_note(org, invoice)
    CreditNote.objects.filter(pk=note.pk).update(xero_updated_at=timezone.now() - dt.timedelta(days=1))
    newer = xero_credit_note(Status="VOIDED", RemainingCredit=0.0, UpdatedDateUTC="/Date(4102444800000+0000)/")
    (outcome,) = credit_notes_apply_from_xero(organisation_id=org.pk, resources=[newer], source="reconcile")
    assert outcome.outcome == "applied" and "VOIDED" in outcome.summary
    note.refresh_from_db()
    assert note.display_status == CreditNoteStatus.VOIDED
    (again,) = credit_notes_apply_from_xero(
        organisation_id=org.pk, resources=[xero_credit_note(Status="AUTHORISED")], source="reconcile"
    )
    assert again.outcome == "stale"
    note.refresh_from_db()
    assert note.xero_status == "VOIDED"
    (foreign,) = credit_notes_apply_from_xero(
        organisation_id=org.pk,
        resources=[xero_credit_note(CreditNoteID="22222222-3333-4444-8555-666666666666")],
        source="reconcile",
    )
    assert foreign.outcome == "not_ours"


@responses.activate
def test_reconciliation_polls_credit_notes_changed_since_the_last_pass_when_run(org):
    from integrations.services.reconciliation import reconciliation_run

    invoice = synced_invoice(org)
    note = confirmed_note(org, invoice)
    CreditNote.objects.filter(pk=note.pk).update(xero_updated_at=timezone.now() - dt.timedelta(days=1))
    responses.get(f"{API}/Invoices", json={"Invoices": []})
    responses.get(f"{API}/Contacts", json={"Contacts": []})
    polled = responses.get(
        f"{API}/CreditNotes",
        json={
            "CreditNotes": [
                xero_credit_note(Status="PAID", RemainingCredit=0.0, UpdatedDateUTC=f"/Date({4102444800000}+0000)/")
            ]
        },
    )
    result = reconciliation_run(organisation_id=org.pk)
    assert result.drift == 1 and polled.call_count == 1
    sent = polled.calls[0].request
    assert "If-Modified-Since" in sent.headers and "order=CreditNoteID+ASC" in sent.url
    note.refresh_from_db()
    assert note.display_status == CreditNoteStatus.ALLOCATED and note.remaining_credit == Decimal("0.00")


# ---------------------------------------------------------------- status words


@pytest.mark.parametrize(
    ("sync_state", "xero_status", "expected"),
    [
        ("not_synced", "", CreditNoteStatus.NOT_SYNCED),
        ("pending", "", CreditNoteStatus.WAITING),
        ("in_flight", "", CreditNoteStatus.SENDING),
        ("failed", "", CreditNoteStatus.FAILED),
        ("needs_attention", "", CreditNoteStatus.NEEDS_ATTENTION),
        ("synced", "DRAFT", CreditNoteStatus.DRAFT),
        ("synced", "AUTHORISED", CreditNoteStatus.CREDIT_AVAILABLE),
        ("synced", "PAID", CreditNoteStatus.ALLOCATED),
        ("synced", "VOIDED", CreditNoteStatus.VOIDED),
        ("synced", "DELETED", CreditNoteStatus.DELETED),
    ],
)
def test_credit_note_status_names_what_is_true_in_xero_when_shown(sync_state, xero_status, expected):
    assert credit_note_status(sync_state=sync_state, xero_status=xero_status, status="AUTHORISED") == expected
    assert expected.badge.startswith("badge badge-")


def test_batch_page_lists_credit_notes_with_their_allocation_when_the_batch_has_some(client, admin_a, org):
    from tests.invoices.test_batch_views import login

    invoice = synced_invoice(org)
    note = confirmed_note(org, invoice)
    body = login(client, admin_a).get(reverse("invoices:batch_detail", args=[note.batch_id])).content.decode()
    assert 'id="credit-notes"' in body and "CN-0001" in body and "Credit available" in body
    assert "Allocate to" in body and "INV-0001" in body and "Waiting for both to be in Xero" in body


@responses.activate
def test_reconciliation_spends_no_call_on_credit_notes_when_none_of_ours_is_in_xero(org):
    from integrations.services.reconciliation import reconciliation_run

    pending_note(org)  # not in Xero yet: nothing a poll could update
    responses.get(f"{API}/Invoices", json={"Invoices": []})
    responses.get(f"{API}/Contacts", json={"Contacts": []})
    result = reconciliation_run(organisation_id=org.pk)
    assert not result.skipped and result.checked == 0
    assert [call.request.path_url.split("?")[0] for call in responses.calls] == [
        "/api.xro/2.0/Invoices",
        "/api.xro/2.0/Contacts",
    ]


@responses.activate
def test_credit_is_not_counted_twice_when_xeros_copy_with_it_came_back_before_the_allocation_finished(org):
    from invoices.services.apply.invoices import invoice_apply_from_xero

    invoice = synced_invoice(org, xero_updated_at=timezone.now() - dt.timedelta(days=1))
    note = confirmed_note(org, invoice)
    responses.put(f"{API}/CreditNotes/{CREDIT_NOTE_ID}/Allocations", json=allocation_answer())
    dispatch(org)
    allocation = note.allocations.get()
    # The invoice's webhook (Xero's copy, already credited) is applied while the allocation's answer is recorded.
    copy = {
        "Type": "ACCREC",
        "InvoiceID": INVOICE_XERO_ID,
        "InvoiceNumber": "INV-0001",
        "Status": "PAID",
        "Total": 110.0,
        "AmountPaid": 0.0,
        "AmountCredited": 110.0,
        "AmountDue": 0.0,
        "UpdatedDateUTC": f"/Date({int(timezone.now().timestamp() * 1000)}+0000)/",
    }
    invoice_apply_from_xero(organisation_id=org.pk, data=copy, source="webhook")
    assert run("credit_note_allocate", allocation.pk).state == "done"
    invoice.refresh_from_db()
    assert (invoice.amount_credited, invoice.amount_due) == (Decimal("110.00"), Decimal("0.00"))


def test_credit_notes_go_with_a_not_synced_batch_when_an_admin_sends_it_to_xero(org, admin_a):
    from invoices.services.batch_send import batch_send_to_xero

    batch = batch_create(
        organisation=org,
        user=None,
        name="Made offline",
        invoices=[make_invoice_input("INV-1", currency="NZD"), credit_input(allocate_to="INV-1")],
        source="form",
    )
    InvoiceBatch.objects.filter(pk=batch.pk).update(eligibility=InvoiceBatch.Eligibility.WHILE_DISCONNECTED)
    Invoice.objects.filter(batch=batch).update(sync_state="not_synced")
    CreditNote.objects.filter(batch=batch).update(sync_state="not_synced")
    assert batch_send_to_xero(organisation=org, batch_id=batch.pk, user=admin_a) == 1
    assert CreditNote.objects.get(batch=batch).sync_state == "pending"
