"""The batch page's notice while a push is held up (invoices.push_notice.batch_push_notice), without workers: the live
fault tests (test_faults_live.py) show it during real outages; these pin down which notice shows when."""

import datetime as dt

import pytest
from django.utils import timezone

from integrations.outbound.models import OutboundAttempt, OutboundOperation
from invoices.models import CreditNote, Customer, Invoice, InvoiceBatch
from invoices.outbound import CONTACTS_CREATE
from invoices.outbound.chunks import CHUNK_KIND
from invoices.push_notice import batch_push_notice, outbound_stall_seconds, push_stall_seconds
from invoices.selectors import batch_progress
from invoices.services.credit_notes import CREDIT_NOTE_CREATE
from tests.factories import make_batch, make_connection, make_credit_note, make_organisation

pytestmark = pytest.mark.django_db

OUT = OutboundAttempt.Outcome
# A chunk's calls as they are stored, (outcome, HTTP status): answered; a 5xx or no answer to a send (its outcome
# unknown); a 429.
OK = (OUT.CONFIRMED, 200)
SERVER_ERROR = (OUT.UNKNOWN, 503)
KEPT_500 = (OUT.UNCONFIRMED, 500)  # a 500 Xero keeps under the key: looked up next, Xero is still failing
TIMEOUT = (OUT.UNKNOWN, None)
RATE_LIMITED = (OUT.RETRY, 429)
# Refused in a way that leaves the connection connected (a permission the Xero user lacks, the tenant's 403 while
# Xero's connections still list it, a 401 a refresh did not cure): retried with the backoff, a bounded number of times.
FORBIDDEN = (OUT.RETRY, 403)
UNAUTHORIZED = (OUT.RETRY, 401)


@pytest.fixture
def waiting(settings):
    settings.PUSH_SWEEP_SECONDS, settings.PUSH_LEASE_SECONDS = 30, 60
    return eligible_batch(invoices=2, sync_state=Invoice.SyncState.IN_FLIGHT)


def eligible_batch(*, invoices: int, sync_state: str):
    organisation = make_organisation()
    batch = make_batch(
        organisation=organisation,
        invoices=invoices,
        eligibility=InvoiceBatch.Eligibility.ELIGIBLE,
        sync_state=sync_state,
    )
    return organisation, batch


def chunk(
    organisation, *, state=OutboundOperation.State.PENDING, next_in: float | None = None, **fields
) -> OutboundOperation:
    now = timezone.now()
    return OutboundOperation.objects.create(
        organisation=organisation,
        tenant_id="t",
        kind=CHUNK_KIND,
        state=state,
        idempotency_key=f"k-{OutboundOperation.objects.count()}",
        next_attempt_at=None if next_in is None else now + dt.timedelta(seconds=next_in),
        **fields,
    )


def attempt(of: OutboundOperation, answer: tuple[str, int | None], *, ago: float = 1.0) -> None:
    outcome, status = answer
    OutboundAttempt.objects.create(
        operation=of,
        action=OutboundAttempt.Action.SEND,
        outcome=outcome,
        http_status=status,
        started_at=timezone.now() - dt.timedelta(seconds=ago),
    )


def notice_for(organisation, batch):
    return batch_push_notice(organisation=organisation, progress=batch_progress(organisation=organisation, batch=batch))


def test_no_notice_while_calls_succeed_or_once_nothing_waits(waiting):
    organisation, batch = waiting
    attempt(chunk(organisation, state=OutboundOperation.State.SENDING), OK)
    assert notice_for(organisation, batch) is None
    Invoice.objects.filter(batch=batch).update(sync_state=Invoice.SyncState.SYNCED)
    attempt(chunk(organisation, next_in=5), SERVER_ERROR, ago=0.5)
    assert notice_for(organisation, batch) is None


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        (SERVER_ERROR, "xero_unavailable"),
        (KEPT_500, "xero_unavailable"),
        (TIMEOUT, "xero_unavailable"),
        (RATE_LIMITED, "rate_limited"),
        (FORBIDDEN, "xero_refused"),
        (UNAUTHORIZED, "xero_refused"),
    ],
)
def test_the_last_answer_names_the_wait_and_the_next_try(waiting, answer, kind):
    organisation, batch = waiting
    first = chunk(organisation, next_in=40)
    attempt(first, OK, ago=5)
    attempt(chunk(organisation, next_in=90), answer, ago=1)
    shown = notice_for(organisation, batch)
    assert shown.kind == kind
    assert shown.next_try in ("39 s", "40 s")


def test_a_chunk_overdue_longer_than_the_sweeper_needs_is_stalled(waiting):
    organisation, batch = waiting
    attempt(chunk(organisation, next_in=-(push_stall_seconds() + 5)), SERVER_ERROR)
    assert notice_for(organisation, batch).kind == "stalled"


def test_a_lease_expired_long_ago_is_stalled_but_a_fresh_one_is_not(waiting):
    organisation, batch = waiting
    now = timezone.now()
    held = chunk(organisation, state=OutboundOperation.State.SENDING, lease_until=now - dt.timedelta(seconds=5))
    assert notice_for(organisation, batch) is None
    held.lease_until = now - dt.timedelta(seconds=push_stall_seconds() + 5)
    held.save(update_fields=["lease_until"])
    assert notice_for(organisation, batch).kind == "stalled"


# ---------------------------------------------------------------- credit notes (their outbound operations)


