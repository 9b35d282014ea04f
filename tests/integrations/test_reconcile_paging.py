"""A reconciliation pass pages in an order that changes in Xero cannot reshuffle (by id), with If-Modified-Since fixed
for the whole window, so a record edited while the pass pages stays where it was and a record entering the results
only pushes later ones on (read twice, never skipped). A pass cut short (its page cap, Xero's error, the rate limit)
leaves the next one to go on at the page it reached, with the same If-Modified-Since; the window counts as done, from
the first pass's start, only when its last page is read."""

import datetime as dt
import json
import threading

import pytest
import responses
from django.db import connections, transaction
from django.utils import timezone

from integrations.models import ReconciliationState, XeroConnection
from integrations.services import reconciliation
from integrations.webhooks import fetch
from integrations.webhooks.tasks import reconcile_organisation
from integrations.xero.types import NoRateLimit
from invoices.created_in_xero.models import XeroCreatedInvoice
from tests.integrations import test_webhooks_processing as processing
from tests.integrations.test_reconcile_progress import dense_burst, polled
from tests.integrations.test_webhooks_processing import API, HELD, ChangingXeroInvoices, xero_invoice

no_limiter, org = processing.no_limiter, processing.org  # that module's fixtures (the limiter off; an organisation)

WINDOW = "2026-11-24T08:58:00Z"  # HELD, less the overlap: what every request of the window asks from


def _ms(at: dt.datetime) -> str:
    return f"/Date({int(at.timestamp() * 1000)}+0000)/"


def unread_numbers(org, count: int) -> list[str]:
    """The burst's invoices no pass read (none of them was ours before)."""
    listed = set(XeroCreatedInvoice.objects.filter(organisation=org).values_list("number", flat=True))
    return sorted({f"X-{i}" for i in range(count)} - listed)


def paid_in_xero_after_the_first_page(invoices: list[dict], number: int):
    """Someone marks X-`number` paid in Xero once the pass has read page 1: its UpdatedDateUTC becomes now."""

    def between(xero):
        if len(xero.asked) == 1:
            paid = {"Status": "PAID", "AmountPaid": 110.0, "AmountDue": 0.0, "UpdatedDateUTC": _ms(timezone.now())}
            invoices[number] = invoices[number] | paid  # page 1, already answered, keeps the copy it had

    return between


def polled_failing_once(xero: ChangingXeroInvoices, *, page: int, status: int, headers: dict | None = None) -> None:
    """Xero's invoices as `xero` pages them, except that the first time `page` is asked Xero answers `status`."""
    left = [1]

    def answer(request):
        if f"page={page}&" in request.url and left:
            left.pop()
            return status, headers or {}, "{}"
        return xero(request)

    responses.add_callback(responses.GET, f"{API}/Invoices", callback=answer)
    responses.get(f"{API}/Contacts", json={"Contacts": []})


@responses.activate
def test_no_invoice_slips_past_unread_when_one_is_paid_while_a_pass_pages_through_a_burst(org):
    """Paged oldest change first, X-10 paid in Xero after page 1 moves to the end, X-100 slides onto page 1 (already
    read) and page 2 starts at X-101; X-100's change is older than the pass, so no later pass reads it either. Paged by
    id, nothing moves: X-100 is on page 2, and the next pass reads X-10 as paid."""
    ReconciliationState.objects.create(organisation=org, last_success_at=HELD)
    invoices = dense_burst(250, per_second=100)
    xero = polled(ChangingXeroInvoices(invoices, between=paid_in_xero_after_the_first_page(invoices, 10)))
    result = reconciliation.reconciliation_run(organisation_id=org.pk)
    assert xero.asked == [(WINDOW, 1), (WINDOW, 2), (WINDOW, 3)] and result.checked == 250
    reconciliation.reconciliation_run(organisation_id=org.pk)  # the next pass, from this one's start
    assert unread_numbers(org, 250) == []
    assert XeroCreatedInvoice.objects.get(organisation=org, number="X-10").status == "PAID"


