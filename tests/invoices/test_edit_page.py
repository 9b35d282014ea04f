"""The edit page of an invoice already in Xero round-trips every value exactly: ISO dates in the date inputs, amounts
as entered (never `1E+2`), four-decimal unit amounts kept through the payload and the call, and each line keeping its
own account and tax when another line is removed (issue 12, items 3 and 4)."""

import copy
import datetime as dt
import json
import re
from decimal import Decimal
from pathlib import Path

import pytest
import responses

from invoices.created_in_xero.models import XeroInvoiceChange
from invoices.models import InvoiceLine, XeroMapping
from invoices.services.outbound import invoice_change_send
from tests.factories import make_connection, make_membership, make_organisation, make_pushed_invoice, make_user

API = "https://api.xero.com/api.xro/2.0"
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "xero" / "invoice_authorised.json"
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


def draft(org, *lines: tuple[str, str, str, str, str]):
    """A DRAFT invoice in Xero dated 2 December 2026 with the given (description, qty, unit, account, tax) lines."""
    invoice = make_pushed_invoice(organisation=org, xero_invoice_id=XERO_ID, xero_updated_at=HELD, status="DRAFT")
    invoice.issue_date, invoice.due_date = dt.date(2026, 12, 2), dt.date(2026, 12, 16)
    invoice.save(update_fields=["issue_date", "due_date"])
    if lines:
        invoice.lines.all().delete()
        for position, (description, quantity, unit, account, tax) in enumerate(lines, start=1):
            InvoiceLine.objects.create(
                invoice=invoice,
                position=position,
                description=description,
                quantity=Decimal(quantity),
                unit_amount=Decimal(unit),
                account_code=account,
                tax_type=tax,
            )
    return invoice


