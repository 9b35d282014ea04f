"""Credit notes count where invoices count (issue 12: "Progress counts invoices in Xero and failures apart; a batch
never reads 100% in Xero when it is not"): the batch progress, the batch list, the dashboard and the support
console's batch table count a batch's credit notes in the same status vocabulary as its invoices, and the database
filter for a credit note's status group agrees with its one-word status."""

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.urls import reverse

from invoices.models import CreditNote, InvoiceBatch
from invoices.selectors import batch_list, batch_progress, invoice_sync_counts
from invoices.states import CreditNoteStatus, Group, credit_note_status_of
from tests.factories import make_batch, make_batch_in_states, make_connection, make_credit_note, make_customer

pytestmark = pytest.mark.django_db

TODAY = dt.date(2026, 12, 3)


def mixed_batch(org, invoices: tuple[tuple[str, str], ...], notes: tuple[tuple[str, str], ...]) -> InvoiceBatch:
    """A batch whose invoices and credit notes have these (sync state, Xero status)."""
    return make_batch_in_states(organisation=org, invoices=invoices, credit_notes=notes)


IN_XERO = ("synced", "AUTHORISED")
FAILED = ("failed", "")
VOIDED = ("synced", "VOIDED")


# ---------------------------------------------------------------- the filter agrees with the word

NOTE_CASES = [
    ("not_synced", "", "AUTHORISED"),
    ("pending", "", "AUTHORISED"),
    ("in_flight", "", "AUTHORISED"),
    ("failed", "", "AUTHORISED"),
    ("synced", "DRAFT", "DRAFT"),
    ("synced", "", "SUBMITTED"),
    ("synced", "AUTHORISED", "AUTHORISED"),
    ("warning", "", "AUTHORISED"),
    ("synced", "PAID", "AUTHORISED"),
    ("synced", "VOIDED", "AUTHORISED"),
    ("warning", "DELETED", "DRAFT"),
]


def test_credit_note_filters_agree_with_the_status_word_when_counting(org_a):
    from invoices.states import credit_note_group_q, credit_note_status_q

    batch = make_batch(organisation=org_a, invoices=1, eligibility="eligible")
    for sync, xero, status in NOTE_CASES:
        make_credit_note(batch=batch, sync_state=sync, xero_status=xero, status=status)
    words = {note.pk: credit_note_status_of(note) for note in CreditNote.objects.all()}
    assert {word for word in words.values()} >= set(CreditNoteStatus) - {CreditNoteStatus.NEEDS_ATTENTION}
    for status in CreditNoteStatus:
        in_sql = set(CreditNote.objects.filter(credit_note_status_q(status, today=TODAY)).values_list("pk", flat=True))
        assert in_sql == {pk for pk, word in words.items() if word is status}, status
    for group in Group:
        in_sql = set(CreditNote.objects.filter(credit_note_group_q(group, today=TODAY)).values_list("pk", flat=True))
        assert in_sql == {pk for pk, word in words.items() if word.group is group}, group


# ---------------------------------------------------------------- batch progress and the batch page


def test_batch_does_not_read_100_percent_in_xero_when_a_credit_note_failed(client, admin_a, org_a, login_as):
    make_connection(organisation=org_a)
    batch = mixed_batch(org_a, (IN_XERO, IN_XERO), (FAILED,))
    progress = batch_progress(organisation=org_a, batch=batch)
    assert (progress.total, progress.in_xero, progress.failed, progress.credit_notes) == (3, 2, 1, 1)
    assert (progress.percent, progress.failed_percent) == (66, 33)
    assert not progress.all_in_xero
    body = login_as(admin_a).get(reverse("invoices:batch_detail", args=[batch.pk])).content.decode()
    assert "All invoices are in Xero" not in body and "100% in Xero" not in body
    assert '<span class="progress-percent" aria-hidden="true">66% in Xero</span>' in body
    assert "Sent to Xero, with failures" in body
    assert '<strong data-count="failed">1</strong> failed' in body
    assert "of 2 invoices and 1 credit note" in body