@responses.activate
def test_invoices_are_read_twice_at_worst_never_skipped_when_created_in_xero_while_a_pass_pages(org):
    """New invoices whose ids sort before the pages already read push every later one on a place: the first of
    the next page is read again, none is skipped."""
    ReconciliationState.objects.create(organisation=org, last_success_at=HELD)
    invoices = dense_burst(250, per_second=100)

    def created_in_xero(xero):
        now = _ms(timezone.now())
        n = len(xero.asked)
        invoices.extend(
            xero_invoice(f"00000000-0000-4000-8{n:03d}-{i:012d}", InvoiceNumber=f"N-{n}-{i}") | {"UpdatedDateUTC": now}
            for i in range(3)
        )

    xero = polled(ChangingXeroInvoices(invoices, between=created_in_xero))
    result = reconciliation.reconciliation_run(organisation_id=org.pk)
    assert unread_numbers(org, 250) == []
    assert {since for since, _ in xero.asked} == {WINDOW} and len(xero.asked) == 3
    assert result.checked > 250  # what was pushed on is read again


@responses.activate
def test_the_next_pass_goes_on_at_the_page_reached_when_a_pass_is_cut_short_by_its_cap(org, monkeypatch):
    """Each pass reads its cap of pages and the next goes on at the next page, with the same If-Modified-Since; the
    window counts as done, from the first pass's start, once its last page is read."""
    monkeypatch.setattr(reconciliation, "RECONCILE_MAX_PAGES", 4)
    ReconciliationState.objects.create(organisation=org, last_success_at=HELD)
    xero = polled(ChangingXeroInvoices(dense_burst(1000, per_second=100)))
    reconciliation.reconciliation_run(organisation_id=org.pk)
    state = ReconciliationState.objects.get(organisation=org)
    first_started = state.last_started_at
    assert state.last_success_at == HELD and "page 5" in state.last_error
    # Its own task goes on with the window: the beat holds off past its next fan-out and a lease (a lost task).
    assert state.due_reason == "window" and state.next_due_at > timezone.now() + dt.timedelta(minutes=10)
    reconciliation.reconciliation_run(organisation_id=org.pk)
    reconciliation.reconciliation_run(organisation_id=org.pk)
    assert xero.asked == [(WINDOW, page) for page in range(1, 11)]
    assert unread_numbers(org, 1000) == []
    state.refresh_from_db()
    assert (state.last_success_at, state.passes, state.last_error) == (first_started, 1, "")
    # Changes made during the window on pages it had read are the next window's: soon, not at the phase a day away.
    assert state.due_reason == "window" and state.next_due_at < timezone.now() + dt.timedelta(minutes=6)
    reconciliation.reconciliation_run(organisation_id=org.pk)  # a new window, from the first pass's start
    assert xero.asked[-1] == ((first_started - reconciliation.RECONCILE_OVERLAP).strftime("%Y-%m-%dT%H:%M:%SZ"), 1)


@responses.activate
def test_the_next_pass_goes_on_at_the_page_that_failed_when_xero_fails_part_way(org):
    ReconciliationState.objects.create(organisation=org, last_success_at=HELD)
    xero = ChangingXeroInvoices(dense_burst(250, per_second=100))
    polled_failing_once(xero, page=3, status=503)
    reconciliation.reconciliation_run(organisation_id=org.pk)
    state = ReconciliationState.objects.get(organisation=org)
    assert state.last_success_at == HELD and "XeroServerError" in state.last_error
    reconciliation.reconciliation_run(organisation_id=org.pk)
    assert xero.asked == [(WINDOW, 1), (WINDOW, 2), (WINDOW, 3)]  # pages 1 and 2 are not asked again
    assert unread_numbers(org, 250) == []
    state.refresh_from_db()
    assert state.last_error == "" and state.passes == 1


@responses.activate
def test_the_pass_comes_back_to_the_page_it_was_refused_when_rate_limited(org, monkeypatch):
    monkeypatch.setattr(fetch, "xero_rate_limiter", NoRateLimit)  # the limiter would hold the tenant back 7 s
    ReconciliationState.objects.create(organisation=org, last_success_at=HELD)
    xero = ChangingXeroInvoices(dense_burst(150, per_second=100))
    polled_failing_once(xero, page=2, status=429, headers={"Retry-After": "7"})
    result = reconciliation.reconciliation_run(organisation_id=org.pk)
    assert result.retry_after == 7
    reconciliation.reconciliation_run(organisation_id=org.pk)
    assert xero.asked == [(WINDOW, 1), (WINDOW, 2)]
    assert unread_numbers(org, 150) == []


