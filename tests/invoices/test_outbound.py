"""invoices.services.outbound: edits, voids and deletes made in Coordinoter after the first push go to Xero with
Xero's rules enforced first, one stored change per request with a stable Idempotency-Key, and a conflict (Xero
holds a newer version) shown instead of overwritten. Xero is mocked with `responses`."""

import copy
import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest
import requests
import responses
from django.http import Http404

from integrations.models import XeroConnection
from integrations.outbound.models import OutboundOperation
from invoices.created_in_xero.models import XeroInvoiceChange
from invoices.models import Invoice, InvoiceEvent, XeroMapping
from invoices.services import outbound
from invoices.services.outbound import (
    ChangeRefused,
    InvoiceEdit,
    LineEdit,
    invoice_change_refusal,
    invoice_change_request,
    invoice_change_send,
)
from tests.factories import make_connection, make_membership, make_organisation, make_pushed_invoice, make_user

API = "https://api.xero.com/api.xro/2.0"
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "xero" / "invoice_authorised.json"
XERO_ID = "0f0d5a46-9c4a-4f7e-8a39-2d2c4a7b1e01"
HELD = dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.UTC)


def xero_invoice(*, minutes_later: int = 0, **changes) -> dict:
    data = copy.deepcopy(json.loads(FIXTURE.read_text())["Invoices"][0])
    at = HELD + dt.timedelta(minutes=minutes_later)
    data["UpdatedDateUTC"] = f"/Date({int(at.timestamp() * 1000)}+0000)/"
    data.update(changes)
    return data


@pytest.fixture(autouse=True)
def xero_api(settings):
    settings.XERO_API_URL = API


@pytest.fixture
def org(db):
    organisation = make_organisation(name="Maple Florists")
    make_connection(organisation=organisation)
    XeroMapping.objects.create(organisation=organisation, revenue_account_code="200", tax_type="OUTPUT")
    return organisation


@pytest.fixture
def user(org):
    user = make_user(email="accountant@maple.test")
    make_membership(user=user, organisation=org, role="accountant")
    return user


def pushed(org, **kw) -> Invoice:
    kw.setdefault("xero_updated_at", HELD)
    return make_pushed_invoice(organisation=org, xero_invoice_id=XERO_ID, number="INV-0001", **kw)


def due_now(change: XeroInvoiceChange) -> None:
    """The backoff's wait, over (tests run the operation again at once)."""
    OutboundOperation.objects.filter(kind="invoice_change", subject_id=change.pk).update(
        next_attempt_at=dt.datetime.now(dt.UTC)
    )


def with_amounts(invoice: Invoice, **values) -> Invoice:
    Invoice.objects.filter(pk=invoice.pk).update(**values)
    invoice.refresh_from_db()
    return invoice


# ---------------------------------------------------------------- Xero's rules, checked before anything is sent


def test_void_is_refused_when_invoice_is_paid(org):
    invoice = with_amounts(pushed(org, status="PAID"), amount_paid=Decimal("110.00"), amount_due=Decimal("0"))
    assert "cannot be voided" in invoice_change_refusal(invoice=invoice, action="void")


def test_void_is_refused_when_invoice_is_part_paid(org):
    invoice = with_amounts(pushed(org), amount_paid=Decimal("10.00"), amount_due=Decimal("100.00"))
    assert "paid or part-paid invoice cannot be voided" in invoice_change_refusal(invoice=invoice, action="void")


def test_void_is_refused_when_a_credit_note_is_allocated(org):
    invoice = with_amounts(pushed(org), amount_credited=Decimal("10.00"))
    assert "credit note" in invoice_change_refusal(invoice=invoice, action="void")


def test_void_is_allowed_when_authorised_and_unpaid(org):
    assert invoice_change_refusal(invoice=pushed(org), action="void") is None


@pytest.mark.parametrize("status", ["DRAFT", "SUBMITTED"])
def test_void_is_refused_and_delete_allowed_when_draft_or_submitted(org, status):
    invoice = pushed(org, status=status)
    assert "deleted, not voided" in invoice_change_refusal(invoice=invoice, action="void")
    assert invoice_change_refusal(invoice=invoice, action="delete") is None
    assert invoice_change_refusal(invoice=invoice, action="edit") is None