def test_invoices_needing_attention_are_counted_apart_from_failed_when_they_may_be_in_xero(
    client, admin_a, org_a, login_as
):
    """Needing attention is not failed: we could not confirm what Xero did, so the invoice may well be there. The
    progress says so apart (the failed tab still lists both, sharing Retry)."""
    make_connection(organisation=org_a)
    batch = mixed_batch(org_a, (IN_XERO, FAILED, ("needs_attention", ""), ("needs_attention", "")), ())
    progress = batch_progress(organisation=org_a, batch=batch)
    assert (progress.failed, progress.attention, progress.refused) == (3, 2, 1)
    assert (progress.failed_percent, progress.refused_percent, progress.attention_percent) == (75, 25, 50)
    body = login_as(admin_a).get(reverse("invoices:batch_detail", args=[batch.pk])).content.decode()
    assert '<strong data-count="failed">1</strong> failed' in body
    assert '<strong data-count="attention">2</strong> need attention: check Xero' in body
    assert "1 of 4 in Xero, 0 voided or deleted, 1 failed, 2 need attention, 0 waiting" in body
    assert "Sent to Xero, with failures" in body


def test_a_batch_whose_unsent_invoices_all_need_attention_does_not_say_none_reached_xero(
    client, admin_a, org_a, login_as
):
    make_connection(organisation=org_a)
    batch = mixed_batch(org_a, (("needs_attention", ""),), ())
    body = login_as(admin_a).get(reverse("invoices:batch_detail", args=[batch.pk])).content.decode()
    assert "No invoice reached Xero" not in body
    assert "Sent to Xero; some need checking in Xero" in body


def test_batch_reads_all_in_xero_when_its_invoices_and_credit_notes_all_are(client, admin_a, org_a, login_as):
    make_connection(organisation=org_a)
    batch = mixed_batch(org_a, (IN_XERO,), (("synced", "PAID"), ("synced", "DRAFT")))
    progress = batch_progress(organisation=org_a, batch=batch)
    assert (progress.total, progress.in_xero, progress.percent, progress.all_in_xero) == (3, 3, 100, True)
    body = login_as(admin_a).get(reverse("invoices:batch_detail", args=[batch.pk])).content.decode()
    assert "All invoices and credit notes are in Xero" in body


def test_a_waiting_credit_note_keeps_the_batch_sending_when_its_invoices_are_done(org_a):
    make_connection(organisation=org_a)
    batch = mixed_batch(org_a, (IN_XERO,), (("pending", ""), ("in_flight", "")))
    progress = batch_progress(organisation=org_a, batch=batch)
    assert (progress.pending, progress.in_flight, progress.waiting, progress.active) == (1, 1, 2, True)
    assert progress.percent == 33


def test_a_voided_credit_note_counts_as_removed_not_in_xero_in_the_progress(org_a):
    make_connection(organisation=org_a)
    batch = mixed_batch(org_a, (IN_XERO,), (VOIDED,))
    progress = batch_progress(organisation=org_a, batch=batch)
    assert (progress.in_xero, progress.removed, progress.percent, progress.removed_percent) == (1, 1, 50, 50)


# ---------------------------------------------------------------- dashboard


def test_dashboard_counts_a_voided_credit_note_as_voided_not_in_xero(client, accountant_a, org_a, login_as):
    make_connection(organisation=org_a)
    mixed_batch(org_a, (IN_XERO, FAILED), (VOIDED, FAILED, ("pending", ""), IN_XERO))
    counts = invoice_sync_counts(organisation=org_a)
    assert (counts["synced"], counts["removed"], counts["failed"], counts["pending"]) == (2, 1, 2, 1)
    body = login_as(accountant_a).get(reverse("invoices:dashboard")).content.decode()
    assert '<span class="tile-num">1</span><span class="tile-label">Voided or deleted in Xero</span>' in body


# ---------------------------------------------------------------- batch list and support console


