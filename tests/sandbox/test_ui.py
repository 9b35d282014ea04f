"""The sandbox UI: what a person does in Xero, each change firing webhooks."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
import requests

from xero_sandbox.seed import AU_ID, sid

from .test_webhooks import KEY, Receiver

BONDI = sid("contact", AU_ID, "Bondi Surf School")


@pytest.fixture
def receiver(sandbox):
    hook = Receiver()
    sandbox.set_webhook(url=hook.url, key=KEY)
    yield hook
    sandbox.set_webhook(url="")
    hook.close()


def post(sandbox, path, data):
    response = requests.post(sandbox.url + path, data=data, allow_redirects=False, timeout=10)
    assert response.status_code == 303, response.text[:300]
    return response.headers["Location"]


def test_pages_list_orgs_invoices_and_contacts_when_browsed(sandbox):
    home = requests.get(sandbox.url + "/").text
    assert "Koala Coffee Roasters (AU)" in home and "Thames Bicycle Works (UK)" in home
    assert "coordinoter-dev" in home and "/connect/token" in home
    org = requests.get(f"{sandbox.url}/orgs/{AU_ID}").text
    assert "INV-0001" in org and "AUTHORISED" in org
    contacts = requests.get(f"{sandbox.url}/orgs/{AU_ID}/contacts").text
    assert "Bondi Surf School" in contacts
    assert requests.get(f"{sandbox.url}/orgs/{AU_ID}/invoices/new").status_code == 200


def test_person_creates_invoice_in_ui_and_webhook_fires_when_saved(sandbox, receiver):
    location = post(
        sandbox,
        f"/orgs/{AU_ID}/invoices",
        {
            "contact_id": BONDI,
            "date": "2026-05-01",
            "due_date": "2026-05-15",
            "reference": "made in UI",
            "line_amount_types": "Exclusive",
            "status": "AUTHORISED",
            "line_id": ["", ""],
            "description": ["Espresso machine", ""],
            "quantity": ["1", ""],
            "unit_amount": ["1000", ""],
            "account_code": ["200", ""],
            "tax_type": ["", ""],
        },
    )
    page = requests.get(sandbox.url + location).text
    assert "Invoice created" in page and "1,100.00" in page
    assert receiver.wait_for(1)
    event = receiver.events()[0]
    assert (event["eventCategory"], event["eventType"], event["tenantId"]) == ("INVOICE", "CREATE", AU_ID)


def test_person_records_part_then_full_payment_when_invoice_is_authorised(sandbox, receiver):
    invoice = next(i for i in sandbox.invoices(AU_ID) if i["Status"] == "AUTHORISED")
    base = f"/orgs/{AU_ID}/invoices/{invoice['InvoiceID']}"
    location = post(sandbox, base + "/payment", {"amount": "100", "date": "2026-05-02", "account_code": "090"})
    assert "recorded" in requests.get(sandbox.url + location).text
    part = next(i for i in sandbox.invoices(AU_ID) if i["InvoiceID"] == invoice["InvoiceID"])
    assert (part["Status"], part["AmountPaid"], part["AmountDue"]) == ("AUTHORISED", 100.0, 230.0)
    void = post(sandbox, base + "/status", {"status": "VOIDED"})
    assert "payment or credit note allocated" in requests.get(sandbox.url + void).text
    post(sandbox, base + "/payment", {"amount": "230", "date": "2026-05-03", "account_code": "090"})
    paid = next(i for i in sandbox.invoices(AU_ID) if i["InvoiceID"] == invoice["InvoiceID"])
    assert (paid["Status"], paid["AmountDue"]) == ("PAID", 0.0)
    sandbox.flush_webhooks()
    assert len(receiver.events()) >= 2 and {e["eventType"] for e in receiver.events()} == {"UPDATE"}
    assert all(e["resourceId"] == invoice["InvoiceID"] for e in receiver.events())


def test_person_voids_and_edits_lines_when_allowed(sandbox):
    draft = next(i for i in sandbox.invoices(AU_ID) if i["Status"] == "DRAFT")
    base = f"/orgs/{AU_ID}/invoices/{draft['InvoiceID']}"
    line = draft["LineItems"][0]
    post(
        sandbox,
        base + "/lines",
        {
            "line_id": [line["LineItemID"], ""],
            "description": [line["Description"], "Extra"],
            "quantity": ["2", "1"],
            "unit_amount": ["99.95", "0.10"],
            "account_code": ["260", "200"],
            "tax_type": ["", "EXEMPTOUTPUT"],
        },
    )
    edited = next(i for i in sandbox.invoices(AU_ID) if i["InvoiceID"] == draft["InvoiceID"])
    assert [li["LineAmount"] for li in edited["LineItems"]] == [199.9, 0.1]
    assert edited["Total"] == 219.99 and edited["UpdatedDateUTC"] != draft["UpdatedDateUTC"]
    post(sandbox, base + "/status", {"status": "AUTHORISED"})
    post(sandbox, base + "/status", {"status": "VOIDED"})
    page = requests.get(sandbox.url + base).text
    assert re.search(r'id="status">VOIDED<', page)


def test_person_adds_and_renames_contact_when_using_contacts_page(sandbox, receiver):
    location = post(sandbox, f"/orgs/{AU_ID}/contacts", {"name": "Cairns Cafe", "email": "hi@cairns.example"})
    contact_id = location.split("/contacts/")[1].split("?")[0]
    post(
        sandbox,
        f"/orgs/{AU_ID}/contacts/{contact_id}",
        {"name": "Cairns Cafe & Bar", "email": "", "status": "ACTIVE"},
    )
    names = [c["Name"] for c in sandbox.contacts(AU_ID)]
    assert "Cairns Cafe & Bar" in names
    duplicate = post(sandbox, f"/orgs/{AU_ID}/contacts", {"name": "Bondi Surf School"})
    assert "already assigned" in requests.get(sandbox.url + duplicate).text
    sandbox.flush_webhooks()
    assert [e["eventType"] for e in receiver.events()] == ["CREATE", "UPDATE"]


def test_xero_deep_link_redirects_to_the_invoice_when_short_code_and_id_match(sandbox):
    short_code = requests.get(f"{sandbox.url}/_sandbox/tenants/{AU_ID}", timeout=10).json()["ShortCode"]
    invoice_id = requests.get(f"{sandbox.url}/_sandbox/tenants/{AU_ID}/invoices", timeout=10).json()[0]["InvoiceID"]
    response = requests.get(
        f"{sandbox.url}/app/{short_code}/invoicing/view/{invoice_id}", allow_redirects=False, timeout=10
    )
    assert response.status_code == 302
    assert response.headers["Location"] == f"/orgs/{AU_ID}/invoices/{invoice_id}"
    escaped = requests.get(
        f"{sandbox.url}/app/{quote(short_code, safe='')}/invoicing/view/{invoice_id}", allow_redirects=False, timeout=10
    )
    assert escaped.status_code == 302
    missing = requests.get(f"{sandbox.url}/app/{short_code}/invoicing/view/{BONDI}", timeout=10)
    assert missing.status_code == 404
