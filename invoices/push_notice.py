"""The batch page's notice while its waiting documents are held up: invoices in push chunks, credit notes (and their
allocations) in their own operations; all of them the outbound engine's. Read per organisation, as operations are."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Min, Q
from django.utils import timezone

from integrations.models import XeroConnection
from integrations.outbound.models import OutboundAttempt, OutboundOperation
from invoices.models import CreditNote, Invoice, InvoiceBatch
from invoices.outbound import CONTACTS_CREATE
from invoices.outbound.chunks import CHUNK_KIND
from invoices.selectors import BatchProgress
from invoices.services.credit_notes import CREDIT_NOTE_ALLOCATE, CREDIT_NOTE_CREATE
from organisations.models import Organisation

XERO_UNAVAILABLE, RATE_LIMITED, XERO_REFUSED = "xero_unavailable", "rate_limited", "xero_refused"
ANSWERED = ""  # the last call had an answer that holds nothing up
# A credit note's writes, and the contact create that goes before it when its customer is new to Xero.
CREDIT_NOTE_KINDS = (CREDIT_NOTE_CREATE, CREDIT_NOTE_ALLOCATE, CONTACTS_CREATE)
RECENT = timedelta(hours=1)


@dataclass(frozen=True)
class PushNotice:
    """Why a batch's waiting documents are not moving right now, for the batch page while a push is under way.

    kind: xero_unavailable (Xero's last answer was a 5xx or no answer), rate_limited (Xero's last answer was a
    429), xero_refused (Xero's last answer was a 401 or 403 that left the connection connected: retried a bounded
    number of times, integrations/xero/errors.classify), stalled (a chunk or operation is overdue by longer than
    the sweeper needs to pick it up again: our workers, broker or database are down). next_try_in: seconds until
    the next call is due, when one is scheduled.
    """

    kind: str
    next_try_in: int | None = None

    @property
    def next_try(self) -> str:
        if self.next_try_in is None:
            return ""
        seconds = max(1, self.next_try_in)
        return f"{seconds} s" if seconds < 120 else f"{round(seconds / 60)} min"


@dataclass(frozen=True)
class _Wait:
    """One kind of waiting work: is it stalled, its last call (when, and what held it up), its next due call."""

    stalled: bool
    last_call: tuple[datetime, str] | None
    next_due: datetime | None


def push_stall_seconds() -> float:
    """How long a due chunk may wait before the page calls it stalled: the sweeper re-queues overdue chunks
    every PUSH_SWEEP_SECONDS and expired leases after PUSH_LEASE_SECONDS, so longer means nothing runs them."""
    return 2 * settings.PUSH_SWEEP_SECONDS + settings.PUSH_LEASE_SECONDS


def outbound_stall_seconds() -> float:
    """The same for the outbound engine's operations (its sweeper and lease)."""
    return 2 * settings.OUTBOUND_SWEEP_SECONDS + settings.OUTBOUND_LEASE_SECONDS


def batch_push_notice(*, organisation: Organisation, progress: BatchProgress, now=None) -> PushNotice | None:
    """The notice for a batch with waiting invoices or credit notes; the latest call of either kind names it."""
    if not progress.waiting:
        return None
    now = now or timezone.now()
    waits = []
    if progress.invoices.waiting:
        waits.append(_invoice_wait(organisation, now))
    if progress.waiting > progress.invoices.waiting:
        waits.append(_credit_note_wait(organisation, now))
    if any(wait.stalled for wait in waits):
        return PushNotice("stalled")
    calls = [wait.last_call for wait in waits if wait.last_call]
    held_by = max(calls)[1] if calls else ANSWERED
    if held_by == ANSWERED:
        return None
    due = min((wait.next_due for wait in waits if wait.next_due), default=None)
    return PushNotice(held_by, int((due - now).total_seconds()) if due else None)


