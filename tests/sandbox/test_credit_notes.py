"""Credit notes, their allocations to invoices, and the enabled currencies, as the sandbox's Xero keeps them."""

from __future__ import annotations

import datetime
import re

from xero_sandbox.seed import AU_ID, sid

BONDI = sid("contact", AU_ID, "Bondi Surf School")
MAKERS = sid("contact", AU_ID, "Melbourne Makers Co-op")
MS_DATE = re.compile(r"^/Date\(\d+\+0000\)/$")


def credit_note(**overrides):
    data = {
        "Type": "ACCRECCREDIT",
        "Contact": {"ContactID": BONDI},
        "Date": "2026-03-05",
        "Status": "AUTHORISED",
        "LineItems": [{"Description": "Returned beans", "Quantity": 1, "UnitAmount": 20, "AccountCode": "200"}],
    }
    data.update(overrides)
    return data


def invoice(**overrides):
    data = {
        "Type": "ACCREC",
        "Contact": {"ContactID": BONDI},
        "Date": "2026-03-01",
        "DueDate": "2026-03-31",
        "Status": "AUTHORISED",
        "LineItems": [{"Description": "Beans", "Quantity": 2, "UnitAmount": 20, "AccountCode": "200"}],
    }
    data.update(overrides)
    return data


def _put_invoice(api, **overrides) -> dict:
    response = api.put("/Invoices", {"Invoices": [invoice(**overrides)]})
    assert response.status_code == 200, response.text
    return response.json()["Invoices"][0]


def _put_credit_note(api, **overrides) -> dict:
    response = api.put("/CreditNotes", {"CreditNotes": [credit_note(**overrides)]}, params={"unitdp": 4})
    assert response.status_code == 200, response.text
    return response.json()["CreditNotes"][0]


def _allocate(api, credit_note_id: str, invoice_id: str, amount, **params):
    body = {"Allocations": [{"Invoice": {"InvoiceID": invoice_id}, "Amount": amount, "Date": "2026-03-06"}]}
    return api.put(f"/CreditNotes/{credit_note_id}/Allocations", body, params=params)


def test_credit_note_is_created_with_its_own_number_space_and_totals_when_put(api):
    created = _put_credit_note(api, Reference="Returned goods")
    assert created["Type"] == "ACCRECCREDIT" and created["Status"] == "AUTHORISED"
    assert re.match(r"^[0-9a-f-]{36}$", created["CreditNoteID"])
    assert created["CreditNoteNumber"] == "CN-0001"  # its own series, not the invoices' INV-
    assert (created["SubTotal"], created["TotalTax"], created["Total"]) == (20.0, 2.0, 22.0)
    assert created["RemainingCredit"] == 22.0 and created["Allocations"] == []
    assert created["StatusAttributeString"] == "OK" and MS_DATE.match(created["Date"])
    # A credit note may carry the number of an invoice: the two series do not collide.
    same_as_invoice = _put_credit_note(api, CreditNoteNumber="INV-0001")
    assert same_as_invoice["CreditNoteNumber"] == "INV-0001"


def test_credit_note_keeps_four_decimal_units_when_unitdp_is_4(api):
    line = {"Description": "Refund", "Quantity": 3, "UnitAmount": "10.1234", "AccountCode": "200"}
    created = _put_credit_note(api, LineItems=[line])
    assert created["LineItems"][0]["UnitAmount"] == 10.1234
    rounded = api.put("/CreditNotes", {"CreditNotes": [credit_note(LineItems=[line])]}).json()
    assert rounded["CreditNotes"][0]["LineItems"][0]["UnitAmount"] == 10.12


def test_duplicate_number_and_bad_currency_are_refused_when_summarize_errors_false(api):
    _put_credit_note(api, CreditNoteNumber="CN-ΣΟΦΙΑ-1")
    body = {"CreditNotes": [credit_note(CreditNoteNumber="cn-σοφια-1".upper()), credit_note(CurrencyCode="XYZ")]}
    response = api.put("/CreditNotes", body, params={"summarizeErrors": "false"})
    assert response.status_code == 200
    duplicate, currency = response.json()["CreditNotes"]
    assert duplicate["HasErrors"] is True and duplicate["StatusAttributeString"] == "ERROR"
    assert [e["Message"] for e in duplicate["ValidationErrors"]] == ["Credit Note # must be unique."]
    assert "currency code 'XYZ' is not valid" in currency["ValidationErrors"][0]["Message"]
    summarized = api.put("/CreditNotes", {"CreditNotes": [credit_note(Type="ACCREC")]})
    assert summarized.status_code == 400 and summarized.json()["Type"] == "ValidationException"


