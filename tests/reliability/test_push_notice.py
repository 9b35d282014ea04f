"""The batch page's notice while a push is held up (invoices.selectors.batch_push_notice), without workers: the live
fault tests (test_faults_live.py) show it during real outages; these pin down which notice shows when."""

import datetime as dt

import pytest
from django.utils import timezone

from invoices.models import Invoice, InvoiceBatch, PushAttempt, PushChunk
from invoices.selectors import batch_progress, batch_push_notice, push_stall_seconds
from tests.factories import make_batch, make_organisation

pytestmark = pytest.mark.django_db

A = PushAttempt.Outcome


@pytest.fixture
def waiting(settings):
    settings.PUSH_SWEEP_SECONDS, settings.PUSH_LEASE_SECONDS = 30, 60
    organisation = make_organisation()
    batch = make_batch(
        organisation=organisation,
        invoices=2,
        eligibility=InvoiceBatch.Eligibility.ELIGIBLE,
        sync_state=Invoice.SyncState.IN_FLIGHT,
    )
    return organisation, batch


def chunk(organisation, *, state=PushChunk.State.PENDING, next_in: float | None = None, **fields) -> PushChunk:
    now = timezone.now()
    return PushChunk.objects.create(
        organisation=organisation,
        tenant_id="t",
        state=state,
        idempotency_key=f"k-{PushChunk.objects.count()}",
        next_attempt_at=None if next_in is None else now + dt.timedelta(seconds=next_in),
        **fields,
    )


def attempt(of: PushChunk, outcome: str, *, ago: float = 1.0) -> None:
    PushAttempt.objects.create(
        chunk=of,
        organisation_id=of.organisation_id,
        outcome=outcome,
        started_at=timezone.now() - dt.timedelta(seconds=ago),
    )


def notice_for(organisation, batch):
    return batch_push_notice(organisation=organisation, progress=batch_progress(organisation=organisation, batch=batch))


def test_no_notice_while_calls_succeed_or_once_nothing_waits(waiting):
    organisation, batch = waiting
    attempt(chunk(organisation, state=PushChunk.State.SENDING), A.OK)
    assert notice_for(organisation, batch) is None
    Invoice.objects.filter(batch=batch).update(sync_state=Invoice.SyncState.SYNCED)
    attempt(chunk(organisation, next_in=5), A.SERVER_ERROR, ago=0.5)
    assert notice_for(organisation, batch) is None


@pytest.mark.parametrize(
    ("outcome", "kind"),
    [(A.SERVER_ERROR, "xero_unavailable"), (A.TIMEOUT, "xero_unavailable"), (A.RATE_LIMITED, "rate_limited")],
)
def test_the_last_answer_names_the_wait_and_the_next_try(waiting, outcome, kind):
    organisation, batch = waiting
    first = chunk(organisation, next_in=40)
    attempt(first, A.OK, ago=5)
    attempt(chunk(organisation, next_in=90), outcome, ago=1)
    shown = notice_for(organisation, batch)
    assert shown.kind == kind
    assert shown.next_try in ("39 s", "40 s")


def test_a_chunk_overdue_longer_than_the_sweeper_needs_is_stalled(waiting):
    organisation, batch = waiting
    attempt(chunk(organisation, next_in=-(push_stall_seconds() + 5)), A.SERVER_ERROR)
    assert notice_for(organisation, batch).kind == "stalled"


def test_a_lease_expired_long_ago_is_stalled_but_a_fresh_one_is_not(waiting):
    organisation, batch = waiting
    now = timezone.now()
    held = chunk(organisation, state=PushChunk.State.SENDING, lease_expires_at=now - dt.timedelta(seconds=5))
    assert notice_for(organisation, batch) is None
    held.lease_expires_at = now - dt.timedelta(seconds=push_stall_seconds() + 5)
    held.save(update_fields=["lease_expires_at"])
    assert notice_for(organisation, batch).kind == "stalled"
