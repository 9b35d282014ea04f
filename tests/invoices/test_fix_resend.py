"""Fix and resend (issue 12, item 2): an invoice Xero refused, or that has not gone yet, can be edited (customer,
dates, reference, lines with their own account and tax), cancelled (removed, its number freed) or resent (the push
builds the payload from the lines as they are then); the history says who did what; the page's advice is true."""

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest
import responses
from django.urls import reverse

from invoices.models import CancelledInvoice, Customer, Invoice, InvoiceBatch, InvoiceEvent, InvoiceLine
from invoices.services.batches.validation import batch_problems
from invoices.services.fix import FixInvalid, FixRefused, InvoiceFix, invoice_cancel, invoice_fix, invoice_resend
from invoices.services.push.dispatch import push_organisation_dispatch
from tests.factories import (
    PASSWORD,
    chart_read_from_xero,
    make_batch,
    make_connected_organisation,
    make_connection,
    make_invoice_input,
    make_line_input,
)
from tests.invoices.conftest import INVOICES_URL

pytestmark = pytest.mark.django_db
S = Invoice.SyncState


def login(client, user):
    assert client.login(username=user.email, password=PASSWORD)
    return client


def refused_invoice(org, *, account="999", sync_state=S.FAILED) -> Invoice:
    """An invoice Xero refused because its line names its own account (the mapping cannot help it)."""
    batch = make_batch(
        organisation=org, invoices=1, eligibility=InvoiceBatch.Eligibility.ELIGIBLE, sync_state=sync_state
    )
    invoice = batch.invoices.get()
    InvoiceLine.objects.filter(invoice=invoice).update(account_code=account, description="Care hours")
    if sync_state == S.FAILED:
        invoice.sync_errors = [f"Account code '{account}' is not a valid code for this document."]
        invoice.save(update_fields=["sync_errors"])
    return invoice


def fix_post(document, *, lines: list[dict], action: str = "save", **fields) -> dict:
    """A fix page's form as posted, for an invoice or a credit note (which has no due date)."""
    data = {
        "customer_name": document.customer.name,
        "customer_email": "",
        "reference": document.reference,
        "issue_date": document.issue_date.isoformat(),
        **({"due_date": document.due_date.isoformat()} if hasattr(document, "due_date") else {}),
        "action": action,
        "lines-TOTAL_FORMS": str(len(lines) + 1),
        "lines-INITIAL_FORMS": str(len(lines)),
        "lines-MIN_NUM_FORMS": "0",
        "lines-MAX_NUM_FORMS": "50",
    }
    data.update(fields)
    for i, row in enumerate([*lines, {"description": "", "quantity": "1", "unit_amount": ""}]):
        base = {"description": "", "quantity": "1", "unit_amount": "", "account_code": "", "tax_type": ""}
        base.update(row)
        data.update({f"lines-{i}-{k}": v for k, v in base.items()})
    return data


@pytest.fixture
def chart(org_a):
    make_connection(organisation=org_a)
    chart_read_from_xero(org_a)
    return org_a


# ---------------------------------------------------------------- editing


def test_failed_invoice_is_edited_with_its_own_account_when_fixed_on_its_page(client, accountant_a, chart):
    invoice = refused_invoice(chart)
    page = login(client, accountant_a).get(reverse("invoices:invoice_fix", args=[invoice.pk]))
    assert page.status_code == 200
    assert b"Account code &#x27;999&#x27; is not a valid code" in page.content  # Xero's words beside the form
    response = client.post(
        reverse("invoices:invoice_fix", args=[invoice.pk]),
        fix_post(
            invoice,
            customer_name="Émile Care",
            reference="PO 77",
            due_date="2026-11-30",
            lines=[
                {"description": "Care hours", "quantity": "2", "unit_amount": "85.5", "account_code": "260"},
                {"description": "Travel", "quantity": "1", "unit_amount": "12.3456", "tax_type": "EXEMPTOUTPUT"},
            ],
        ),
    )
    assert response.status_code == 302 and response["Location"].endswith(f"#invoice-{invoice.pk}")
    invoice.refresh_from_db()
    assert (invoice.customer.name, invoice.reference, invoice.due_date) == (
        "Émile Care",
        "PO 77",
        dt.date(2026, 11, 30),
    )
    assert [
        (li.description, li.quantity, li.unit_amount, li.account_code, li.tax_type) for li in invoice.lines.all()
    ] == [
        ("Care hours", Decimal("2"), Decimal("85.5"), "260", ""),
        ("Travel", Decimal("1"), Decimal("12.3456"), "", "EXEMPTOUTPUT"),
    ]
    assert invoice.sync_state == S.FAILED  # saved only: nothing is sent until the person resends
    event = invoice.events.get(kind="edited")
    assert event.actor == accountant_a and "customer" in event.changes and "lines" in event.changes
    assert "999" in json.dumps(event.changes["lines"][0]) and "260" in json.dumps(event.changes["lines"][1])


