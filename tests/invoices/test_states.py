"""One status vocabulary (issue 12, item 5): the pure decision, the same decision as database filters, and the pages
that show it: the invoice rows' badges, the batch progress (in Xero and failures counted apart; never 100% in Xero
when it is not), the batch list and the dashboard (voided invoices are not counted as in Xero)."""

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from django.urls import reverse

from invoices.models import Invoice
from invoices.selectors import batch_list, batch_progress, invoice_sync_counts
from invoices.states import Group, InvoiceStatus, invoice_status, status_of, status_q
from tests.factories import PASSWORD, make_batch, make_batch_in_states, make_connection

TODAY = dt.date(2026, 12, 3)
St = InvoiceStatus

# (sync state, xero status, status, amount due, amount paid, due date) -> status
CASES = [
    ("not_synced", "", "AUTHORISED", "110", "0", "2026-11-15", St.NOT_SYNCED),
    ("pending", "", "AUTHORISED", "110", "0", "2026-12-15", St.WAITING),
    ("in_flight", "", "DRAFT", "110", "0", "2026-12-15", St.SENDING),
    ("needs_attention", "", "AUTHORISED", "110", "0", "2026-12-15", St.NEEDS_ATTENTION),
    ("failed", "", "AUTHORISED", "110", "0", "2026-11-15", St.FAILED),
    ("synced", "DRAFT", "DRAFT", "110", "0", "2026-11-15", St.DRAFT),
    ("synced", "SUBMITTED", "SUBMITTED", "110", "0", "2026-12-15", St.DRAFT),
    ("synced", "", "DRAFT", "110", "0", "2026-12-15", St.DRAFT),
    ("synced", "AUTHORISED", "AUTHORISED", "110", "0", "2026-12-15", St.AWAITING_PAYMENT),
    ("warning", "", "AUTHORISED", "110", "0", "2026-12-03", St.AWAITING_PAYMENT),
    ("synced", "AUTHORISED", "AUTHORISED", "60", "50", "2026-12-15", St.PART_PAID),
    ("synced", "AUTHORISED", "AUTHORISED", "60", "50", "2026-12-02", St.OVERDUE),
    ("synced", "AUTHORISED", "AUTHORISED", "110", "0", "2026-12-02", St.OVERDUE),
    ("synced", "PAID", "AUTHORISED", "0", "110", "2026-11-15", St.PAID),
    ("synced", "VOIDED", "AUTHORISED", "0", "0", "2026-11-15", St.VOIDED),
    ("warning", "VOIDED", "AUTHORISED", "110", "0", "2026-11-15", St.VOIDED),
    ("synced", "DELETED", "DRAFT", "110", "0", "2026-11-15", St.DELETED),
]


@pytest.mark.parametrize("sync, xero, status, due, paid, due_date, expected", CASES)
def test_each_invoice_has_one_status_when_its_sync_state_and_xero_status_are_known(
    sync, xero, status, due, paid, due_date, expected
):
    found = invoice_status(
        sync_state=sync,
        xero_status=xero,
        status=status,
        amount_due=Decimal(due),
        amount_paid=Decimal(paid),
        due_date=dt.date.fromisoformat(due_date),
        today=TODAY,
    )
    assert found is expected


def test_every_status_has_its_own_label_and_badge_when_listed():
    labels = [s.label for s in InvoiceStatus]
    assert labels == [
        "Not synced",
        "Waiting",
        "Sending",
        "Needs attention",
        "Failed",
        "Draft in Xero",
        "Awaiting payment",
        "Part paid",
        "Paid",
        "Overdue",
        "Voided",
        "Deleted",
    ]
    assert len({s.badge for s in InvoiceStatus}) == len(InvoiceStatus)
    css = (Path(__file__).resolve().parents[2] / "static" / "css" / "app.css").read_text()
    assert all(f".{s.badge.split()[1]} " in css or f".{s.badge.split()[1]}," in css for s in InvoiceStatus)


# Invoice.sync_state has no needs_attention yet (the outbound engine's operations carry it); the rest are stored.
STORED = [case for case in CASES if case[0] in Invoice.SyncState.values]