@pytest.mark.parametrize("status", ["AUTHORISED", "PAID", "VOIDED", "DELETED"])
def test_delete_and_edit_are_refused_when_invoice_is_approved_or_final(org, status):
    invoice = pushed(org, status=status)
    assert "Only DRAFT or SUBMITTED" in invoice_change_refusal(invoice=invoice, action="delete")
    assert "DRAFT or SUBMITTED invoices only" in invoice_change_refusal(invoice=invoice, action="edit")


def test_any_change_is_refused_when_invoice_not_in_xero_yet(org):
    invoice = make_pushed_invoice(organisation=org, xero_invoice_id="")
    assert "not in Xero yet" in invoice_change_refusal(invoice=invoice, action="void")


def test_request_raises_and_stores_nothing_when_rule_broken(org, user, enqueued):
    invoice = with_amounts(pushed(org, status="PAID"), amount_paid=Decimal("110.00"))
    with pytest.raises(ChangeRefused):
        invoice_change_request(organisation=org, invoice_id=invoice.pk, action="void", user=user, based_on=HELD)
    assert not XeroInvoiceChange.objects.exists()


# ---------------------------------------------------------------- requesting


def test_void_is_stored_with_idempotency_key_and_enqueued_when_allowed(
    org, user, enqueued, django_capture_on_commit_callbacks
):
    invoice = pushed(org)
    with django_capture_on_commit_callbacks(execute=True):
        change = invoice_change_request(
            organisation=org, invoice_id=invoice.pk, action="void", user=user, based_on=HELD
        )
    assert change.payload == {"InvoiceID": XERO_ID, "Status": "VOIDED"}
    assert change.idempotency_key.startswith("coordinoter-change-") and len(change.idempotency_key) <= 128
    assert change.based_on_xero_updated_at == HELD
    operation = outbound.invoice_change_operation(change)
    assert (operation.kind, operation.payload, operation.idempotency_key) == (
        "invoice_change",
        change.payload,
        change.idempotency_key,
    )
    assert [(e.name, e.args, e.countdown) for e in enqueued] == [
        ("integrations.outbound.tasks.run_operation", (operation.pk,), 0)
    ]
    assert InvoiceEvent.objects.get(invoice=invoice).kind == "void_requested"


def test_second_change_is_refused_when_one_is_on_its_way(org, user, enqueued):
    invoice = pushed(org)
    invoice_change_request(organisation=org, invoice_id=invoice.pk, action="void", user=user, based_on=HELD)
    with pytest.raises(ChangeRefused, match="already on its way"):
        invoice_change_request(organisation=org, invoice_id=invoice.pk, action="void", user=user, based_on=HELD)


def test_change_is_refused_as_conflict_when_invoice_changed_in_xero_since_opened(org, user, enqueued):
    invoice = pushed(org, xero_updated_at=HELD + dt.timedelta(minutes=1))
    with pytest.raises(ChangeRefused) as refused:
        invoice_change_request(organisation=org, invoice_id=invoice.pk, action="void", user=user, based_on=HELD)
    assert refused.value.conflict
    assert not XeroInvoiceChange.objects.exists()


def test_another_organisations_invoice_404s_when_requested(org, user, enqueued):
    other = make_organisation()
    foreign = make_pushed_invoice(organisation=other, xero_invoice_id="ffffffff-0000-4000-8000-000000000001")
    with pytest.raises(Http404):
        invoice_change_request(organisation=org, invoice_id=foreign.pk, action="void", user=user, based_on=None)


def test_edit_payload_replaces_lines_with_defaults_from_mapping_when_requested(org, user, enqueued):
    invoice = pushed(org, status="DRAFT")
    edit = InvoiceEdit(
        reference="PO 7",
        issue_date=dt.date(2026, 11, 2),
        due_date=dt.date(2026, 11, 30),
        lines=[LineEdit(description="Design", quantity=Decimal("2"), unit_amount=Decimal("75.5"))],
    )
    change = invoice_change_request(
        organisation=org, invoice_id=invoice.pk, action="edit", user=user, based_on=HELD, edit=edit
    )
    assert change.payload == {
        "InvoiceID": XERO_ID,
        "Reference": "PO 7",
        "Date": "2026-11-02",
        "DueDate": "2026-11-30",
        "LineItems": [
            {"Description": "Design", "Quantity": 2.0, "UnitAmount": 75.5, "AccountCode": "200", "TaxType": "OUTPUT"}
        ],
    }