def _overdue(*, late: datetime) -> Q:
    """Operations nothing ran in time: due (or never scheduled) before `late`, or leased and the lease expired
    before it."""
    OP = OutboundOperation.State
    return (
        Q(state=OP.PENDING, next_attempt_at__lt=late)
        | Q(state=OP.PENDING, next_attempt_at__isnull=True, created_at__lt=late)
        | Q(state=OP.SENDING, lease_until__lt=late)
    )


def _latest_call(organisation: Organisation, kinds: tuple[str, ...], now) -> tuple[datetime, str] | None:
    """The last hour's latest call of these kinds of operation: when, and what it held up."""
    # Only operations open now or finished within the hour can hold such a call: the page asks every 2 s, and an
    # organisation's finished chunks grow with its history (one per 50 invoices).
    recent = OutboundOperation.objects.filter(organisation=organisation, kind__in=kinds).filter(
        Q(state__in=[OutboundOperation.State.PENDING, OutboundOperation.State.SENDING])
        | Q(completed_at__gte=now - RECENT)
    )
    latest = (
        OutboundAttempt.objects.filter(operation__in=recent, started_at__gte=now - RECENT)
        .order_by("-started_at", "-pk")
        .values_list("started_at", "outcome", "http_status")
        .first()
    )
    return latest and (latest[0], _outbound_held_by(latest[1], latest[2]))


def _operations_wait(organisation: Organisation, kinds: tuple[str, ...], *, stall_seconds: float, now) -> _Wait:
    """The organisation's open operations of these kinds: overdue by more than `stall_seconds`, their latest call,
    their next due one."""
    operations = OutboundOperation.objects.filter(
        organisation=organisation,
        kind__in=kinds,
        state__in=[OutboundOperation.State.PENDING, OutboundOperation.State.SENDING],
    )
    stalled = operations.filter(_overdue(late=now - timedelta(seconds=stall_seconds))).exists()
    due = operations.filter(state=OutboundOperation.State.PENDING, next_attempt_at__gt=now).aggregate(
        due=Min("next_attempt_at")
    )
    return _Wait(stalled, _latest_call(organisation, kinds, now), due["due"])


def _invoice_wait(organisation: Organisation, now) -> _Wait:
    return _operations_wait(organisation, (CHUNK_KIND,), stall_seconds=push_stall_seconds(), now=now)


def _credit_note_wait(organisation: Organisation, now) -> _Wait:
    """Credit notes wait first for the push dispatcher to make their operation, then on that operation."""
    wait = _operations_wait(organisation, CREDIT_NOTE_KINDS, stall_seconds=outbound_stall_seconds(), now=now)
    # Pending with its contact in Xero and a connection to send it: the dispatcher makes its operation on its next
    # pass, so pending longer than the push's sweeper needs means nothing runs. (A new customer's credit note waits
    # on the contact create above; without a usable connection the batch page says so itself.)
    stalled = wait.stalled or (
        XeroConnection.objects.usable().filter(organisation=organisation).exists()
        and CreditNote.objects.filter(
            organisation=organisation,
            sync_state=Invoice.SyncState.PENDING,
            batch__eligibility=InvoiceBatch.Eligibility.ELIGIBLE,
            updated_at__lt=now - timedelta(seconds=push_stall_seconds()),
        )
        .exclude(customer__xero_contact_id="")
        .exists()
    )
    return _Wait(stalled, wait.last_call, wait.next_due)


def _outbound_held_by(outcome: str, http_status: int | None) -> str:
    if http_status == 429:
        return RATE_LIMITED
    OUT = OutboundAttempt.Outcome
    unanswered = http_status is None or http_status >= 500
    if outcome in (OUT.UNKNOWN, OUT.RETRY) and unanswered:
        return XERO_UNAVAILABLE
    if outcome == OUT.RETRY and http_status in (401, 403):
        return XERO_REFUSED
    if outcome == OUT.UNCONFIRMED and http_status is not None and http_status >= 500:
        return XERO_UNAVAILABLE  # a 500 Xero keeps under the key: the next call looks it up, Xero is failing still
    return ANSWERED