def test_credit_note_put_replays_under_the_same_idempotency_key_when_retried(api):
    headers = {"Idempotency-Key": "cn-retry-1"}
    first = api.put("/CreditNotes", {"CreditNotes": [credit_note()]}, headers=headers)
    second = api.put("/CreditNotes", {"CreditNotes": [credit_note()]}, headers=headers)
    assert first.json() == second.json() and second.headers["X-Sandbox-Idempotent-Replay"] == "true"
    listed = api.get("/CreditNotes").json()["CreditNotes"]
    assert len(listed) == 1
    other = api.put("/CreditNotes", {"CreditNotes": [credit_note(Reference="x")]}, headers=headers)
    assert other.status_code == 400


def test_credit_notes_are_read_by_id_number_where_and_since_when_listed(api):
    first = _put_credit_note(api, CreditNoteNumber="CN-A")
    by_id = api.get(f"/CreditNotes/{first['CreditNoteID']}", params={"unitdp": 4}).json()["CreditNotes"][0]
    assert by_id["CreditNoteNumber"] == "CN-A" and by_id["LineItems"][0]["Description"] == "Returned beans"
    assert api.get("/CreditNotes/CN-A").json()["CreditNotes"][0]["CreditNoteID"] == first["CreditNoteID"]
    assert api.get("/CreditNotes/9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b").status_code == 404
    marker = datetime.datetime.now(datetime.UTC).isoformat()
    second = _put_credit_note(api, CreditNoteNumber="CN-B")
    found = api.get("/CreditNotes", params={"where": 'CreditNoteNumber=="CN-B"'}).json()["CreditNotes"]
    assert [c["CreditNoteID"] for c in found] == [second["CreditNoteID"]]
    since = api.get(
        "/CreditNotes", params={"page": 1, "order": "UpdatedDateUTC ASC"}, headers={"If-Modified-Since": marker}
    ).json()
    assert [c["CreditNoteNumber"] for c in since["CreditNotes"]] == ["CN-B"]
    assert since["pagination"]["itemCount"] == 1


def test_allocation_moves_credit_to_the_invoice_and_marks_both_paid_when_fully_used(api, sandbox):
    bill = _put_invoice(api)  # total 44.00
    note = _put_credit_note(
        api, LineItems=[{"Description": "x", "Quantity": 1, "UnitAmount": 40, "AccountCode": "200"}]
    )
    response = _allocate(api, note["CreditNoteID"], bill["InvoiceID"], 10, summarizeErrors="false")
    assert response.status_code == 200, response.text
    allocation = response.json()["Allocations"][0]
    assert allocation["Amount"] == 10.0 and allocation["Invoice"]["InvoiceID"] == bill["InvoiceID"]
    assert allocation["CreditNote"]["CreditNoteID"] == note["CreditNoteID"] and allocation["ValidationErrors"] == []
    after = api.get(f"/Invoices/{bill['InvoiceID']}").json()["Invoices"][0]
    assert (after["AmountCredited"], after["AmountDue"], after["Status"]) == (10.0, 34.0, "AUTHORISED")
    assert after["CreditNotes"][0]["AppliedAmount"] == 10.0
    assert after["CreditNotes"][0]["CreditNoteNumber"] == note["CreditNoteNumber"]
    held = api.get(f"/CreditNotes/{note['CreditNoteID']}").json()["CreditNotes"][0]
    assert held["RemainingCredit"] == 34.0 and held["Status"] == "AUTHORISED"
    assert [a["Amount"] for a in held["Allocations"]] == [10.0]
    assert _allocate(api, note["CreditNoteID"], bill["InvoiceID"], 34).status_code == 200
    paid = api.get(f"/Invoices/{bill['InvoiceID']}").json()["Invoices"][0]
    used = api.get(f"/CreditNotes/{note['CreditNoteID']}").json()["CreditNotes"][0]
    assert (paid["Status"], paid["AmountDue"], paid["AmountCredited"]) == ("PAID", 0.0, 44.0)
    assert (used["Status"], used["RemainingCredit"]) == ("PAID", 0.0)
    # Voiding an invoice with a credit note allocated is refused, as in Xero.
    voided = api.post(f"/Invoices/{bill['InvoiceID']}", {"InvoiceID": bill["InvoiceID"], "Status": "VOIDED"})
    assert voided.status_code == 400