def test_fix_refuses_an_account_the_xero_chart_does_not_have_when_saved(client, accountant_a, chart):
    invoice = refused_invoice(chart)
    response = login(client, accountant_a).post(
        reverse("invoices:invoice_fix", args=[invoice.pk]),
        fix_post(invoice, lines=[{"description": "Care hours", "unit_amount": "85", "account_code": "998"}]),
    )
    assert response.status_code == 422
    assert "Account 998 is not one of your active revenue accounts in Xero." in response.content.decode()
    assert invoice.lines.get().account_code == "999"  # nothing saved
    assert not invoice.events.filter(kind="edited").exists()


def test_fix_keeps_the_invoice_number_free_of_a_clash_with_itself_when_checked(chart):
    invoice = refused_invoice(chart, account="200")
    wanted = make_invoice_input(number=invoice.number, lines=[make_line_input(account_code="200")])
    assert any(p.field == "number" for p in batch_problems(organisation=chart, name="B", invoices=[wanted]))
    assert batch_problems(organisation=chart, name="B", invoices=[wanted], existing=[invoice.pk]) == []


def test_fix_is_refused_when_the_invoice_is_in_xero_or_being_sent(org_a, accountant_a):
    fix = InvoiceFix(
        customer_name="X",
        issue_date=dt.date(2026, 11, 1),
        due_date=dt.date(2026, 11, 2),
        reference="",
        lines=[make_line_input()],
    )
    for state in (S.SYNCED, S.WARNING, S.IN_FLIGHT):
        invoice = refused_invoice(org_a, sync_state=state)
        with pytest.raises(FixRefused):
            invoice_fix(organisation=org_a, invoice_id=invoice.pk, user=accountant_a, fix=fix)
        with pytest.raises(FixRefused):
            invoice_cancel(organisation=org_a, invoice_id=invoice.pk, user=accountant_a)


def test_fix_page_404s_when_the_invoice_is_another_organisations(client, admin_b, org_a):
    invoice = refused_invoice(org_a)
    login(client, admin_b)
    for name in ("invoice_fix", "invoice_cancel"):
        assert client.get(reverse(f"invoices:{name}", args=[invoice.pk])).status_code == 404
    assert client.post(reverse("invoices:invoice_resend", args=[invoice.pk])).status_code == 404


def test_fix_collects_every_problem_when_several_lines_are_wrong(chart, accountant_a):
    invoice = refused_invoice(chart)
    fix = InvoiceFix(
        customer_name="Harbour",
        issue_date=dt.date(2026, 11, 1),
        due_date=dt.date(2026, 11, 15),
        reference="",
        lines=[make_line_input(account_code="998"), make_line_input(tax_type="NOPE")],
    )
    with pytest.raises(FixInvalid) as caught:
        invoice_fix(organisation=chart, invoice_id=invoice.pk, user=accountant_a, fix=fix)
    assert {(p.line, p.field) for p in caught.value.problems} == {(0, "account_code"), (1, "tax_type")}


# ---------------------------------------------------------------- resending


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("push_settings")
def test_resend_builds_the_payload_from_the_edited_lines_when_fixed_and_resent(org_a, accountant_a, enqueued):
    fixtures = Path(__file__).resolve().parents[1] / "fixtures" / "xero"
    _, batch = make_connected_organisation(organisation=org_a, invoices=1)
    invoice = batch.invoices.get()
    InvoiceLine.objects.filter(invoice=invoice).update(account_code="999")
    Invoice.objects.filter(pk=invoice.pk).update(sync_state=S.FAILED, sync_errors=["Account code '999' is not valid"])
    fix = InvoiceFix(
        customer_name=invoice.customer.name,
        issue_date=invoice.issue_date,
        due_date=invoice.due_date,
        reference="fixed",
        lines=[make_line_input(description="Care hours", account_code="260")],
    )
    with responses.RequestsMock() as xero:  # the chart the fix is checked against
        xero.get(
            INVOICES_URL.replace("Invoices", "Accounts"), json=json.loads((fixtures / "accounts.json").read_text())
        )
        xero.get(
            INVOICES_URL.replace("Invoices", "TaxRates"), json=json.loads((fixtures / "tax_rates.json").read_text())
        )
        invoice_fix(organisation=org_a, invoice_id=invoice.pk, user=accountant_a, fix=fix, resend=True)
    invoice.refresh_from_db()
    assert invoice.sync_state == S.PENDING and invoice.sync_errors == []
    assert [item.args for item in enqueued.named("invoices.tasks.push_organisation")] == [(org_a.pk,)]
    assert list(invoice.events.values_list("kind", "actor")) == [
        ("retried", accountant_a.pk),
        ("edited", accountant_a.pk),
    ]

    push_organisation_dispatch(organisation_id=org_a.pk)
    chunk = invoice.__class__.objects.get(pk=invoice.pk).chunk
    element = chunk.payload["Invoices"][0]
    assert element["Reference"] == "fixed"
    assert [item["AccountCode"] for item in element["LineItems"]] == ["260"]  # not the refused 999 again