def _invoices(org):
    batch = make_batch(organisation=org, invoices=len(STORED), eligibility="eligible")
    made = []
    for invoice, (sync, xero, status, due, paid, due_date, expected) in zip(
        batch.invoices.order_by("number"), STORED, strict=True
    ):
        Invoice.objects.filter(pk=invoice.pk).update(
            sync_state=sync,
            xero_status=xero,
            status=status,
            amount_due=Decimal(due),
            amount_paid=Decimal(paid),
            due_date=dt.date.fromisoformat(due_date),
        )
        made.append((invoice.pk, expected))
    return batch, made


@pytest.mark.django_db
def test_database_filters_agree_with_the_function_when_counting(org_a):
    _, made = _invoices(org_a)
    for status in InvoiceStatus:
        in_sql = set(Invoice.objects.filter(status_q(status, today=TODAY)).values_list("pk", flat=True))
        assert in_sql == {pk for pk, expected in made if expected is status}, status
    for invoice in Invoice.objects.all():
        assert status_of(invoice, today=TODAY) is dict(made)[invoice.pk]


def login(client, user):
    assert client.login(username=user.email, password=PASSWORD)
    return client


def _batch_with(org, *states: tuple[str, str]):
    """A batch whose invoices have these (sync state, Xero status)."""
    return make_batch_in_states(organisation=org, invoices=states)


@pytest.mark.django_db
def test_rows_show_voided_deleted_and_paid_badges_when_xero_says_so(client, accountant_a, org_a):
    make_connection(organisation=org_a)
    batch = _batch_with(
        org_a, ("synced", "VOIDED"), ("synced", "DELETED"), ("synced", "PAID"), ("synced", "AUTHORISED")
    )
    body = login(client, accountant_a).get(reverse("invoices:batch_detail", args=[batch.pk])).content.decode()
    assert '<span class="badge badge-voided"' in body and ">Voided</span>" in body
    assert '<span class="badge badge-deleted"' in body and ">Deleted</span>" in body
    assert '<span class="badge badge-paid"' in body and ">Paid</span>" in body
    assert '<span class="badge badge-awaiting-payment"' in body
    assert ">In Xero</span>" not in body


@pytest.mark.django_db
def test_batch_never_reads_all_in_xero_when_every_invoice_was_voided(client, accountant_a, org_a):
    make_connection(organisation=org_a)
    batch = _batch_with(org_a, ("synced", "VOIDED"), ("synced", "VOIDED"))
    progress = batch_progress(organisation=org_a, batch=batch)
    assert (progress.in_xero, progress.removed, progress.percent) == (0, 2, 0)
    body = login(client, accountant_a).get(reverse("invoices:batch_detail", args=[batch.pk])).content.decode()
    assert "All invoices are in Xero" not in body and "100%" not in body
    assert "voided or deleted in Xero" in body


@pytest.mark.django_db
def test_bar_is_not_full_when_every_invoice_failed(client, accountant_a, org_a):
    make_connection(organisation=org_a)
    batch = _batch_with(org_a, ("failed", ""), ("failed", ""), ("failed", ""))
    progress = batch_progress(organisation=org_a, batch=batch)
    assert (progress.in_xero, progress.failed, progress.percent, progress.failed_percent) == (0, 3, 0, 100)
    body = login(client, accountant_a).get(reverse("invoices:batch_detail", args=[batch.pk])).content.decode()
    assert '<span class="progress-percent" aria-hidden="true">0% in Xero</span>' in body
    assert 'class="bar-in-xero" x="0" width="0"' in body and 'class="bar-failed" x="0" width="100"' in body
    assert "No invoice reached Xero" in body


@pytest.mark.django_db
def test_in_xero_and_failures_are_counted_apart_when_a_batch_mixes_them(org_a):
    make_connection(organisation=org_a)
    batch = _batch_with(
        org_a, ("synced", "AUTHORISED"), ("synced", "PAID"), ("failed", ""), ("synced", "VOIDED"), ("pending", "")
    )
    progress = batch_progress(organisation=org_a, batch=batch)
    assert (progress.in_xero, progress.removed, progress.failed, progress.waiting) == (2, 1, 1, 1)
    assert (progress.percent, progress.failed_percent, progress.removed_percent) == (40, 20, 20)