def inputs(html: str) -> dict[str, str]:
    """Every named input's value as the page serves it (what a browser would post back unchanged)."""
    out = {}
    for tag in re.findall(r"<input[^>]*>", html):
        name = re.search(r'name="([^"]+)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if name:
            out[name.group(1)] = value.group(1) if value else ""
    return out


def test_date_inputs_hold_iso_dates_when_edit_page_opens(member, org):
    invoice = draft(org)
    html = member.get(f"/invoices/{invoice.pk}/xero/edit/").content.decode()
    fields = inputs(html)
    assert fields["issue_date"] == "2026-12-02"
    assert fields["due_date"] == "2026-12-16"
    assert 'type="date"' in html
    # Where it stands in Xero, in the one vocabulary, never Xero's raw word.
    assert f"(where it is {invoice.display_status.label})" in html


def test_amounts_are_shown_without_exponent_when_edit_page_opens(member, org):
    invoice = draft(org, ("Flowers", "10.0000", "100.0000", "", ""), ("Vase", "1.5000", "99.9950", "", ""))
    fields = inputs(member.get(f"/invoices/{invoice.pk}/xero/edit/").content.decode())
    assert (fields["lines-0-quantity"], fields["lines-0-unit_amount"]) == ("10", "100.00")
    assert (fields["lines-1-quantity"], fields["lines-1-unit_amount"]) == ("1.5", "99.995")
    assert not any("E+" in value for value in fields.values())


def test_every_value_survives_when_only_the_description_is_edited(member, org):
    invoice = draft(org, ("Flowers", "3", "99.995", "210", "EXEMPTOUTPUT"))
    fields = inputs(member.get(f"/invoices/{invoice.pk}/xero/edit/").content.decode())
    fields["lines-0-description"] = "Flowers, white"
    fields.pop("csrfmiddlewaretoken", None)
    response = member.post(f"/invoices/{invoice.pk}/xero/edit/", fields)
    assert response.status_code == 302, response.content.decode()[:2000]
    payload = XeroInvoiceChange.objects.get().payload
    assert (payload["Date"], payload["DueDate"]) == ("2026-12-02", "2026-12-16")
    assert payload["LineItems"] == [
        {
            "Description": "Flowers, white",
            "Quantity": 3,
            "UnitAmount": 99.995,
            "AccountCode": "210",
            "TaxType": "EXEMPTOUTPUT",
        }
    ]


def test_each_line_keeps_its_own_account_and_tax_when_an_earlier_line_is_removed(member, org):
    invoice = draft(
        org,
        ("Flowers", "1", "10", "210", "EXEMPTOUTPUT"),
        ("Delivery", "1", "20", "260", "OUTPUT"),
        ("Card", "1", "5", "", ""),
    )
    fields = inputs(member.get(f"/invoices/{invoice.pk}/xero/edit/").content.decode())
    fields.pop("csrfmiddlewaretoken", None)
    fields["lines-0-description"] = ""  # remove the first line
    assert member.post(f"/invoices/{invoice.pk}/xero/edit/", fields).status_code == 302
    items = XeroInvoiceChange.objects.get().payload["LineItems"]
    assert [(i["Description"], i["AccountCode"], i["TaxType"]) for i in items] == [
        ("Delivery", "260", "OUTPUT"),
        ("Card", "200", "OUTPUT"),  # no override of its own: the mapping's defaults
    ]


def test_line_ids_of_another_invoice_are_ignored_when_posted(member, org):
    invoice = draft(org, ("Flowers", "1", "10", "", ""))
    other = make_pushed_invoice(
        organisation=make_organisation(), xero_invoice_id="ffffffff-0000-4000-8000-000000000009"
    )
    other_line = other.lines.get()
    fields = inputs(member.get(f"/invoices/{invoice.pk}/xero/edit/").content.decode())
    fields.pop("csrfmiddlewaretoken", None)
    fields["lines-0-line_id"] = str(other_line.pk)  # 200 / OUTPUT: not ours to borrow
    other_line.account_code, other_line.tax_type = "999", "NOPE"
    other_line.save()
    assert member.post(f"/invoices/{invoice.pk}/xero/edit/", fields).status_code == 302
    item = XeroInvoiceChange.objects.get().payload["LineItems"][0]
    assert (item["AccountCode"], item["TaxType"]) == ("200", "OUTPUT")


def test_negative_quantity_is_refused_when_edited(member, org):
    invoice = draft(org, ("Flowers", "1", "10", "", ""))
    fields = inputs(member.get(f"/invoices/{invoice.pk}/xero/edit/").content.decode())
    fields.pop("csrfmiddlewaretoken", None)
    fields["lines-0-quantity"] = "-2"
    response = member.post(f"/invoices/{invoice.pk}/xero/edit/", fields)
    assert response.status_code == 200
    assert not XeroInvoiceChange.objects.exists()


def _xero_invoice(**changes) -> dict:
    data = copy.deepcopy(json.loads(FIXTURE.read_text())["Invoices"][0])
    data["UpdatedDateUTC"] = f"/Date({int(HELD.timestamp() * 1000)}+0000)/"
    data.update(changes)
    return data


@responses.activate
def test_four_decimal_unit_amount_reaches_xero_when_an_edit_is_sent(member, org, settings):
    settings.XERO_API_URL = API
    invoice = draft(org, ("Flowers", "3", "99.995", "", ""))
    fields = inputs(member.get(f"/invoices/{invoice.pk}/xero/edit/").content.decode())
    fields.pop("csrfmiddlewaretoken", None)
    fields["reference"] = "PO 12"
    assert member.post(f"/invoices/{invoice.pk}/xero/edit/", fields).status_code == 302
    change = XeroInvoiceChange.objects.get()
    get = responses.get(f"{API}/Invoices/{XERO_ID}", json={"Invoices": [_xero_invoice(Status="DRAFT")]})
    post = responses.post(f"{API}/Invoices/{XERO_ID}", json={"Invoices": [_xero_invoice(Status="DRAFT")]})
    invoice_change_send(change_id=change.pk)
    # Without unitdp=4 Xero rounds UnitAmount to 2 dp: 99.995 would become 100.00.
    # https://developer.xero.com/documentation/api/accounting/invoices (unitdp)
    assert "unitdp=4" in post.calls[0].request.url
    assert "unitdp=4" in get.calls[0].request.url
    assert json.loads(post.calls[0].request.body)["Invoices"][0]["LineItems"][0]["UnitAmount"] == 99.995
