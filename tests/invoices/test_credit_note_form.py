"""The new-batch form names each document for its Type (issue 12: "every status on every page says what is true in
Xero"): a credit note's card reads "Credit note 2" with a "Credit note number", offers the statuses Xero has for a
credit note (Draft, Awaiting approval, Approved; never "Awaiting payment") and no due date (Xero's credit note has
none and we send none), when the server renders it again after a validation error, without JavaScript. Field names
and the POST format stay as they are."""

from __future__ import annotations

import html
import json
import re

import pytest
from django.urls import reverse

from invoices.models import CreditNote
from tests.invoices import test_credit_note_fix
from tests.invoices.test_batch_views import form_data, line, login

pytestmark = pytest.mark.django_db
org = test_credit_note_fix.org  # the connected organisation (a fixture) its refused credit note needs


def cards(body: str) -> list[str]:
    """Each document's card of the form, in order."""
    return [part.split("</section>")[0] for part in body.split('<section class="card invoice-card"')[1:]]


def text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def status_options(card: str) -> list[str]:
    select = re.search(r'<select name="inv-\d+-status".*?</select>', card, re.S).group(0)
    return re.findall(r"<option [^>]*>([^<]*)</option>", select)


def field_of(card: str, name: str) -> str:
    """The `<div class="field ...">` opening tag around the input named `name`."""
    match = re.search(rf'(<div class="field[^>]*>)\s*<label for="id_{name}"', card)
    assert match, name
    return match.group(1)


def invoice_and_credit_note(**credit_note) -> dict:
    return form_data(
        {"customer_name": "İzmir Florist", "number": "EF-0001", "lines": [line("Roses, 2 dozen", "2", "55")]},
        {
            "customer_name": "İzmir Florist",
            "number": "CN-0001",
            "kind": "credit_note",
            "allocate_to": "EF-0001",
            "lines": [line("Wilted roses returned", "1", "20.00")],
            **credit_note,
        },
    )


def test_rerendered_form_names_a_credit_note_for_what_it_is_when_a_field_is_wrong(client, admin_a, org_a):
    data = invoice_and_credit_note(customer_name="")  # the credit note's customer missing: the form comes back
    response = login(client, admin_a).post(reverse("invoices:batch_new"), data)
    assert response.status_code == 422
    invoice, note = cards(response.content.decode())

    assert "Invoice 1" in text(invoice) and "Invoice number" in text(invoice)
    assert status_options(invoice) == ["Draft", "Awaiting approval", "Awaiting payment"]
    assert "hidden" not in field_of(invoice, "inv-0-due_date")

    assert "Credit note 2" in text(note) and "Invoice 2" not in text(note)
    assert "Credit note number" in text(note) and "Invoice number" not in text(note)
    assert "Lines of credit note 2" in text(note)
    assert "Date *" in text(note) and "Issue date" not in text(note) and "Issue date *" in text(invoice)
    assert status_options(note) == ["Draft", "Awaiting approval", "Approved"]
    assert "Awaiting payment" not in note
    assert " hidden" in field_of(note, "inv-1-due_date")  # kept in the form (and posted), not shown
    assert "Allocate to invoice" in text(note) and "credit notes only" not in text(note)
    # Field names and values as posted: the POST format is unchanged.
    for name, value in (("number", "CN-0001"), ("due_date", "2026-11-15"), ("allocate_to", "EF-0001")):
        assert f'name="inv-1-{name}" value="{value}"' in note
    assert '<option value="AUTHORISED" selected>Approved</option>' in note


def test_made_into_a_credit_note_the_card_is_renamed_when_the_server_renders_it(client, admin_a, org_a):
    data = form_data({"customer_name": "Harbour View", "lines": [line("Refund of deposit", "1", "-40.50")]})
    data["action"] = "credit_note:0"
    (note,) = cards(login(client, admin_a).post(reverse("invoices:batch_new"), data).content.decode())
    assert "Credit note 1" in text(note) and "Credit note number" in text(note)
    assert status_options(note) == ["Draft", "Awaiting approval", "Approved"]


def test_a_due_date_error_stays_visible_on_a_credit_note_when_the_date_is_wrong(client, admin_a, org_a):
    data = invoice_and_credit_note(due_date="soon")
    (_, note) = cards(login(client, admin_a).post(reverse("invoices:batch_new"), data).content.decode())
    assert "hidden" not in field_of(note, "inv-1-due_date") and "Use the form YYYY-MM-DD." in note


def test_credit_note_from_the_relabelled_form_is_created_with_the_status_chosen(client, admin_a, org_a):
    data = invoice_and_credit_note(status="SUBMITTED", allocate_to="")  # only an approved one is allocated
    response = login(client, admin_a).post(reverse("invoices:batch_new"), data)
    assert response.status_code == 302
    assert CreditNote.objects.get(organisation=org_a, number="CN-0001").status == CreditNote.Status.SUBMITTED


def test_the_new_batch_page_gives_app_js_the_words_of_each_type(client, admin_a, org_a):
    body = login(client, admin_a).get(reverse("invoices:batch_new")).content.decode()
    words = json.loads(html.unescape(re.search(r'<div id="kind-words" hidden data-kind-words="(.*?)">', body).group(1)))
    assert words["credit_note"]["number"] == "Credit note number"
    assert words["credit_note"]["statuses"]["AUTHORISED"] == "Approved"
    assert "<script" not in body.split("</head>", 1)[1]  # no inline script: the CSP allows none
    (invoice,) = cards(body)
    assert "data-kind-card" in invoice and 'data-kind-only="credit_note"' in field_of(invoice, "inv-0-allocate_to")


# ---------------------------------------------------------------- the fix page of a credit note


def test_fix_page_of_a_refused_credit_note_never_calls_it_an_invoice_nor_in_xero(client, admin_a, org):
    note = test_credit_note_fix.refused_note(org)
    body = login(client, admin_a).get(reverse("invoices:credit_note_fix", args=[note.pk])).content.decode()
    page = text(body.split('<section class="card', 1)[1].split("</section>")[0])
    assert "Fix credit note CN-0001" in page and "Credit note number CN-0001" in page
    assert "invoice" not in page.lower() and "Due date" not in page
    # Not in Xero yet: the status is the one it is sent with, as Xero names it for a credit note.
    assert "Sent to Xero as Approved" in page and "Approved in Xero" not in page


def test_created_message_counts_the_credit_note_apart_when_the_batch_has_one(client, admin_a, org_a):
    data = invoice_and_credit_note()
    response = login(client, admin_a).post(reverse("invoices:batch_new"), data, follow=True)
    body = text(response.content.decode())
    assert "created with 1 invoice and 1 credit note." in body and "2 invoices" not in body


def test_csv_created_message_counts_the_credit_note_apart_when_the_file_has_one(client, admin_a, org_a):
    from tests.invoices.test_batch_views import upload

    header = "invoice_number,customer_name,issue_date,due_date,currency,description,unit_amount,type,allocate_to"
    rows = [
        "INV-7,Émile Care,2026-11-01,2026-11-15,AUD,Roses,100,,",
        "CN-7,Émile Care,2026-11-02,2026-11-02,AUD,Wilted roses,30,Credit note,INV-7",
    ]
    content = ("\n".join([header, *rows]) + "\n").encode()
    response = upload(login(client, admin_a), "roses.csv", content=content)
    assert response.status_code == 302
    body = text(client.get(response.url).content.decode())
    assert "created with 1 invoice and 1 credit note." in body