def test_resend_sends_a_failed_invoice_again_and_records_who_when_posted(client, accountant_a, org_a, enqueued):
    invoice = refused_invoice(org_a)
    assert login(client, accountant_a).get(reverse("invoices:invoice_resend", args=[invoice.pk])).status_code == 405
    response = client.post(reverse("invoices:invoice_resend", args=[invoice.pk]))
    assert response.status_code == 302
    invoice.refresh_from_db()
    assert invoice.sync_state == S.PENDING
    assert invoice.events.filter(kind="retried", actor=accountant_a).exists()


def test_resend_is_refused_when_the_batch_is_not_synced(org_a, admin_a):
    batch = make_batch(organisation=org_a, invoices=1)
    with pytest.raises(FixRefused, match="Send to Xero"):
        invoice_resend(organisation=org_a, invoice_id=batch.invoices.get().pk, user=admin_a)


# ---------------------------------------------------------------- cancelling


def test_cancel_removes_the_invoice_and_frees_its_number_when_confirmed(client, accountant_a, org_a):
    invoice = refused_invoice(org_a)
    number, batch_id = invoice.number, invoice.batch_id
    confirm = login(client, accountant_a).get(reverse("invoices:invoice_cancel", args=[invoice.pk]))
    assert confirm.status_code == 200 and f"Cancel {number}".encode() in confirm.content
    assert Invoice.objects.filter(pk=invoice.pk).exists()  # a GET changes nothing

    response = client.post(reverse("invoices:invoice_cancel", args=[invoice.pk]))
    assert response.status_code == 302
    assert not Invoice.objects.filter(pk=invoice.pk).exists()
    cancelled = CancelledInvoice.objects.get(batch_id=batch_id)
    assert (cancelled.number, cancelled.cancelled_by, cancelled.sync_state) == (number, accountant_a, S.FAILED)
    # The number is free again for a new batch.
    assert batch_problems(organisation=org_a, name="B", invoices=[make_invoice_input(number=number)]) == []
    page = client.get(reverse("invoices:batch_detail", args=[batch_id])).content.decode()
    assert "Cancelled invoices" in page and number in page and accountant_a.email in page


def test_cancel_keeps_the_invoices_history_when_removed(org_a, accountant_a):
    invoice = refused_invoice(org_a)
    InvoiceEvent.objects.create(
        invoice=invoice, organisation=org_a, source="system", kind="failed", message="Xero rejected it: bad account"
    )
    cancelled = invoice_cancel(organisation=org_a, invoice_id=invoice.pk, user=accountant_a)
    assert [item["message"] for item in cancelled.history] == ["Xero rejected it: bad account"]
    assert Customer.objects.filter(pk=invoice.customer_id).exists()  # the customer stays


# ---------------------------------------------------------------- the batch page


def test_batch_page_offers_fix_resend_and_cancel_and_true_advice_when_an_invoice_failed(client, accountant_a, org_a):
    invoice = refused_invoice(org_a)
    page = login(client, accountant_a).get(reverse("invoices:batch_detail", args=[invoice.batch_id])).content.decode()
    assert reverse("invoices:invoice_fix", args=[invoice.pk]) in page
    assert reverse("invoices:invoice_resend", args=[invoice.pk]) in page
    assert reverse("invoices:invoice_cancel", args=[invoice.pk]) in page
    # The old advice sent people to the mapping, which cannot change a line's own account.
    assert "an account or tax rate Xero refuses is fixed in the" not in page
    assert "a line&#x27;s own account and tax rate win over the defaults" in page or (
        "a line's own account and tax rate win over the defaults" in page
    )