def test_edit_is_refused_when_due_date_before_invoice_date(org, user, enqueued):
    invoice = pushed(org, status="DRAFT")
    edit = InvoiceEdit(
        reference="",
        issue_date=dt.date(2026, 11, 2),
        due_date=dt.date(2026, 11, 1),
        lines=[LineEdit(description="x", quantity=Decimal(1), unit_amount=Decimal(1))],
    )
    with pytest.raises(ChangeRefused, match="due date"):
        invoice_change_request(
            organisation=org, invoice_id=invoice.pk, action="edit", user=user, based_on=HELD, edit=edit
        )


# ---------------------------------------------------------------- sending (the worker)


def _change(org, user, action="void", **kw):
    invoice = pushed(org, **kw)
    return invoice, invoice_change_request(
        organisation=org, invoice_id=invoice.pk, action=action, user=user, based_on=invoice.xero_updated_at
    )


@responses.activate
def test_void_is_sent_with_its_idempotency_key_and_applied_when_xero_accepts(org, user, enqueued):
    invoice, change = _change(org, user)
    responses.get(f"{API}/Invoices/{XERO_ID}", json={"Invoices": [xero_invoice()]})
    post = responses.post(
        f"{API}/Invoices/{XERO_ID}", json={"Invoices": [xero_invoice(minutes_later=1, Status="VOIDED")]}
    )
    assert invoice_change_send(change_id=change.pk).state == "done"
    sent = post.calls[0].request
    assert sent.headers["Idempotency-Key"] == change.idempotency_key
    assert json.loads(sent.body) == {"Invoices": [{"InvoiceID": XERO_ID, "Status": "VOIDED"}]}
    invoice.refresh_from_db()
    change.refresh_from_db()
    assert (invoice.status, change.state) == ("VOIDED", "done")
    messages = list(InvoiceEvent.objects.filter(invoice=invoice).values_list("source", "message"))
    assert ("coordinoter", "sent to Xero: status AUTHORISED → VOIDED") in messages


@responses.activate
def test_nothing_is_sent_and_conflict_shown_when_xero_holds_a_newer_version(org, user, enqueued):
    invoice, change = _change(org, user)
    responses.get(
        f"{API}/Invoices/{XERO_ID}",
        json={"Invoices": [xero_invoice(minutes_later=3, Status="PAID", AmountPaid=110.0, AmountDue=0.0)]},
    )
    post = responses.post(f"{API}/Invoices/{XERO_ID}", json={})
    assert invoice_change_send(change_id=change.pk).state == "conflict"
    assert post.call_count == 0
    invoice.refresh_from_db()
    change.refresh_from_db()
    assert (invoice.status, change.state) == ("PAID", "conflict")
    history = list(InvoiceEvent.objects.filter(invoice=invoice).values_list("kind", flat=True))
    assert "changed_in_xero" in history and "change_conflict" in history


@responses.activate
def test_change_is_refused_with_xeros_words_when_xero_rejects_it(org, user, enqueued):
    invoice, change = _change(org, user)
    responses.get(f"{API}/Invoices/{XERO_ID}", json={"Invoices": [xero_invoice()]})
    responses.post(
        f"{API}/Invoices/{XERO_ID}",
        status=400,
        json={
            "ErrorNumber": 10,
            "Type": "ValidationException",
            "Message": "A validation exception occurred",
            "Elements": [
                {
                    "ValidationErrors": [
                        {
                            "Message": "This document cannot be edited as it has a payment or "
                            "credit note allocated to it."
                        }
                    ]
                }
            ],
        },
    )
    assert invoice_change_send(change_id=change.pk).state == "refused"
    change.refresh_from_db()
    assert "payment or credit note allocated" in change.last_error
    assert InvoiceEvent.objects.filter(invoice=invoice, kind="change_refused").exists()


