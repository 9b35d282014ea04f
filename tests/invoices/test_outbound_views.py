"""The two-way sync's pages: void/delete/edit behind a confirmation (CSRF, tenant-scoped), the live Xero states
partial, and the "Created in Xero" list."""

import datetime as dt
from decimal import Decimal

import pytest
from django.test import Client

from invoices.created_in_xero.models import XeroCreatedInvoice, XeroInvoiceChange
from invoices.models import Invoice, XeroMapping
from tests.factories import (
    PASSWORD,
    make_connection,
    make_membership,
    make_organisation,
    make_pushed_invoice,
    make_user,
)

XERO_ID = "0f0d5a46-9c4a-4f7e-8a39-2d2c4a7b1e01"
HELD = dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _tasks_recorded(enqueued):
    return enqueued


@pytest.fixture
def org(db):
    organisation = make_organisation(name="Maple Florists")
    make_connection(organisation=organisation)
    XeroMapping.objects.create(organisation=organisation, revenue_account_code="200", tax_type="OUTPUT")
    return organisation


@pytest.fixture
def member(org, client):
    user = make_user(email="accountant@maple.test")
    make_membership(user=user, organisation=org, role="accountant")
    client.force_login(user)
    return client


@pytest.fixture
def invoice(org):
    return make_pushed_invoice(organisation=org, xero_invoice_id=XERO_ID, xero_updated_at=HELD, number="INV-0001")


def test_void_confirmation_shows_invoice_when_allowed(member, invoice):
    response = member.get(f"/invoices/{invoice.pk}/xero/void/")
    assert response.status_code == 200
    assert b"Void invoice INV-0001 in Xero?" in response.content
    assert HELD.isoformat().encode() in response.content
    # Its status in the one vocabulary, never Xero's raw word.
    body = response.content.decode()
    assert f"<dt>In Xero</dt><dd>{invoice.display_status.label}<" in body and "Authorised" not in body


def test_void_confirmation_explains_refusal_when_invoice_paid(member, invoice):
    Invoice.objects.filter(pk=invoice.pk).update(status="PAID", xero_status="PAID", amount_paid=Decimal("110"))
    response = member.get(f"/invoices/{invoice.pk}/xero/void/")
    assert b"cannot be voided" in response.content
    assert b'class="button danger" type="submit"' not in response.content


