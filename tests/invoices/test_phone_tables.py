"""Tables readable on a 390-pixel phone (issue 12): the batch list, the invoice list and the batch page's tables stack
into cards there (static/css/app.css `.stack-table`), and each cell carries its column's name so nothing is cut off
or left unnamed. The browser tests measure the pages at 390 px."""

from html.parser import HTMLParser

import pytest
from django.urls import reverse

from invoices.models import Invoice, InvoiceBatch
from tests.factories import PASSWORD, make_batch

pytestmark = pytest.mark.django_db


class Tables(HTMLParser):
    """Every table of a page: its classes, and for each body row the data-label of each cell (None when missing)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[dict] = []
        self.stack: list[dict] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            table = {"class": attrs.get("class") or "", "rows": [], "headers": 0, "in_body": False}
            self.tables.append(table)
            self.stack.append(table)
        elif not self.stack:
            return
        elif tag == "th" and not self.stack[-1]["in_body"]:
            self.stack[-1]["headers"] += 1
        elif tag == "tbody":
            self.stack[-1]["in_body"] = True
        elif tag == "tr" and self.stack[-1]["in_body"]:
            self.stack[-1]["rows"].append([])
        elif tag == "td" and self.stack[-1]["in_body"] and self.stack[-1]["rows"]:
            self.stack[-1]["rows"][-1].append(attrs.get("data-label"))

    def handle_endtag(self, tag):
        if tag == "table" and self.stack:
            self.stack.pop()


def tables(html: str) -> list[dict]:
    parser = Tables()
    parser.feed(html)
    return parser.tables


def assert_stacked(html: str, min_tables: int = 1) -> None:
    found = [t for t in tables(html) if "stack-table" in t["class"].split()]
    assert len(found) >= min_tables
    for table in found:
        for row in table["rows"]:
            if len(row) == 1:
                continue  # an empty-state row spanning the table
            assert None not in row, table
            assert len(row) == table["headers"], table


@pytest.fixture
def signed_in(client, admin_a):
    assert client.login(username=admin_a.email, password=PASSWORD)
    return client


def test_batch_list_stacks_with_every_cell_named_when_shown_on_a_phone(signed_in, org_a):
    make_batch(organisation=org_a, invoices=2)
    assert_stacked(signed_in.get(reverse("invoices:batch_list")).content.decode())
    assert_stacked(signed_in.get(reverse("invoices:dashboard")).content.decode())


def test_invoice_list_stacks_with_every_cell_named_when_shown_on_a_phone(signed_in, org_a):
    make_batch(organisation=org_a, invoices=2)
    assert_stacked(signed_in.get(reverse("invoices:invoice_list")).content.decode())


def test_batch_page_lines_and_payments_stack_when_shown_on_a_phone(signed_in, org_a):
    batch = make_batch(organisation=org_a, invoices=2, eligibility=InvoiceBatch.Eligibility.ELIGIBLE)
    Invoice.objects.filter(batch=batch).update(sync_state=Invoice.SyncState.FAILED)
    html = signed_in.get(reverse("invoices:batch_detail", args=[batch.pk])).content.decode()
    assert_stacked(html, min_tables=2)  # each invoice's lines
    assert 'class="table invoice-table"' in html  # the invoices themselves: phone cards of their own