def test_allocation_is_refused_when_over_credit_over_due_other_contact_or_not_authorised(api):
    small = _put_invoice(api, LineItems=[{"Description": "x", "Quantity": 1, "UnitAmount": 5, "AccountCode": "200"}])
    note = _put_credit_note(api)  # 22.00
    over_due = _allocate(api, note["CreditNoteID"], small["InvoiceID"], 6, summarizeErrors="false").json()
    assert over_due["Allocations"][0]["ValidationErrors"][0]["Message"] == (
        "The amount being allocated exceeds the amount due on the invoice."
    )
    big = _put_invoice(api)
    over_credit = _allocate(api, note["CreditNoteID"], big["InvoiceID"], 30)
    assert over_credit.status_code == 400
    assert "exceeds the remaining credit" in over_credit.json()["Elements"][0]["ValidationErrors"][0]["Message"]
    other = _put_invoice(api, Contact={"ContactID": MAKERS})
    wrong_contact = _allocate(api, note["CreditNoteID"], other["InvoiceID"], 5).json()
    assert "same contact" in wrong_contact["Elements"][0]["ValidationErrors"][0]["Message"]
    draft_note = _put_credit_note(api, Status="DRAFT")
    draft = _allocate(api, draft_note["CreditNoteID"], big["InvoiceID"], 5).json()
    assert "Only AUTHORISED credit notes" in draft["Elements"][0]["ValidationErrors"][0]["Message"]
    draft_invoice = _put_invoice(api, Status="DRAFT")
    to_draft = _allocate(api, note["CreditNoteID"], draft_invoice["InvoiceID"], 5).json()
    assert "AUTHORISED invoices" in to_draft["Elements"][0]["ValidationErrors"][0]["Message"]
    zero = _allocate(api, note["CreditNoteID"], big["InvoiceID"], 0).json()
    assert "greater than zero" in zero["Elements"][0]["ValidationErrors"][0]["Message"]
    # Nothing refused moved any money.
    assert api.get(f"/CreditNotes/{note['CreditNoteID']}").json()["CreditNotes"][0]["RemainingCredit"] == 22.0
    missing = _allocate(api, "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b", big["InvoiceID"], 5)
    assert missing.status_code == 404


def test_allocation_replays_under_the_same_idempotency_key_when_retried(api):
    bill = _put_invoice(api)
    note = _put_credit_note(api)
    headers = {"Idempotency-Key": "alloc-retry-1"}
    body = {"Allocations": [{"Invoice": {"InvoiceID": bill["InvoiceID"]}, "Amount": 10, "Date": "2026-03-06"}]}
    first = api.put(f"/CreditNotes/{note['CreditNoteID']}/Allocations", body, headers=headers)
    second = api.put(f"/CreditNotes/{note['CreditNoteID']}/Allocations", body, headers=headers)
    assert first.json() == second.json() and second.headers["X-Sandbox-Idempotent-Replay"] == "true"
    held = api.get(f"/CreditNotes/{note['CreditNoteID']}").json()["CreditNotes"][0]
    assert held["RemainingCredit"] == 12.0 and len(held["Allocations"]) == 1


def test_currencies_lists_the_organisations_enabled_currencies_when_read(api, uk_api):
    au = api.get("/Currencies").json()["Currencies"]
    assert [c["Code"] for c in au] == ["AUD", "USD", "NZD"]
    assert au[0]["Description"] == "Australian Dollar"
    assert [c["Code"] for c in uk_api.get("/Currencies").json()["Currencies"]] == ["GBP", "EUR", "USD"]
    only_usd = api.get("/Currencies", params={"where": 'Code=="USD"'}).json()["Currencies"]
    assert [c["Code"] for c in only_usd] == ["USD"]
    # A credit note in an enabled foreign currency is accepted; one the organisation has not enabled is not.
    assert _put_credit_note(api, CurrencyCode="NZD")["CurrencyCode"] == "NZD"
    assert api.put("/CreditNotes", {"CreditNotes": [credit_note(CurrencyCode="EUR")]}).status_code == 400


def test_sandbox_invoice_page_shows_the_credit_when_a_credit_note_is_allocated(api, sandbox):
    import requests

    bill = _put_invoice(api)
    note = _put_credit_note(api)
    assert _allocate(api, note["CreditNoteID"], bill["InvoiceID"], 22).status_code == 200
    page = requests.get(f"{sandbox.url}/orgs/{AU_ID}/invoices/{bill['InvoiceID']}", timeout=10).text
    assert 'id="amount-credited">22.00<' in page and 'id="amount-due">22.00<' in page
    assert "id=credit-notes" in page and note["CreditNoteNumber"] in page
    assert "id=lines-form" not in page  # credit allocated: its lines can no longer be edited, as in Xero