@pytest.fixture
def waiting_credit_note(settings):
    """A batch whose invoices are in Xero and whose credit note waits on its outbound operation."""
    settings.OUTBOUND_SWEEP_SECONDS, settings.OUTBOUND_LEASE_SECONDS = 30, 60
    organisation, batch = eligible_batch(invoices=1, sync_state=Invoice.SyncState.SYNCED)
    note = make_credit_note(batch=batch, sync_state=Invoice.SyncState.IN_FLIGHT)
    return organisation, batch, note


def operation(
    organisation, note, *, kind=CREDIT_NOTE_CREATE, state=OutboundOperation.State.PENDING, next_in=None, **fields
):
    now = timezone.now()
    return OutboundOperation.objects.create(
        organisation=organisation,
        tenant_id="t",
        kind=kind,
        subject_id=note.pk,
        idempotency_key=f"op-{OutboundOperation.objects.count()}",
        state=state,
        next_attempt_at=None if next_in is None else now + dt.timedelta(seconds=next_in),
        **fields,
    )


def outbound_attempt(of: OutboundOperation, outcome: str, *, status: int | None, ago: float = 1.0) -> None:
    OutboundAttempt.objects.create(
        operation=of,
        action=OutboundAttempt.Action.SEND,
        outcome=outcome,
        http_status=status,
        started_at=timezone.now() - dt.timedelta(seconds=ago),
    )


def test_a_credit_note_operation_overdue_longer_than_the_sweeper_needs_is_stalled(waiting_credit_note):
    organisation, batch, note = waiting_credit_note
    operation(organisation, note, next_in=-(outbound_stall_seconds() + 5))
    assert notice_for(organisation, batch).kind == "stalled"


def test_a_credit_note_lease_expired_long_ago_is_stalled_but_a_fresh_one_is_not(waiting_credit_note):
    organisation, batch, note = waiting_credit_note
    now = timezone.now()
    held = operation(
        organisation, note, state=OutboundOperation.State.SENDING, lease_until=now - dt.timedelta(seconds=5)
    )
    assert notice_for(organisation, batch) is None
    held.lease_until = now - dt.timedelta(seconds=outbound_stall_seconds() + 5)
    held.save(update_fields=["lease_until"])
    assert notice_for(organisation, batch).kind == "stalled"


def pending_long(note) -> None:
    """The credit note waits for the push dispatcher to make its operation, since longer than the sweeper needs."""
    long_ago = timezone.now() - dt.timedelta(seconds=max(push_stall_seconds(), outbound_stall_seconds()) + 5)
    CreditNote.objects.filter(pk=note.pk).update(sync_state=Invoice.SyncState.PENDING, updated_at=long_ago)


def test_a_credit_note_waiting_long_for_its_operation_to_be_made_is_stalled(waiting_credit_note):
    organisation, batch, note = waiting_credit_note
    make_connection(organisation=organisation)
    Customer.objects.filter(pk=note.customer_id).update(xero_contact_id="c-1")
    pending_long(note)
    assert notice_for(organisation, batch).kind == "stalled"


def test_a_pending_credit_note_is_not_called_stalled_when_no_connection_can_send_it(waiting_credit_note):
    organisation, batch, note = waiting_credit_note
    Customer.objects.filter(pk=note.customer_id).update(xero_contact_id="c-1")
    pending_long(note)
    assert notice_for(organisation, batch) is None


def test_a_credit_note_waiting_for_its_contact_names_the_contact_creates_wait(waiting_credit_note):
    organisation, batch, note = waiting_credit_note
    make_connection(organisation=organisation)
    pending_long(note)  # its customer has no ContactID yet: a contact create goes first
    contacts = operation(organisation, note, kind=CONTACTS_CREATE, next_in=40)
    outbound_attempt(contacts, OutboundAttempt.Outcome.RETRY, status=429)
    assert notice_for(organisation, batch).kind == "rate_limited"
    OutboundOperation.objects.filter(pk=contacts.pk).update(
        next_attempt_at=timezone.now() - dt.timedelta(seconds=outbound_stall_seconds() + 5)
    )
    assert notice_for(organisation, batch).kind == "stalled"


@pytest.mark.parametrize(
    ("outcome", "status", "kind"),
    [
        (OutboundAttempt.Outcome.UNKNOWN, 503, "xero_unavailable"),
        (OutboundAttempt.Outcome.UNCONFIRMED, 500, "xero_unavailable"),
        (OutboundAttempt.Outcome.UNKNOWN, None, "xero_unavailable"),
        (OutboundAttempt.Outcome.RETRY, 429, "rate_limited"),
    ],
)
def test_a_credit_note_operation_last_answer_names_the_wait_and_the_next_try(
    waiting_credit_note, outcome, status, kind
):
    organisation, batch, note = waiting_credit_note
    outbound_attempt(operation(organisation, note, next_in=40), outcome, status=status)
    shown = notice_for(organisation, batch)
    assert shown.kind == kind
    assert shown.next_try in ("39 s", "40 s")


def test_no_credit_note_notice_for_other_kinds_of_operation_or_once_it_is_in_xero(waiting_credit_note):
    organisation, batch, note = waiting_credit_note
    other = operation(organisation, note, kind="invoice_change", next_in=-(outbound_stall_seconds() + 5))
    outbound_attempt(other, OutboundAttempt.Outcome.UNKNOWN, status=503)
    assert notice_for(organisation, batch) is None
    CreditNote.objects.filter(pk=note.pk).update(sync_state=Invoice.SyncState.SYNCED)
    outbound_attempt(operation(organisation, note, next_in=5), OutboundAttempt.Outcome.UNKNOWN, status=503)
    assert notice_for(organisation, batch) is None