@responses.activate
def test_categories_read_to_their_end_are_not_asked_again_when_a_window_goes_on(org, monkeypatch):
    """Cut short in contacts, the next pass goes on there: the invoices were read, in this window, already."""
    monkeypatch.setattr(reconciliation, "RECONCILE_MAX_PAGES", 2)
    ReconciliationState.objects.create(organisation=org, last_success_at=HELD)
    xero = ChangingXeroInvoices(dense_burst(50, per_second=100))
    responses.add_callback(responses.GET, f"{API}/Invoices", callback=xero)
    contacts = [
        {"ContactID": f"dddddddd-0000-4000-8000-{i:012d}", "Name": f"Ōtautahi Florists {i}", "ContactStatus": "ACTIVE"}
        | {"UpdatedDateUTC": _ms(HELD + dt.timedelta(minutes=1))}
        for i in range(150)
    ]
    asked_contacts = []

    def contacts_page(request):
        page = int(request.url.split("page=")[1].split("&")[0])
        asked_contacts.append((request.headers["If-Modified-Since"], page, "ContactID" in request.url))
        body = {"Contacts": contacts[(page - 1) * 100 : page * 100], "pagination": {"pageCount": 2}}
        return 200, {}, json.dumps(body)

    responses.add_callback(responses.GET, f"{API}/Contacts", callback=contacts_page)
    reconciliation.reconciliation_run(organisation_id=org.pk)  # invoices page 1 (done), contacts page 1 (capped)
    reconciliation.reconciliation_run(organisation_id=org.pk)
    assert xero.asked == [(WINDOW, 1)]
    assert asked_contacts == [(WINDOW, 1, True), (WINDOW, 2, True)]
    assert ReconciliationState.objects.get(organisation=org).passes == 1


@responses.activate
def test_a_stored_window_starts_again_at_its_first_page_when_the_connection_was_made_since(org):
    """Disconnected and connected again (perhaps to another Xero organisation) after the window began: its page
    numbers may not be this tenant's, so the pass reads the window again from its first page, with the same
    If-Modified-Since. Dropping it instead would lose a first window's unread pages (no window read to its end yet,
    the next asks only from the new connection)."""
    ReconciliationState.objects.create(
        organisation=org,
        last_success_at=None,  # its first window: dropping it would ask only from the new connection
        resume_since=HELD - reconciliation.RECONCILE_OVERLAP,
        resume_started_at=HELD + dt.timedelta(minutes=30),
        resume_category="INVOICE",
        resume_page=2,
    )
    XeroConnection.objects.filter(organisation=org).update(connected_at=HELD + dt.timedelta(days=1))
    xero = polled(ChangingXeroInvoices(dense_burst(150, per_second=100)))
    reconciliation.reconciliation_run(organisation_id=org.pk)
    assert xero.asked == [(WINDOW, 1), (WINDOW, 2)]
    assert unread_numbers(org, 150) == []
    state = ReconciliationState.objects.get(organisation=org)
    assert (state.resume_since, state.passes, state.last_success_at) == (None, 1, state.last_started_at)


@responses.activate
def test_the_window_goes_on_at_once_when_a_pass_is_cut_short_by_its_cap(org, monkeypatch, enqueued):
    """The rest of the window is the task's next pass, a second later (the limiter paces it behind customers' calls),
    not the beat's five minutes later: a busy tenant's windows stay short."""
    monkeypatch.setattr(reconciliation, "RECONCILE_MAX_PAGES", 2)
    ReconciliationState.objects.create(organisation=org, last_success_at=HELD)
    polled(ChangingXeroInvoices(dense_burst(250, per_second=100)))
    reconcile_organisation.run(organisation_id=org.pk)
    assert [(e.name, e.kwargs, e.countdown) for e in enqueued] == [
        ("integrations.webhook_tasks.reconcile_organisation", {"organisation_id": org.pk}, 1)
    ]
    reconcile_organisation.run(organisation_id=org.pk)  # page 3, the last: nothing more to ask for
    assert len(enqueued) == 1 and unread_numbers(org, 250) == []