@responses.activate
def test_same_key_is_reused_on_retry_when_xero_answers_5xx(org, user, enqueued, settings):
    invoice, change = _change(org, user)
    responses.get(f"{API}/Invoices/{XERO_ID}", json={"Invoices": [xero_invoice()]})
    post = responses.post(f"{API}/Invoices/{XERO_ID}", status=503, json={})
    first = invoice_change_send(change_id=change.pk)
    assert first.state == "pending" and 0 < first.retry_in <= 2 * settings.XERO_RETRY_BASE_SECONDS
    responses.replace(
        responses.POST, f"{API}/Invoices/{XERO_ID}", json={"Invoices": [xero_invoice(minutes_later=1, Status="VOIDED")]}
    )
    due_now(change)
    assert invoice_change_send(change_id=change.pk).state == "done"
    keys = {call.request.headers["Idempotency-Key"] for call in responses.calls if call.request.method == "POST"}
    assert keys == {change.idempotency_key}
    assert post.call_count >= 1


@responses.activate
def test_change_is_done_without_resending_when_lost_answer_had_gone_through(org, user, enqueued):
    invoice, change = _change(org, user)
    responses.get(f"{API}/Invoices/{XERO_ID}", json={"Invoices": [xero_invoice(minutes_later=1, Status="VOIDED")]})
    post = responses.post(f"{API}/Invoices/{XERO_ID}", json={})
    assert invoice_change_send(change_id=change.pk).state == "done"
    assert post.call_count == 0
    invoice.refresh_from_db()
    assert invoice.status == "VOIDED"


@responses.activate
def test_edit_is_applied_from_xeros_answer_when_accepted(org, user, enqueued):
    invoice = pushed(org, status="DRAFT")
    edit = InvoiceEdit(
        reference="PO 7",
        issue_date=dt.date(2026, 11, 1),
        due_date=dt.date(2026, 11, 30),
        lines=[LineEdit(description="Design", quantity=Decimal("2"), unit_amount=Decimal("75"))],
    )
    change = invoice_change_request(
        organisation=org, invoice_id=invoice.pk, action="edit", user=user, based_on=HELD, edit=edit
    )
    responses.get(f"{API}/Invoices/{XERO_ID}", json={"Invoices": [xero_invoice(Status="DRAFT")]})
    answer = xero_invoice(
        minutes_later=1,
        Status="DRAFT",
        Reference="PO 7",
        DueDateString="2026-11-30T00:00:00",
        SubTotal=150.0,
        TotalTax=15.0,
        Total=165.0,
        AmountDue=165.0,
        LineItems=[
            {"Description": "Design", "Quantity": 2.0, "UnitAmount": 75.0, "AccountCode": "200", "TaxType": "OUTPUT"}
        ],
    )
    responses.post(f"{API}/Invoices/{XERO_ID}", json={"Invoices": [answer]})
    assert invoice_change_send(change_id=change.pk).state == "done"
    invoice.refresh_from_db()
    assert (invoice.reference, invoice.due_date, invoice.total) == ("PO 7", dt.date(2026, 11, 30), Decimal("165.00"))
    assert list(invoice.lines.values_list("description", "quantity")) == [("Design", Decimal("2"))]


def test_claimed_change_is_skipped_when_another_worker_sends_it(org, user, enqueued):
    invoice, change = _change(org, user)
    OutboundOperation.objects.filter(kind="invoice_change", subject_id=change.pk).update(
        state="sending", leased_by="other", lease_until=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)
    )
    assert invoice_change_send(change_id=change.pk).state == "skipped"


def test_change_needs_attention_visibly_when_xero_disconnected(org, user, enqueued):
    invoice, change = _change(org, user)
    org.xero_connection.status = "disconnected"
    org.xero_connection.save(update_fields=["status"])
    assert invoice_change_send(change_id=change.pk).state == "needs_attention"
    event = InvoiceEvent.objects.get(invoice=invoice, kind="change_needs_attention")
    assert "disconnected" in event.message


