"""The invoice list across batches (issue 12): filters by the status vocabulary, customer (canonical names), dates and
overdue, sorting, pagination, another organisation's invoices never shown, and a CSV export whose cells cannot run as
formulas in a spreadsheet."""

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from django.urls import reverse

from invoices.invoice_list.views import csv_cell
from invoices.models import Invoice
from tests.factories import PASSWORD, make_batch, make_customer

pytestmark = pytest.mark.django_db
S = Invoice.SyncState


def login(client, user):
    assert client.login(username=user.email, password=PASSWORD)
    return client


@pytest.fixture
def invoices(org_a, org_b):
    """Four invoices of org A in two batches (paid, overdue, failed, not synced) and one of org B."""
    synced = make_batch(organisation=org_a, invoices=2, eligibility="eligible", sync_state=S.SYNCED)
    paid, overdue = synced.invoices.order_by("pk")
    Invoice.objects.filter(pk=paid.pk).update(
        xero_status="PAID", amount_paid=Decimal("110"), amount_due=0, issue_date=dt.date(2026, 10, 1)
    )
    Invoice.objects.filter(pk=overdue.pk).update(
        xero_status="AUTHORISED", due_date=dt.date(2020, 1, 1), issue_date=dt.date(2019, 12, 1), total=Decimal("5")
    )
    other = make_batch(organisation=org_a, invoices=2, eligibility="eligible", sync_state=S.FAILED)
    failed, unsent = other.invoices.order_by("pk")
    straße = make_customer(organisation=org_a, name="Straße GmbH")
    Invoice.objects.filter(pk=failed.pk).update(customer=straße, total=Decimal("999"))
    Invoice.objects.filter(pk=unsent.pk).update(sync_state=S.NOT_SYNCED, reference='=HYPERLINK("http://x")')
    make_batch(organisation=org_b, invoices=1, sync_state=S.FAILED)
    return {"paid": paid.number, "overdue": overdue.number, "failed": failed.number, "unsent": unsent.number}


def numbers(client, **params) -> list[str]:
    response = client.get(reverse("invoices:invoice_list"), params)
    assert response.status_code == 200
    return [inv.number for inv in response.context["page"].object_list]


def test_every_invoice_of_the_organisation_is_listed_across_batches_and_no_other(client, accountant_a, invoices, org_b):
    listed = numbers(login(client, accountant_a))
    assert sorted(listed) == sorted([invoices["paid"], invoices["overdue"], invoices["failed"], invoices["unsent"]])
    assert not set(listed) & set(Invoice.objects.filter(organisation=org_b).values_list("number", flat=True))


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status": "paid"}, ["paid"]),
        ({"status": "failed"}, ["failed"]),
        ({"status": "not_synced"}, ["unsent"]),
        ({"status": "overdue"}, ["overdue"]),
        ({"overdue": "1"}, ["overdue"]),
        ({"customer": "STRASSE"}, ["failed"]),  # the canonical form: ß is ss
        ({"from": "2026-09-01", "to": "2026-10-31"}, ["paid"]),
        ({"to": "2019-12-31"}, ["overdue"]),
    ],
)
def test_filters_narrow_the_list_when_given(client, accountant_a, invoices, params, expected):
    assert numbers(login(client, accountant_a), **params) == [invoices[key] for key in expected]


def test_unknown_or_malformed_filters_are_ignored_rather_than_an_error(client, accountant_a, invoices):
    assert len(numbers(login(client, accountant_a), status="nope", sort="drop table", **{"from": "31/12/2026"})) == 4


def test_sorting_by_total_and_date_orders_the_rows(client, accountant_a, invoices):
    login(client, accountant_a)
    assert numbers(client, sort="-total")[0] == invoices["failed"]
    assert numbers(client, sort="total")[0] == invoices["overdue"]
    assert numbers(client, sort="date")[0] == invoices["overdue"]


def test_pages_hold_fifty_invoices_each(client, accountant_a, org_a):
    make_batch(organisation=org_a, invoices=51)
    login(client, accountant_a)
    first = client.get(reverse("invoices:invoice_list"))
    assert len(first.context["page"].object_list) == 50 and first.context["page"].paginator.num_pages == 2
    second = numbers(client, page=2)
    assert len(second) == 1 and second[0] not in [i.number for i in first.context["page"].object_list]


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_csv_cell_is_quoted_when_it_starts_like_a_formula(start):
    assert csv_cell(f"{start}1+1") == f"'{start}1+1"


def test_csv_cell_is_unchanged_when_it_is_plain_text():
    assert csv_cell("Harbour View") == "Harbour View" and csv_cell("İzmir = Foods") == "İzmir = Foods"


def test_export_downloads_the_filtered_invoices_with_formulas_defused(client, accountant_a, invoices, org_a):
    formula = make_customer(organisation=org_a, name="@SUM(A1:A9)")
    Invoice.objects.filter(number=invoices["unsent"]).update(customer=formula)
    response = login(client, accountant_a).get(reverse("invoices:invoice_export"), {"status": "not_synced"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    table = list(csv.reader(io.StringIO(body)))
    assert table[0][:3] == ["Invoice number", "Batch", "Customer"]
    assert len(table) == 2
    row = dict(zip(table[0], table[1], strict=True))
    assert row["Invoice number"] == invoices["unsent"]
    assert row["Customer"] == "'@SUM(A1:A9)"
    assert row["Reference"] == '\'=HYPERLINK("http://x")'
    assert row["Status"] == "Not synced" and row["Total"] == "110.00"


def test_export_never_includes_another_organisations_invoices(client, admin_b, invoices):
    response = login(client, admin_b).get(reverse("invoices:invoice_export"))
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    assert len(list(csv.reader(io.StringIO(body)))) == 2  # header and org B's one invoice
    assert invoices["paid"] not in body


def test_list_and_export_need_a_signed_in_member(client, invoices):
    assert client.get(reverse("invoices:invoice_list")).status_code == 302
    assert client.get(reverse("invoices:invoice_export")).status_code == 302