def test_void_is_requested_and_redirects_to_batch_when_confirmed(
    member, invoice, enqueued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = member.post(f"/invoices/{invoice.pk}/xero/void/", {"based_on": HELD.isoformat()})
    assert response.status_code == 302
    assert response["Location"] == f"/batches/{invoice.batch_id}/#invoice-{invoice.pk}"
    assert XeroInvoiceChange.objects.get().action == "void"
    assert enqueued.names() == ["integrations.outbound.tasks.run_operation"]  # sent by a worker, after the commit


def test_conflict_is_shown_when_invoice_changed_since_page_opened(member, invoice, enqueued):
    response = member.post(
        f"/invoices/{invoice.pk}/xero/void/", {"based_on": (HELD - dt.timedelta(minutes=1)).isoformat()}, follow=True
    )
    assert b"changed in Xero after you opened it" in response.content
    assert not XeroInvoiceChange.objects.exists()
    assert enqueued == []


def test_void_of_another_organisations_invoice_404s_when_requested(member, db):
    foreign = make_pushed_invoice(organisation=make_organisation(), xero_invoice_id="ffffffff-0000-4000-8000-00000000")
    assert member.get(f"/invoices/{foreign.pk}/xero/void/").status_code == 404
    assert member.post(f"/invoices/{foreign.pk}/xero/void/").status_code == 404
    assert member.post(f"/invoices/{foreign.pk}/xero/delete/").status_code == 404
    assert member.get(f"/invoices/{foreign.pk}/xero/edit/").status_code == 404


def test_void_is_refused_without_csrf_token_when_posted(org, invoice):
    user = make_user(email="csrf@maple.test")
    make_membership(user=user, organisation=org)
    client = Client(enforce_csrf_checks=True)
    assert client.login(username=user.email, password=PASSWORD)
    assert client.post(f"/invoices/{invoice.pk}/xero/void/").status_code == 403


def test_anonymous_is_sent_to_login_when_opening_void(client, invoice):
    assert client.get(f"/invoices/{invoice.pk}/xero/void/").status_code == 302


def test_edit_form_sends_change_when_draft(member, org):
    draft = make_pushed_invoice(organisation=org, xero_invoice_id=XERO_ID, xero_updated_at=HELD, status="DRAFT")
    page = member.get(f"/invoices/{draft.pk}/xero/edit/")
    assert page.status_code == 200 and b"Send changes to Xero" in page.content
    response = member.post(
        f"/invoices/{draft.pk}/xero/edit/",
        {
            "reference": "PO 9",
            "issue_date": "2026-11-01",
            "due_date": "2026-11-20",
            "based_on": HELD.isoformat(),
            "lines-TOTAL_FORMS": "2",
            "lines-INITIAL_FORMS": "1",
            "lines-MIN_NUM_FORMS": "0",
            "lines-MAX_NUM_FORMS": "100",
            "lines-0-description": "Service",
            "lines-0-quantity": "2",
            "lines-0-unit_amount": "100",
            "lines-1-description": "",
            "lines-1-quantity": "",
            "lines-1-unit_amount": "",
        },
    )
    assert response.status_code == 302
    change = XeroInvoiceChange.objects.get()
    assert change.payload["Reference"] == "PO 9"
    assert change.payload["LineItems"] == [
        {"Description": "Service", "Quantity": 2.0, "UnitAmount": 100.0, "AccountCode": "200", "TaxType": "OUTPUT"}
    ]


def test_edit_form_explains_refusal_when_invoice_approved(member, invoice):
    response = member.get(f"/invoices/{invoice.pk}/xero/edit/")
    assert b"DRAFT or SUBMITTED invoices only" in response.content


def test_states_partial_swaps_in_current_xero_state_when_polled(member, invoice, org):
    foreign = make_pushed_invoice(organisation=make_organisation(), xero_invoice_id="eeee", number="INV-FOREIGN")
    Invoice.objects.filter(pk=invoice.pk).update(
        status="PAID", xero_status="PAID", amount_paid=Decimal("110"), amount_due=Decimal("0")
    )
    response = member.get(f"/invoices/xero-states/?ids={invoice.pk},{foreign.pk},abc")
    body = response.content.decode()
    assert response.status_code == 200
    assert f'id="xero-status-{invoice.pk}" hx-swap-oob="true"' in body
    assert 'data-xero-status="PAID"' in body
    assert "INV-FOREIGN" not in body and f"xero-status-{foreign.pk}" not in body


def test_created_in_xero_lists_only_own_organisation_when_opened(member, org):
    XeroCreatedInvoice.objects.create(
        organisation=org,
        xero_invoice_id="aaaa",
        number="INV-9001",
        contact_name="Walk-in",
        total=Decimal("42.00"),
        status="AUTHORISED",
    )
    XeroCreatedInvoice.objects.create(organisation=make_organisation(), xero_invoice_id="bbbb", number="INV-OTHER")
    response = member.get("/invoices/created-in-xero/")
    assert response.status_code == 200
    assert b"INV-9001" in response.content and b"Walk-in" in response.content
    assert b"INV-OTHER" not in response.content


def test_created_in_xero_shows_the_one_status_vocabulary_when_listed(member, org):
    import datetime as dt

    common = {"organisation": org, "total": Decimal("42.00")}
    XeroCreatedInvoice.objects.create(xero_invoice_id="p1", number="X-PAID", status="PAID", **common)
    XeroCreatedInvoice.objects.create(
        xero_invoice_id="o1",
        number="X-LATE",
        status="AUTHORISED",
        amount_due=Decimal("42.00"),
        due_date=dt.date(2020, 1, 31),
        **common,
    )
    XeroCreatedInvoice.objects.create(xero_invoice_id="v1", number="X-VOID", status="VOIDED", **common)
    body = member.get("/invoices/created-in-xero/").content.decode()
    for key, label in (("paid", "Paid"), ("overdue", "Overdue"), ("voided", "Voided")):
        assert f'data-status="{key}">{label}</span>' in body
    assert "Authorised" not in body  # never Xero's raw word beside ours


def test_created_in_xero_hides_invoice_when_it_turns_out_to_be_ours(member, org, invoice):
    XeroCreatedInvoice.objects.create(organisation=org, xero_invoice_id=XERO_ID, number="INV-0001")
    assert b"INV-0001" not in member.get("/invoices/created-in-xero/").content


def test_batch_page_polls_xero_states_and_offers_void_when_invoice_in_xero(member, invoice):
    body = member.get(f"/batches/{invoice.batch_id}/").content.decode()
    assert f'id="xero-status-{invoice.pk}"' in body
    assert f'hx-get="/invoices/xero-states/?ids={invoice.pk}"' in body and 'hx-trigger="every 3s"' in body
    assert f'href="/invoices/{invoice.pk}/xero/void/"' in body
    assert 'href="/invoices/created-in-xero/"' in body