def test_change_waits_without_calling_when_xero_needs_reconnecting(org, user, enqueued):
    invoice, change = _change(org, user)
    org.xero_connection.status = "needs_reconnect"
    org.xero_connection.save(update_fields=["status"])
    assert invoice_change_send(change_id=change.pk).state == "pending"
    assert OutboundOperation.objects.get(subject_id=change.pk).attempts == 0


# ---------------------------------------------------------------- lost answers; answers about another invoice


def _edit(org, user):
    invoice = pushed(org, status="DRAFT")
    edit = InvoiceEdit(
        reference="PO 8",
        issue_date=dt.date(2026, 11, 1),
        due_date=dt.date(2026, 11, 30),
        lines=[LineEdit(description="Design", quantity=Decimal("2"), unit_amount=Decimal("10.1234"))],
    )
    change = invoice_change_request(
        organisation=org, invoice_id=invoice.pk, action="edit", user=user, based_on=HELD, edit=edit
    )
    return invoice, change


def _edited_in_xero(**changes) -> dict:
    return xero_invoice(
        minutes_later=1,
        Status="DRAFT",
        Reference="PO 8",
        DueDateString="2026-11-30T00:00:00",
        LineItems=[
            {
                "Description": "Design",
                "Quantity": 2.0,
                "UnitAmount": 10.1234,
                "AccountCode": "200",
                "TaxType": "OUTPUT",
            }
        ],
        **changes,
    )


@responses.activate
def test_edit_is_done_not_a_conflict_when_xero_applied_it_but_the_answer_was_lost(org, user, enqueued):
    invoice, change = _edit(org, user)
    # Xero applies the edit and answers 503; from then on its copy is the edited one (a newer version).
    responses.get(f"{API}/Invoices/{XERO_ID}", json={"Invoices": [xero_invoice(Status="DRAFT")]})
    responses.get(f"{API}/Invoices/{XERO_ID}", json={"Invoices": [_edited_in_xero()]})
    responses.post(f"{API}/Invoices/{XERO_ID}", status=503, json={})
    # The resend under the same key: Xero replays the answer it gave the first time.
    replay = responses.post(f"{API}/Invoices/{XERO_ID}", json={"Invoices": [_edited_in_xero()]})
    assert invoice_change_send(change_id=change.pk).state == "pending"
    due_now(change)
    assert invoice_change_send(change_id=change.pk).state == "done"
    posts = [c.request for c in responses.calls if c.request.method == "POST"]
    assert len(posts) == 2 and {p.headers["Idempotency-Key"] for p in posts} == {change.idempotency_key}
    assert replay.call_count == 1
    assert not InvoiceEvent.objects.filter(invoice=invoice, kind="change_conflict").exists()
    invoice.refresh_from_db()
    assert invoice.reference == "PO 8"


@responses.activate
def test_edit_is_confirmed_by_lookup_without_resending_when_the_keys_window_has_passed(org, user, enqueued):
    invoice, change = _edit(org, user)
    responses.get(f"{API}/Invoices/{XERO_ID}", json={"Invoices": [xero_invoice(Status="DRAFT")]})
    responses.get(f"{API}/Invoices/{XERO_ID}", json={"Invoices": [_edited_in_xero()]})
    post = responses.post(f"{API}/Invoices/{XERO_ID}", body=requests.ConnectionError("reset by peer"))
    assert invoice_change_send(change_id=change.pk).state == "pending"
    OutboundOperation.objects.filter(subject_id=change.pk).update(
        key_first_sent_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=7)
    )
    due_now(change)
    assert invoice_change_send(change_id=change.pk).state == "done"
    assert post.call_count == 1  # looked up, never sent again
    operation = OutboundOperation.objects.get(subject_id=change.pk)
    assert list(operation.outbound_attempts.order_by("pk").values_list("action", "outcome")) == [
        ("send", "unknown"),
        ("lookup", "confirmed"),
    ]