def test_batch_list_counts_a_failed_credit_note_when_the_invoices_are_all_in_xero(
    client, accountant_a, org_a, login_as
):
    make_connection(organisation=org_a)
    batch = mixed_batch(org_a, (IN_XERO, IN_XERO), (FAILED,))
    [row] = batch_list(organisation=org_a)
    assert (row.invoice_count, row.credit_note_count, row.in_xero_count, row.failed_count) == (2, 1, 2, 1)
    assert [b.pk for b in batch_list(organisation=org_a, state="failed")] == [batch.pk]
    assert list(batch_list(organisation=org_a, state="synced")) == []
    body = login_as(accountant_a).get(reverse("invoices:batch_list")).content.decode()
    assert '<span class="badge badge-failed">1 failed</span>' in body
    assert '<span class="badge badge-in-xero">In Xero</span>' not in body


def test_batch_list_counts_waiting_and_voided_credit_notes_in_the_same_words(client, accountant_a, org_a, login_as):
    make_connection(organisation=org_a)
    waiting = mixed_batch(org_a, (IN_XERO,), (("pending", ""),))
    voided = mixed_batch(org_a, (IN_XERO,), (VOIDED,))
    done = mixed_batch(org_a, (IN_XERO,), (IN_XERO,))
    rows = {b.pk: b for b in batch_list(organisation=org_a)}
    assert rows[waiting.pk].pending_count == 1
    assert (rows[voided.pk].in_xero_count, rows[voided.pk].removed_count) == (1, 1)
    assert {b.pk for b in batch_list(organisation=org_a, state="pending")} == {waiting.pk}
    assert {b.pk for b in batch_list(organisation=org_a, state="synced")} == {done.pk}
    body = login_as(accountant_a).get(reverse("invoices:batch_list")).content.decode()
    assert '<span class="badge badge-waiting">1 waiting</span>' in body
    assert '<span class="badge badge-in-xero">1 in Xero</span> <span class="badge badge-voided">1 voided</span>' in body


def test_batch_list_keeps_invoice_totals_when_credit_notes_join_the_counts(org_a):
    batch = mixed_batch(org_a, (IN_XERO, IN_XERO, IN_XERO), (FAILED, FAILED))
    [row] = batch_list(organisation=org_a)
    assert (row.invoice_count, row.total_amount, row.currency_count) == (3, Decimal("330.00"), 1)
    assert row.pk == batch.pk


def test_support_batch_table_and_batch_page_count_credit_notes(login_as, support_user, org_a):
    make_connection(organisation=org_a)
    batch = mixed_batch(org_a, (IN_XERO, IN_XERO), (FAILED,))
    client = login_as(support_user)
    body = client.get(reverse("invoices_support:batches", args=[org_a.pk])).content.decode()
    assert '<span class="badge badge-failed">1 failed</span>' in body
    body = client.get(reverse("invoices_support:batch", args=[org_a.pk, batch.pk])).content.decode()
    assert "2 invoices and 1 credit note: 2 in Xero, 1 failed, 0 needing attention, 0 waiting" in body


def test_invoice_retry_and_filters_count_invoices_only_when_only_a_credit_note_failed(client, admin_a, org_a, login_as):
    make_connection(organisation=org_a)
    batch = mixed_batch(org_a, (IN_XERO, FAILED), (FAILED, ("pending", "")))
    progress = batch_progress(organisation=org_a, batch=batch)
    assert (progress.failed, progress.invoices.failed, progress.waiting, progress.invoices.waiting) == (2, 1, 1, 0)
    body = login_as(admin_a).get(reverse("invoices:batch_detail", args=[batch.pk])).content.decode()
    assert "Retry failed invoices (1)" in body and ">Failed (1)</a>" in body and ">Waiting (0)</a>" in body
    assert "2 invoices and 2 credit notes" in body