@pytest.mark.django_db
def test_dashboard_does_not_count_voided_or_deleted_invoices_as_in_xero_when_counting(client, accountant_a, org_a):
    make_connection(organisation=org_a)
    _batch_with(org_a, ("synced", "VOIDED"), ("synced", "DELETED"), ("synced", "AUTHORISED"), ("failed", ""))
    counts = invoice_sync_counts(organisation=org_a)
    assert (counts["synced"], counts["removed"], counts["failed"]) == (1, 2, 1)
    body = login(client, accountant_a).get(reverse("invoices:dashboard")).content.decode()
    assert "Voided or deleted" in body


@pytest.mark.django_db
def test_batch_list_badge_says_voided_not_in_xero_when_every_invoice_was_voided(client, accountant_a, org_a):
    make_connection(organisation=org_a)
    voided = _batch_with(org_a, ("synced", "VOIDED"))
    _batch_with(org_a, ("synced", "AUTHORISED"))
    rows = {b.pk: b for b in batch_list(organisation=org_a)}
    assert (rows[voided.pk].in_xero_count, rows[voided.pk].removed_count) == (0, 1)
    assert [b.pk for b in batch_list(organisation=org_a, state="synced")] != [voided.pk]
    assert voided.pk not in {b.pk for b in batch_list(organisation=org_a, state="synced")}
    body = login(client, accountant_a).get(reverse("invoices:batch_list")).content.decode()
    assert '<span class="badge badge-voided">Voided</span>' in body


def test_groups_split_in_xero_from_voided_and_failed_when_counted():
    assert {s for s in InvoiceStatus if s.group is Group.IN_XERO} == {
        St.DRAFT,
        St.AWAITING_PAYMENT,
        St.PART_PAID,
        St.PAID,
        St.OVERDUE,
    }
    assert {s for s in InvoiceStatus if s.group is Group.REMOVED} == {St.VOIDED, St.DELETED}


@pytest.mark.django_db
def test_needing_attention_is_named_apart_from_failed_wherever_failures_are_counted(client, accountant_a, org_a):
    """The progress card says "1 failed" and "2 need attention: check Xero"; the batch list's badge, the dashboard's
    tile, the Failed tab and the Retry button counted all three as failed. They name both now (Retry acts on both)."""
    make_connection(organisation=org_a)
    mixed = _batch_with(org_a, ("failed", ""), ("needs_attention", ""), ("needs_attention", ""), ("synced", "PAID"))
    unsure = _batch_with(org_a, ("needs_attention", ""), ("synced", "PAID"))
    refused = _batch_with(org_a, ("failed", ""), ("synced", "PAID"))
    rows = {b.pk: b for b in batch_list(organisation=org_a)}
    assert (rows[mixed.pk].failed_count, rows[mixed.pk].attention_count) == (3, 2)
    assert {b.pk for b in batch_list(organisation=org_a, state="failed")} == {mixed.pk, unsure.pk, refused.pk}
    browser = login(client, accountant_a)

    listed = browser.get(reverse("invoices:batch_list")).content.decode()
    assert '<span class="badge badge-failed">1 failed</span>' in listed  # the mixed batch, and the refused one
    assert '<span class="badge badge-needs-attention">2 need attention</span>' in listed
    assert '<span class="badge badge-needs-attention">1 needs attention</span>' in listed
    assert listed.count("badge-failed") == 2

    dashboard = browser.get(reverse("invoices:dashboard")).content.decode()
    assert '<span class="tile-label">Failed or need attention</span>' in dashboard

    page = browser.get(reverse("invoices:batch_detail", args=[mixed.pk])).content.decode()
    assert "Failed or need attention (3)</a>" in page
    assert "Retry 3 invoices that failed or need attention</button>" in page
    assert "Retry failed invoices" not in page
    plain = browser.get(reverse("invoices:batch_detail", args=[refused.pk])).content.decode()
    assert "Failed (1)</a>" in plain and "Retry failed invoices (1)</button>" in plain