@responses.activate
@pytest.mark.parametrize("action", ["void", "edit"])
def test_change_is_not_done_when_xeros_answer_is_about_another_invoice(org, user, enqueued, action, settings):
    settings.OUTBOUND_MAX_LOOKUPS = 2
    if action == "void":
        invoice, change = _change(org, user)
        other = xero_invoice(minutes_later=1, Status="VOIDED", InvoiceID="11111111-2222-4333-8444-555555555555")
        before = xero_invoice()
    else:
        invoice, change = _edit(org, user)
        other = _edited_in_xero(InvoiceID="11111111-2222-4333-8444-555555555555")
        before = xero_invoice(Status="DRAFT")
    responses.get(f"{API}/Invoices/{XERO_ID}", json={"Invoices": [before]})
    responses.post(f"{API}/Invoices/{XERO_ID}", json={"Invoices": [other]})
    states = []
    for _ in range(8):
        states.append(invoice_change_send(change_id=change.pk).state)
        due_now(change)
    assert "done" not in states and "needs_attention" in states
    change.refresh_from_db()
    assert change.state == "needs_attention"
    invoice.refresh_from_db()
    assert invoice.status == before["Status"]
    operation = OutboundOperation.objects.get(subject_id=change.pk)
    assert operation.state == "needs_attention" and operation.lookups == 2
    assert operation.last_answer["InvoiceID"] == "11111111-2222-4333-8444-555555555555"
    assert "not " + XERO_ID in operation.outbound_attempts.filter(outcome="unconfirmed").first().detail
    assert InvoiceEvent.objects.filter(invoice=invoice, kind="change_needs_attention").exists()


@responses.activate
def test_a_check_xero_does_not_answer_is_tried_again_with_growing_waits_and_stops_in_needs_attention(
    org, user, enqueued, settings
):
    """The read before an edit, void or delete is bounded like a send: during an outage its waits grow (not 1-2 s for
    ever) and after OUTBOUND_MAX_SENDS unanswered tries it stops where a person sees it."""
    invoice, change = _change(org, user)
    get = responses.get(f"{API}/Invoices/{XERO_ID}", status=503, json={})
    post = responses.post(f"{API}/Invoices/{XERO_ID}", json={})
    states, waits = [], []
    for _ in range(settings.OUTBOUND_MAX_SENDS + 4):
        result = invoice_change_send(change_id=change.pk)
        states.append(result.state)
        if result.state != "pending":
            break
        waits.append(result.retry_in)
        due_now(change)
    assert states[-1] == "needs_attention", states
    assert get.call_count == settings.OUTBOUND_MAX_SENDS
    assert post.call_count == 0
    assert max(waits) > 2 * settings.XERO_RETRY_BASE_SECONDS, waits


@responses.activate
@pytest.mark.parametrize(
    "detail", ["You do not have permission to void invoices", "AuthenticationUnsuccessful"], ids=["role", "tenant"]
)
def test_a_void_xero_refuses_with_a_403_that_leaves_the_connection_connected_stops_in_needs_attention(
    org, user, enqueued, settings, detail
):
    """A 403 that marks nothing (the user's role lacks the permission; or the tenant's AuthenticationUnsuccessful,
    whose check of Xero's connections has not found the tenant gone): waiting for a reconnect meant trying again at
    every sweep, for ever, with the change shown as waiting. It backs off like any refused try and, after
    OUTBOUND_MAX_SENDS, stops with Xero's words."""
    invoice, change = _change(org, user)
    responses.get(f"{API}/Invoices/{XERO_ID}", json={"Invoices": [xero_invoice()]})
    forbidden = {"Title": "Forbidden", "Status": 403, "Detail": detail}
    post = responses.post(f"{API}/Invoices/{XERO_ID}", status=403, json=forbidden)
    states = []
    for _ in range(settings.OUTBOUND_MAX_SENDS + 4):
        result = invoice_change_send(change_id=change.pk)
        states.append(result.state)
        if result.state != "pending":
            break
        due_now(change)
    assert states[-1] == "needs_attention", states
    assert post.call_count == settings.OUTBOUND_MAX_SENDS
    change.refresh_from_db()
    assert change.last_error.startswith(f"Xero refused it {settings.OUTBOUND_MAX_SENDS} times"), change.last_error
    assert detail.split()[-1] in change.last_error  # Xero's words: "invoices", "AuthenticationUnsuccessful"
    assert XeroConnection.objects.get(organisation=org).is_usable