def test_dashboard_health_card_counts_refused_credit_notes_with_failed_invoices(client, admin_a, org_a, login_as):
    from invoices.models import XeroMapping

    make_connection(organisation=org_a)
    XeroMapping.objects.create(organisation=org_a, revenue_account_code="200", tax_type="OUTPUT")
    mixed_batch(org_a, (IN_XERO, FAILED), (FAILED, ("needs_attention", ""), IN_XERO))
    body = login_as(admin_a).get(reverse("invoices:dashboard")).content.decode()
    assert 'id="health-card"' in body
    assert ">1 credit note</a>" in body  # needs attention: no invoice, one credit note
    assert ">1 invoice and 1 credit note</a>" in body  # failed


def test_batch_search_finds_a_batch_by_its_credit_note_number(org_a):
    batch = mixed_batch(org_a, (IN_XERO,), (FAILED,))
    mixed_batch(org_a, (IN_XERO,), ())
    number = batch.credit_notes.get().number
    assert [b.pk for b in batch_list(organisation=org_a, query=number.lower())] == [batch.pk]


# ---------------------------------------------------------------- totals: invoices, credit notes and the net


def page_text(response) -> str:
    """The page's words as read, tags dropped and spaces collapsed."""
    return " ".join(re.sub(r"<[^>]+>", " ", response.content.decode()).split())


def test_batch_list_totals_show_credit_notes_apart_and_the_net_when_a_batch_has_them(
    client, accountant_a, org_a, login_as
):
    batch = mixed_batch(org_a, (IN_XERO, IN_XERO, IN_XERO), ())
    make_credit_note(batch=batch, total=Decimal("22.00"))
    make_credit_note(batch=batch, total=Decimal("8.50"), sync_state="failed")
    mixed_batch(org_a, (IN_XERO,), ())
    rows = {b.pk: b for b in batch_list(organisation=org_a)}
    row = rows[batch.pk]
    assert (row.total_amount, row.credit_note_total, row.net_amount) == (
        Decimal("330.00"),
        Decimal("30.50"),
        Decimal("299.50"),
    )
    assert not row.several_currencies
    body = page_text(login_as(accountant_a).get(reverse("invoices:batch_list")))
    assert "Invoices AUD 330.00 Credit notes AUD −30.50 Net AUD 299.50" in body
    assert "AUD 110.00" in body and "Net AUD 110.00" not in body  # a batch without credit notes keeps its one total


def test_batch_list_total_of_a_batch_with_only_credit_notes_is_negative(client, accountant_a, org_a, login_as):
    batch = mixed_batch(org_a, (), ())
    make_credit_note(batch=batch, total=Decimal("40.00"), customer=make_customer(organisation=org_a))
    [row] = batch_list(organisation=org_a)
    assert (row.credit_note_total, row.net_amount, row.several_currencies) == (
        Decimal("40.00"),
        Decimal("-40.00"),
        False,
    )
    body = page_text(login_as(accountant_a).get(reverse("invoices:batch_list")))
    assert "Credit notes AUD −40.00" in body and "Net AUD −40.00" in body
    assert "Invoices AUD" not in body


def test_batch_list_does_not_net_a_credit_note_in_another_currency(client, accountant_a, org_a, login_as):
    batch = mixed_batch(org_a, (IN_XERO,), ())
    make_credit_note(batch=batch, total=Decimal("5.00"), currency="NZD")
    [row] = batch_list(organisation=org_a)
    assert row.several_currencies
    body = page_text(login_as(accountant_a).get(reverse("invoices:batch_list")))
    assert "Several currencies" in body and "Net " not in body


def test_support_batch_table_shows_the_same_totals(login_as, support_user, org_a):
    batch = mixed_batch(org_a, (IN_XERO, IN_XERO), ())
    make_credit_note(batch=batch, total=Decimal("20.00"))
    body = page_text(login_as(support_user).get(reverse("invoices_support:batches", args=[org_a.pk])))
    assert "Invoices AUD 220.00" in body and "Credit notes AUD −20.00" in body and "Net AUD 200.00" in body
