"""Accounting API: shapes, totals, validation, batches, transitions, filters, idempotency."""

from __future__ import annotations

import datetime
import re
import time
from decimal import Decimal

import requests

from xero_sandbox.seed import AU_ID, sid

BONDI = sid("contact", AU_ID, "Bondi Surf School")
MS_DATE = re.compile(r"^/Date\(\d+\+0000\)/$")


def invoice(**overrides):
    data = {
        "Type": "ACCREC",
        "Contact": {"ContactID": BONDI},
        "Date": "2026-03-01",
        "DueDate": "2026-03-31",
        "LineItems": [{"Description": "Beans", "Quantity": 2, "UnitAmount": 20, "AccountCode": "200"}],
    }
    data.update(overrides)
    return data


def test_response_has_xero_envelope_dates_and_headers_when_invoice_created(api):
    response = api.put("/Invoices", {"Invoices": [invoice(Reference="R1")]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["Status"] == "OK" and body["ProviderName"] and re.match(r"^/Date\(\d+\)/$", body["DateTimeUTC"])
    assert re.match(r"^[0-9a-f-]{36}$", body["Id"])
    created = body["Invoices"][0]
    assert created["Date"] == "/Date(1772323200000+0000)/" and created["DateString"] == "2026-03-01T00:00:00"
    assert MS_DATE.match(created["DueDate"]) and MS_DATE.match(created["UpdatedDateUTC"])
    assert created["StatusAttributeString"] == "OK" and created["Status"] == "DRAFT"
    assert created["InvoiceNumber"] == "INV-0003"  # the seed used INV-0001 and INV-0002
    assert created["Contact"]["ContactID"] == BONDI and created["CurrencyCode"] == "AUD"
    assert '"SubTotal":40.00' in response.text and '"Quantity":2.0000' in response.text
    for header in (
        "Xero-Correlation-Id",
        "X-MinLimit-Remaining",
        "X-DayLimit-Remaining",
        "X-AppMinLimit-Remaining",
    ):
        assert header in response.headers


def test_totals_follow_xero_rounding_when_exclusive_inclusive_or_notax(api):
    lines = [
        {"Description": "a", "Quantity": 3, "UnitAmount": "33.333", "AccountCode": "200"},
        {"Description": "b", "Quantity": 1, "UnitAmount": "0.25", "AccountCode": "200"},
        {"Description": "c", "Quantity": "1.5", "UnitAmount": "10.01", "AccountCode": "270"},
    ]
    batch = [invoice(LineItems=lines, LineAmountTypes=kind) for kind in ("Exclusive", "Inclusive", "NoTax")]
    result = api.put("/Invoices", {"Invoices": batch}).json()["Invoices"]
    exclusive, inclusive, notax = result
    # 3 x 33.33 = 99.99 (tax 10.00 after rounding 9.999); 0.25 (tax 0.025 -> 0.03); 15.02 GST-free
    assert [line["LineAmount"] for line in exclusive["LineItems"]] == [99.99, 0.25, 15.02]
    assert [line["TaxAmount"] for line in exclusive["LineItems"]] == [10.0, 0.03, 0.0]
    assert (exclusive["SubTotal"], exclusive["TotalTax"], exclusive["Total"]) == (115.26, 10.03, 125.29)
    # inclusive: tax = amount x 10/110 per line, rounded: 9.09, 0.02
    assert [line["TaxAmount"] for line in inclusive["LineItems"]] == [9.09, 0.02, 0.0]
    assert (inclusive["SubTotal"], inclusive["TotalTax"], inclusive["Total"]) == (106.15, 9.11, 115.26)
    assert (notax["SubTotal"], notax["TotalTax"], notax["Total"]) == (115.26, 0.0, 115.26)
    assert exclusive["AmountDue"] == 125.29


def test_discounts_and_unitdp_are_applied_when_requested(api):
    line = {
        "Description": "x",
        "Quantity": 3,
        "UnitAmount": "9.9999",
        "DiscountRate": 10,
        "AccountCode": "200",
    }
    created = api.put("/Invoices", {"Invoices": [invoice(LineItems=[line])]}, params={"unitdp": 4}).json()
    item = created["Invoices"][0]["LineItems"][0]
    assert item["UnitAmount"] == 9.9999 and item["LineAmount"] == 27.0  # 29.9997 less 10% = 26.99973
    assert created["Invoices"][0]["IsDiscounted"] is True


def test_uk_org_uses_its_own_tax_regime_when_invoicing(uk_api):
    lines = [
        {"Description": "Service", "Quantity": 1, "UnitAmount": 100, "AccountCode": "200"},
        {
            "Description": "Export",
            "Quantity": 1,
            "UnitAmount": 50,
            "AccountCode": "200",
            "TaxType": "ZERORATEDOUTPUT",
        },
    ]
    created = uk_api.put("/Invoices", {"Invoices": [invoice(Contact={"Name": "New UK Customer"}, LineItems=lines)]})
    body = created.json()["Invoices"][0]
    assert [line["TaxType"] for line in body["LineItems"]] == ["OUTPUT2", "ZERORATEDOUTPUT"]
    assert (body["TotalTax"], body["Total"], body["CurrencyCode"]) == (20.0, 170.0, "GBP")
    wrong = uk_api.put("/Invoices", {"Invoices": [invoice(LineItems=[dict(lines[0], TaxType="OUTPUT")])]})
    assert wrong.status_code == 400


def test_batch_answers_400_with_only_failures_and_keeps_valid_when_summarize_errors_default(api, sandbox):
    good = invoice(Reference="good one")
    archived = invoice(LineItems=[{"Description": "x", "Quantity": 1, "UnitAmount": 5, "AccountCode": "280"}])
    bad_tax = invoice(
        LineItems=[{"Description": "x", "Quantity": 1, "UnitAmount": 5, "AccountCode": "200", "TaxType": "INPUT"}]
    )
    response = api.put("/Invoices", {"Invoices": [good, archived, bad_tax]})
    assert response.status_code == 400
    body = response.json()
    assert body["ErrorNumber"] == 10 and body["Type"] == "ValidationException"
    assert body["Message"] == "A validation exception occurred"
    messages = [[e["Message"] for e in element["ValidationErrors"]] for element in body["Elements"]]
    assert messages == [
        ["Account code '280' has been archived, or deleted. Each line item must reference a valid account."],
        ["The TaxType code 'INPUT' cannot be used with account code '200'."],
    ]
    references = [i["Reference"] for i in sandbox.invoices(AU_ID)]
    assert "good one" in references  # the valid element was created although the call failed


def test_batch_answers_200_with_every_element_when_summarize_errors_false(api):
    expense_line = {
        "Description": "x",
        "Quantity": 1,
        "UnitAmount": 5,
        "AccountCode": "400",
        "TaxType": "EXEMPTOUTPUT",
    }
    warning = invoice(LineItems=[expense_line])
    batch = [invoice(), invoice(InvoiceNumber="INV-0001"), warning]
    response = api.put("/Invoices", {"Invoices": batch}, params={"summarizeErrors": "false"})
    assert response.status_code == 200
    ok, duplicate, warned = response.json()["Invoices"]
    assert ok["StatusAttributeString"] == "OK" and ok["ValidationErrors"] == [] and ok["InvoiceID"]
    assert duplicate["StatusAttributeString"] == "ERROR" and duplicate["HasErrors"] is True
    assert duplicate["ValidationErrors"] == [{"Message": "Invoice # must be unique."}]
    assert warned["StatusAttributeString"] == "WARNING" and warned["Warnings"][0]["Message"]


def test_validation_requires_type_contact_lines_and_valid_dates_when_creating(api):
    response = api.put("/Invoices", {"Invoices": [{"Date": "2026-02-30"}]})
    messages = [e["Message"] for e in response.json()["Elements"][0]["ValidationErrors"]]
    assert "Invoice Type must be specified." in messages
    assert "A Contact must be specified for this type of transaction" in messages
    assert "Invoices must have at least one line item." in messages
    assert any("Date '2026-02-30' is not a valid date" in m for m in messages)
    unknown = api.put("/Invoices", {"Invoices": [invoice(LineItems=[{"Description": "x", "AccountCode": "999"}])]})
    assert unknown.json()["Elements"][0]["ValidationErrors"] == [
        {"Message": "Account code '999' is not a valid code for this document."}
    ]


def test_malformed_json_and_where_answer_400_when_unparseable(api):
    response = api.http.put(api.base + "/Invoices", data=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and response.json()["Type"] == "PostDataInvalidException"
    assert api.get("/Invoices", params={"where": 'Status=="DRAFT" AND ('}).status_code == 400


def test_status_transitions_follow_xero_rules_when_updating(sandbox, au_tenant):
    from .conftest import Api

    tokens = sandbox.connect("offline_access accounting.invoices accounting.payments")
    api = Api(sandbox, tokens["access_token"], au_tenant)
    draft = api.put("/Invoices", {"Invoices": [invoice()]}).json()["Invoices"][0]
    paid = api.post(f"/Invoices/{draft['InvoiceID']}", {"Invoices": [{"Status": "PAID"}]})
    assert paid.status_code == 400
    voided = api.post(f"/Invoices/{draft['InvoiceID']}", {"Invoices": [{"Status": "VOIDED"}]})
    assert "Only AUTHORISED invoices can be voided" in voided.text
    approved = api.post(f"/Invoices/{draft['InvoiceID']}", {"Invoices": [{"Status": "AUTHORISED"}]})
    assert approved.json()["Invoices"][0]["Status"] == "AUTHORISED"
    deleted = api.post(f"/Invoices/{draft['InvoiceID']}", {"Invoices": [{"Status": "DELETED"}]})
    assert (
        deleted.json()["Elements"][0]["ValidationErrors"][0]["Message"]
        == "Invoice not of valid status for modification"
    )
    payment = {
        "Invoice": {"InvoiceID": draft["InvoiceID"]},
        "Account": {"Code": "090"},
        "Amount": 10,
        "Date": "2026-03-05",
    }
    assert api.put("/Payments", {"Payments": [payment]}).status_code == 200
    blocked = api.post(f"/Invoices/{draft['InvoiceID']}", {"Invoices": [{"Status": "VOIDED"}]})
    assert "has a payment or credit note allocated" in blocked.text
    rest = api.put("/Payments", {"Payments": [dict(payment, Amount=34)]}).json()["Payments"][0]
    assert rest["Amount"] == 34.0
    final = api.get(f"/Invoices/{draft['InvoiceID']}").json()["Invoices"][0]
    assert (final["Status"], final["AmountPaid"], final["AmountDue"]) == ("PAID", 44.0, 0.0)
    assert MS_DATE.match(final["FullyPaidOnDate"]) and len(final["Payments"]) == 2
    other = api.put("/Invoices", {"Invoices": [invoice(Status="AUTHORISED")]}).json()["Invoices"][0]
    assert api.post(f"/Invoices/{other['InvoiceID']}", {"Status": "VOIDED"}).json()["Invoices"][0]["Status"] == "VOIDED"
    again = api.post(f"/Invoices/{other['InvoiceID']}", {"Reference": "changed"})
    assert again.status_code == 400


def test_deleted_draft_frees_its_number_when_reused(api):
    first = api.put("/Invoices", {"Invoices": [invoice(InvoiceNumber="X-1")]}).json()["Invoices"][0]
    assert api.post(f"/Invoices/{first['InvoiceID']}", {"Status": "DELETED"}).status_code == 200
    assert api.put("/Invoices", {"Invoices": [invoice(InvoiceNumber="X-1")]}).status_code == 200


def test_post_updates_existing_invoice_when_invoice_number_matches(api):
    created = api.put("/Invoices", {"Invoices": [invoice(InvoiceNumber="ORD-77")]}).json()["Invoices"][0]
    time.sleep(0.01)
    lines = [{"Description": "More beans", "Quantity": 5, "UnitAmount": 20, "AccountCode": "200"}]
    updated = api.post("/Invoices", {"Invoices": [invoice(InvoiceNumber="ORD-77", LineItems=lines)]})
    body = updated.json()["Invoices"][0]
    assert body["InvoiceID"] == created["InvoiceID"] and body["Total"] == 110.0
    assert body["UpdatedDateUTC"] > created["UpdatedDateUTC"]
    assert len(api.get("/Invoices", params={"InvoiceNumbers": "ORD-77"}).json()["Invoices"]) == 1
    unchanged = api.post(f"/Invoices/{created['InvoiceID']}", {"Reference": ""}).json()["Invoices"][0]
    assert unchanged["UpdatedDateUTC"] == body["UpdatedDateUTC"]


def test_get_invoices_filters_and_pages_when_parameters_given(api):
    batch = [invoice(Reference=f"ref-{i}", Status="AUTHORISED" if i % 2 else "DRAFT") for i in range(5)]
    created = api.put("/Invoices", {"Invoices": batch}).json()["Invoices"]
    everything = api.get("/Invoices").json()
    assert "pagination" not in everything and everything["Invoices"][0]["LineItems"] == []
    paged = api.get("/Invoices", params={"page": 2, "pageSize": 3}).json()
    assert paged["pagination"] == {"page": 2, "pageSize": 3, "pageCount": 3, "itemCount": 7}
    assert len(paged["Invoices"]) == 3 and paged["Invoices"][0]["LineItems"]
    ids = ",".join(i["InvoiceID"] for i in created[:2])
    assert len(api.get("/Invoices", params={"IDs": ids}).json()["Invoices"]) == 2
    statuses = api.get("/Invoices", params={"Statuses": "AUTHORISED"}).json()["Invoices"]
    assert {i["Status"] for i in statuses} == {"AUTHORISED"} and len(statuses) == 3  # 2 new + 1 seeded
    where = api.get("/Invoices", params={"where": 'Status=="DRAFT" AND Reference.StartsWith("ref-")'}).json()
    assert len(where["Invoices"]) == 3
    numbers = api.get("/Invoices", params={"InvoiceNumbers": created[0]["InvoiceNumber"]}).json()["Invoices"]
    assert [i["InvoiceID"] for i in numbers] == [created[0]["InvoiceID"]]
    contact = api.get("/Invoices", params={"ContactIDs": BONDI}).json()["Invoices"]
    assert len(contact) == 6
    search = api.get("/Invoices", params={"searchTerm": "REF-3"}).json()["Invoices"]
    assert [i["Reference"] for i in search] == ["ref-3"]
    ordered = api.get("/Invoices", params={"order": "InvoiceNumber DESC"}).json()["Invoices"]
    assert ordered[0]["InvoiceNumber"] == "INV-0007"
    by_date = api.get("/Invoices", params={"where": "Date >= DateTime(2026, 03, 01) AND Total > 40"}).json()
    assert all(i["Total"] > 40 for i in by_date["Invoices"])


def test_if_modified_since_returns_only_changed_invoices_when_header_sent(api):
    marker = datetime.datetime.now(datetime.UTC).isoformat()
    assert len(api.get("/Invoices", headers={"If-Modified-Since": marker}).json()["Invoices"]) == 0
    created = api.put("/Invoices", {"Invoices": [invoice()]}).json()["Invoices"][0]
    changed = api.get("/Invoices", headers={"If-Modified-Since": marker}).json()["Invoices"]
    assert [i["InvoiceID"] for i in changed] == [created["InvoiceID"]]


def test_get_invoice_by_number_and_online_url_when_authorised(api, sandbox):
    created = api.put("/Invoices", {"Invoices": [invoice(Status="AUTHORISED")]}).json()["Invoices"][0]
    by_number = api.get(f"/Invoices/{created['InvoiceNumber']}").json()["Invoices"][0]
    assert by_number["InvoiceID"] == created["InvoiceID"]
    online = api.get(f"/Invoices/{created['InvoiceID']}/OnlineInvoice").json()
    url = online["OnlineInvoices"][0]["OnlineInvoiceUrl"]
    assert url.startswith(sandbox.url) and created["InvoiceNumber"] in requests.get(url).text
    draft = api.put("/Invoices", {"Invoices": [invoice()]}).json()["Invoices"][0]
    assert api.get(f"/Invoices/{draft['InvoiceID']}/OnlineInvoice").status_code == 400
    assert api.get("/Invoices/00000000-0000-0000-0000-000000000000").status_code == 404


def test_contacts_enforce_unique_name_and_number_when_created(api):
    new = {"Name": "Sydney Skate Co", "ContactNumber": "CUS-1", "EmailAddress": "a@b.example"}
    created = api.put("/Contacts", {"Contacts": [new]})
    assert created.status_code == 200
    contact = created.json()["Contacts"][0]
    duplicate = api.put("/Contacts", {"Contacts": [dict(new, ContactNumber="CUS-2")]})
    assert duplicate.status_code == 400
    assert "The contact name Sydney Skate Co is already assigned to another contact" in duplicate.text
    number = api.put("/Contacts", {"Contacts": [dict(new, Name="Other")]})
    assert number.status_code == 400 and "CUS-1" in number.text
    by_number = api.get("/Contacts/CUS-1").json()["Contacts"][0]
    assert by_number["ContactID"] == contact["ContactID"]
    assert api.get(f"/Contacts/{contact['ContactID']}").json()["Contacts"][0]["Name"] == "Sydney Skate Co"
    renamed = api.post(f"/Contacts/{contact['ContactID']}", {"Contacts": [{"Name": "Sydney Skate Company"}]})
    assert renamed.json()["Contacts"][0]["Name"] == "Sydney Skate Company"
    upsert = api.post("/Contacts", {"Contacts": [{"ContactNumber": "CUS-1", "EmailAddress": "new@b.example"}]})
    assert upsert.json()["Contacts"][0]["ContactID"] == contact["ContactID"]


def test_contacts_search_where_and_archive_when_listing(api):
    api.put("/Contacts", {"Contacts": [{"Name": "Archived Pty", "ContactStatus": "ARCHIVED"}]})
    names = [c["Name"] for c in api.get("/Contacts").json()["Contacts"]]
    assert "Archived Pty" not in names and "Bondi Surf School" in names
    archived = api.get("/Contacts", params={"includeArchived": "true"}).json()["Contacts"]
    assert "Archived Pty" in [c["Name"] for c in archived]
    assert [c["Name"] for c in api.get("/Contacts", params={"searchTerm": "BONDI"}).json()["Contacts"]] == [
        "Bondi Surf School"
    ]
    where = api.get("/Contacts", params={"where": 'Name=="Perth Pet Supplies"'}).json()["Contacts"]
    assert len(where) == 1
    paged = api.get("/Contacts", params={"page": 1}).json()
    assert paged["pagination"]["itemCount"] == 3


def test_invoice_with_contact_name_creates_contact_when_unknown(api, sandbox):
    created = api.put("/Invoices", {"Invoices": [invoice(Contact={"Name": "Walk-in Customer"})]})
    assert created.status_code == 200
    contact = created.json()["Invoices"][0]["Contact"]
    assert contact["Name"] == "Walk-in Customer"
    stored = [c for c in sandbox.contacts(AU_ID) if c["Name"] == "Walk-in Customer"]
    assert stored and stored[0]["IsCustomer"] is True


def test_settings_endpoints_return_chart_taxes_and_org_when_read(api, uk_api):
    accounts = api.get("/Accounts").json()["Accounts"]
    sales = next(a for a in accounts if a["Code"] == "200")
    assert (sales["Type"], sales["Status"], sales["Class"], sales["TaxType"]) == (
        "REVENUE",
        "ACTIVE",
        "REVENUE",
        "OUTPUT",
    )
    assert any(a["Status"] == "ARCHIVED" and a["Class"] == "REVENUE" for a in accounts)
    active_revenue = api.get("/Accounts", params={"where": 'Status=="ACTIVE" AND Class=="REVENUE"'}).json()
    assert {a["Code"] for a in active_revenue["Accounts"]} == {"200", "260", "270"}
    taxes = {t["TaxType"]: t for t in api.get("/TaxRates").json()["TaxRates"]}
    assert taxes["OUTPUT"]["CanApplyToRevenue"] is True and taxes["INPUT"]["CanApplyToRevenue"] is False
    assert "EXEMPTOUTPUT" in taxes and "BASEXCLUDED" in taxes
    uk_taxes = {t["TaxType"] for t in uk_api.get("/TaxRates").json()["TaxRates"]}
    assert {"OUTPUT2", "ZERORATEDOUTPUT"} <= uk_taxes
    au_org = api.get("/Organisation").json()["Organisations"][0]
    uk_org = uk_api.get("/Organisation").json()["Organisations"][0]
    assert (au_org["BaseCurrency"], uk_org["BaseCurrency"]) == ("AUD", "GBP")
    assert au_org["ShortCode"] != uk_org["ShortCode"] and au_org["Name"] != uk_org["Name"]


def test_idempotency_key_replays_first_response_when_same_body_is_retried(api, sandbox):
    headers = {"Idempotency-Key": "push-chunk-1"}
    first = api.put("/Invoices", {"Invoices": [invoice()]}, headers=headers)
    second = api.put("/Invoices", {"Invoices": [invoice()]}, headers=headers)
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert second.headers["X-Sandbox-Idempotent-Replay"] == "true"
    assert second.headers["Xero-Correlation-Id"] != first.headers["Xero-Correlation-Id"]
    assert len(sandbox.invoices(AU_ID)) == 3
    different = api.put("/Invoices", {"Invoices": [invoice(Reference="other")]}, headers=headers)
    assert different.status_code == 400
    too_long = api.put("/Invoices", {"Invoices": [invoice()]}, headers={"Idempotency-Key": "k" * 129})
    assert too_long.status_code == 400


def test_idempotency_key_expires_after_six_scaled_minutes_when_reused_late(api, sandbox):
    sandbox.settings(time_scale=720)  # 6 minutes -> 0.5 s
    headers = {"Idempotency-Key": "late-retry"}
    first = api.put("/Invoices", {"Invoices": [invoice()]}, headers=headers).json()["Invoices"][0]
    time.sleep(0.6)
    second = api.put("/Invoices", {"Invoices": [invoice()]}, headers=headers).json()["Invoices"][0]
    assert second["InvoiceID"] != first["InvoiceID"]


def test_payload_over_three_and_a_half_megabytes_is_rejected_when_sent(api):
    big = {"Invoices": [invoice(Reference="x" * (3 * 1024 * 1024 + 600 * 1024))]}
    try:
        response = api.put("/Invoices", big)
        assert response.status_code == 413
    except requests.ConnectionError:
        pass  # the server may close before the client finished sending
    assert api.get("/Invoices").status_code == 200


def test_sending_more_than_contact_id_updates_contact_when_invoice_saved(api, sandbox):
    api.put(
        "/Invoices",
        {"Invoices": [invoice(Contact={"ContactID": BONDI, "EmailAddress": "new@bondi.example"})]},
    )
    bondi = next(c for c in sandbox.contacts(AU_ID) if c["ContactID"] == BONDI)
    assert bondi["EmailAddress"] == "new@bondi.example"


def test_editing_lines_replaces_lines_without_ids_when_updating(api):
    created = api.put("/Invoices", {"Invoices": [invoice()]}).json()["Invoices"][0]
    kept = created["LineItems"][0]
    lines = [
        {"LineItemID": kept["LineItemID"], "Quantity": 4},
        {"Description": "Grinder", "Quantity": 1, "UnitAmount": "100", "AccountCode": "200"},
    ]
    updated = api.post(f"/Invoices/{created['InvoiceID']}", {"LineItems": lines}).json()["Invoices"][0]
    assert updated["LineItems"][0]["LineItemID"] == kept["LineItemID"]
    assert [line["LineAmount"] for line in updated["LineItems"]] == [80.0, 100.0]
    assert Decimal(str(updated["Total"])) == Decimal("198.00")


def test_a_batch_keeps_its_valid_elements_and_nothing_of_a_refused_one_when_saved_in_one_transaction(api):
    """The elements of one PUT are saved in one transaction, each under a savepoint: a refused element leaves
    nothing behind, the valid ones around it are kept."""
    before = len(api.get("/Invoices").json()["Invoices"])
    refused = invoice(InvoiceNumber="INV-SP-2", LineItems=[{"Description": "x", "AccountCode": "999"}])
    batch = [invoice(InvoiceNumber="INV-SP-1"), refused, invoice(InvoiceNumber="INV-SP-3")]
    response = api.put("/Invoices", {"Invoices": batch}, params={"summarizeErrors": "false"})
    assert [e["StatusAttributeString"] for e in response.json()["Invoices"]] == ["OK", "ERROR", "OK"]
    numbers = [i["InvoiceNumber"] for i in api.get("/Invoices").json()["Invoices"]]
    assert len(numbers) == before + 2
    assert "INV-SP-1" in numbers and "INV-SP-3" in numbers and "INV-SP-2" not in numbers


def test_json_keeps_the_scale_of_money_and_never_takes_a_string_for_a_number():
    from xero_sandbox.util import dumps

    text = dumps({"Total": Decimal("40.00"), "Price": Decimal("-2.0000"), "Note": "\x00D12.5\x00", "n": 3})
    assert text == '{"Total":40.00,"Price":-2.0000,"Note":"\\u0000D12.5\\u0000","n":3}'