@responses.activate
def test_a_window_whose_category_is_no_longer_polled_starts_again_when_a_pass_reads_it(org):
    ReconciliationState.objects.create(
        organisation=org, last_success_at=HELD, resume_since=HELD, resume_category="BANKTRANSACTION", resume_page=9
    )
    xero = polled(ChangingXeroInvoices(dense_burst(50, per_second=100)))
    reconciliation.reconciliation_run(organisation_id=org.pk)
    assert xero.asked == [("2026-11-24T09:00:00Z", 1)]
    assert ReconciliationState.objects.get(organisation=org).resume_since is None


@responses.activate
def test_the_beat_queues_no_second_pass_when_a_window_goes_on_with_its_own_task(org, monkeypatch, enqueued):
    """One chain of passes per tenant: while a window goes on with its own task, the beat's fan-out does not queue
    another pass, neither at the due time a cut-short pass used to set nor for a push made meanwhile (activity)."""
    from integrations.webhooks.tasks import reconcile_all

    monkeypatch.setattr(reconciliation, "RECONCILE_MAX_PAGES", 2)
    ReconciliationState.objects.create(organisation=org, last_success_at=HELD)
    polled(ChangingXeroInvoices(dense_burst(1000, per_second=100)))
    reconcile_organisation.run(organisation_id=org.pk)
    assert len(enqueued) == 1  # its own next pass
    XeroConnection.objects.filter(organisation=org).update(last_synced_at=timezone.now() - dt.timedelta(hours=1))
    later = timezone.now() + dt.timedelta(minutes=6)  # past what "soon" was
    monkeypatch.setattr(timezone, "now", lambda: later)
    reconcile_all.run()
    assert len(enqueued) == 1, [e.kwargs for e in enqueued]


@responses.activate
def test_a_pass_refused_by_the_rate_limit_holds_the_beat_off_and_does_not_go_on_twice(org, monkeypatch, enqueued):
    monkeypatch.setattr(fetch, "xero_rate_limiter", NoRateLimit)
    ReconciliationState.objects.create(organisation=org, last_success_at=HELD)
    xero = ChangingXeroInvoices(dense_burst(150, per_second=100))
    polled_failing_once(xero, page=2, status=429, headers={"Retry-After": "7"})
    reconcile_organisation.run(organisation_id=org.pk)
    assert [e.countdown for e in enqueued] == [7]  # the limiter's wait, and no continuation besides
    state = ReconciliationState.objects.get(organisation=org)
    assert state.due_reason == "window" and state.next_due_at > timezone.now() + dt.timedelta(minutes=10)


@responses.activate
def test_a_pass_xero_fails_is_due_again_soon_and_does_not_go_on_by_itself(org, enqueued):
    ReconciliationState.objects.create(organisation=org, last_success_at=HELD)
    polled_failing_once(ChangingXeroInvoices(dense_burst(150, per_second=100)), page=2, status=503)
    reconcile_organisation.run(organisation_id=org.pk)
    assert enqueued == []
    state = ReconciliationState.objects.get(organisation=org)
    assert state.due_reason == "retry" and state.next_due_at < timezone.now() + dt.timedelta(minutes=6)


@pytest.mark.django_db(transaction=True)
def test_a_pass_that_finds_its_tenants_row_locked_comes_back_in_seconds(org, enqueued):
    """The next pass of a window finds the tenant's row locked for a moment (the beat claiming due tenants, a push
    recording its sync): it comes back a few seconds later. Before, it ended as busy and the window waited for the
    beat's hold, about eleven minutes. A pass that finds another pass running (its lease) does not come back: that
    pass goes on with the window itself."""
    ReconciliationState.objects.create(
        organisation=org, last_success_at=HELD, resume_since=HELD, resume_started_at=timezone.now(), resume_page=3
    )
    locked, release = threading.Event(), threading.Event()

    def hold_the_row():
        try:
            with transaction.atomic():
                list(ReconciliationState.objects.select_for_update().filter(organisation=org))
                locked.set()
                release.wait(10)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_the_row)
    holder.start()
    try:
        assert locked.wait(10)
        reconcile_organisation.run(organisation_id=org.pk)
    finally:
        release.set()
        holder.join(10)
    assert [(e.kwargs, 0 < e.countdown <= 10) for e in enqueued] == [({"organisation_id": org.pk}, True)]

    ReconciliationState.objects.filter(organisation=org).update(
        reconcile_claimed_until=timezone.now() + reconciliation.RECONCILE_LEASE
    )
    reconcile_organisation.run(organisation_id=org.pk)  # another pass holds the lease
    assert len(enqueued) == 1
