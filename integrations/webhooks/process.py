"""Processing one tenant's inbox: claim it, fetch what its events name (paced), apply, and record each outcome.

One worker per tenant at a time, under a lease on its ReconciliationState row; events that fail transiently are
retried with backoff and, after TRANSIENT_MAX_ATTEMPTS, make the tenant's reconciliation come soon.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
import socket
import threading
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from integrations.models import XeroConnection
from integrations.webhooks import fetch
from integrations.webhooks.fetch import FETCH_CHUNK
from integrations.webhooks.models import ReconciliationState, WebhookEvent
from integrations.webhooks.record import queued_mark_clear, queued_mark_hold
from integrations.xero.errors import Retry, WaitForConnection, backoff_seconds, classify
from integrations.xero.exceptions import XeroError

logger = logging.getLogger("integrations.webhooks")

# One processing round: up to this many events, as long as they name at most FETCH_CHUNK resources per category
# (one GET each). Busy tenants repeat the same invoices, so a round usually covers everything received meanwhile.
PROCESS_BATCH = 2000
INBOX_LEASE = dt.timedelta(seconds=120)
TRANSIENT_MAX_ATTEMPTS = 8
# The one backoff (integrations/xero/errors.backoff_seconds) with the inbox's own scale: from 30 s, at most an hour.
DEFER_BASE_SECONDS = 30.0
DEFER_MAX_SECONDS = 3600.0


@dataclass
class ProcessResult:
    processed: int = 0
    ignored: int = 0
    failed: int = 0
    deferred: int = 0
    busy: bool = False
    waiting_for_connection: bool = False
    retry_after: float | None = None


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"[:100]


def reconciliation_state_for(organisation_id: int) -> ReconciliationState:
    state, _ = ReconciliationState.objects.get_or_create(organisation_id=organisation_id)
    return state


def _fetch_interval() -> float:
    """Least time between two fetches for one tenant's inbox. Events arriving faster are coalesced into the next
    fetch (one GET covers up to 100 of them), so the inbox uses a bounded share of the tenant's 60 calls a minute
    and leaves the rest to pushes: 2 s means at most 30 calls a minute."""
    return settings.WEBHOOK_FETCH_INTERVAL_SECONDS / settings.XERO_TIME_SCALE


def _inbox_claim(*, organisation_id: int, owner: str) -> tuple[str, float]:
    """("claimed", 0); ("busy", 0) when another worker holds the lease; ("paced", seconds) when the tenant was
    fetched for too recently (the caller comes back once, then); ("wakeup_due", seconds) when such a run is already
    scheduled."""
    reconciliation_state_for(organisation_id)
    now = timezone.now()
    with transaction.atomic():
        # Blocking, not skip_locked: every holder of this row lock is a short transaction with no Xero call, and a
        # skipped row could leave an event waiting for the sweeper.
        state = ReconciliationState.objects.select_for_update().get(organisation_id=organisation_id)
        # Re-check under the lock: another worker may hold an unexpired lease.
        if (
            state.inbox_claimed_until is not None
            and state.inbox_claimed_until > now
            and state.inbox_claimed_by != owner
        ):
            return "busy", 0.0
        if state.inbox_fetched_at is not None:
            wait = (state.inbox_fetched_at + dt.timedelta(seconds=_fetch_interval()) - now).total_seconds()
            if wait > 0:
                if state.inbox_wakeup_at is not None and now <= state.inbox_wakeup_at:
                    # A wake-up is already on its way: it will take everything stored before it starts.
                    return "wakeup_due", (state.inbox_wakeup_at - now).total_seconds()
                state.inbox_wakeup_at = now + dt.timedelta(seconds=wait)
                state.save(update_fields=["inbox_wakeup_at", "updated_at"])
                return "paced", wait
        state.inbox_claimed_until = now + INBOX_LEASE
        state.inbox_claimed_by = owner
        state.save(update_fields=["inbox_claimed_until", "inbox_claimed_by", "updated_at"])
    return "claimed", 0.0


def _inbox_release(*, organisation_id: int, owner: str) -> None:
    ReconciliationState.objects.filter(organisation_id=organisation_id, inbox_claimed_by=owner).update(
        inbox_claimed_until=None, inbox_claimed_by=""
    )


def _ready(organisation_id: int, now: dt.datetime):
    return WebhookEvent.objects.filter(organisation_id=organisation_id, state=WebhookEvent.State.RECEIVED).filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    )


def webhook_inbox_process(*, organisation_id: int) -> ProcessResult:
    """Process an organisation's received events, oldest event first, until none is left.

    One worker per tenant at a time (a lease on its ReconciliationState row, taken under select_for_update with
    skip_locked and re-checked); a second task for the same tenant returns at once. After releasing the lease it
    looks again, so an event stored while it was finishing is not left behind.
    """
    queued_mark_clear(organisation_id)  # from now on, a new delivery queues a new task
    owner = _worker_name()
    total = ProcessResult()
    for _round in range(10):
        claim, wait = _inbox_claim(organisation_id=organisation_id, owner=owner)
        if claim == "paced":
            total.retry_after = wait
            return total
        if claim == "wakeup_due":
            # Until that run starts, a new delivery need not queue another task.
            queued_mark_hold(organisation_id, seconds=wait)
            total.busy = True
            return total
        if claim == "busy":
            total.busy = True
            return total
        try:
            _process_claimed(organisation_id=organisation_id, owner=owner, total=total)
        finally:
            _inbox_release(organisation_id=organisation_id, owner=owner)
        if total.retry_after is not None or total.waiting_for_connection:
            return total
        if not _ready(organisation_id, timezone.now()).exists():
            return total
    return total


def _process_claimed(*, organisation_id: int, owner: str, total: ProcessResult) -> None:
    connection = fetch.xero_connection_usable(organisation_id)
    if connection is None:
        # Disconnected or needing a reconnect: the events wait; reconciliation after the reconnect catches up.
        total.waiting_for_connection = True
        return
    fetched = False
    while True:
        now = timezone.now()
        batch = _round_of_events(list(_ready(organisation_id, now).order_by("event_date", "pk")[:PROCESS_BATCH]))
        if not batch:
            return
        if fetched:
            return  # one batch per claim: the next claim paces the tenant's fetches
        fetched = True
        ReconciliationState.objects.filter(organisation_id=organisation_id, inbox_claimed_by=owner).update(
            inbox_claimed_until=now + INBOX_LEASE, inbox_fetched_at=now, inbox_wakeup_at=None
        )
        by_category: dict[str, list[WebhookEvent]] = {}
        for event in batch:
            by_category.setdefault(event.category, []).append(event)
        for category, events in by_category.items():
            _process_category(connection=connection, category=category, events=events, total=total)
            if total.retry_after is not None or total.waiting_for_connection:
                return


def _round_of_events(events: list[WebhookEvent]) -> list[WebhookEvent]:
    """The oldest events up to the first that would need a second fetch for its category."""
    seen: dict[str, set[str]] = {}
    for index, event in enumerate(events):
        ids = seen.setdefault(event.category, set())
        if event.resource_id not in ids and len(ids) >= FETCH_CHUNK:
            return events[:index]
        ids.add(event.resource_id)
    return events


def _process_category(
    *, connection: XeroConnection, category: str, events: list[WebhookEvent], total: ProcessResult
) -> None:
    context = {"organisation_id": connection.organisation_id, "tenant_id": connection.tenant_id, "category": category}
    events = _skip_what_we_hold_newer(connection=connection, category=category, events=events, total=total)
    if not events:
        return
    resource_ids = list(dict.fromkeys(event.resource_id for event in events))
    try:
        resources = fetch.xero_resources_fetch(connection=connection, category=category, resource_ids=resource_ids)
    except XeroError as exc:
        _fetch_failed(exc, events=events, total=total, context=context)
        return
    try:
        outcomes = {
            o.resource_id.lower(): o
            for o in fetch.resource_apply(
                organisation_id=connection.organisation_id, category=category, resources=resources, source="webhook"
            )
        }
    except Exception as exc:  # noqa: BLE001 - a bug in applying must not wedge the inbox; shown to support
        logger.exception("xero.webhook.apply_crashed", extra={"event": "xero.webhook.apply_crashed", **context})
        _events_finish(
            events=events,
            state=WebhookEvent.State.FAILED,
            outcome="apply_failed",
            error=f"{type(exc).__name__}: {exc}"[:1000],
        )
        total.failed += len(events)
        return
    by_outcome: dict[str, list[WebhookEvent]] = {}
    for event in events:
        outcome = outcomes.get(event.resource_id)
        if outcome is not None and outcome.outcome == fetch.APPLY_FAILED:
            # That resource alone could not be applied: its events are shown to support with why (retry failed).
            _events_finish(
                events=[event], state=WebhookEvent.State.FAILED, outcome=outcome.outcome, error=outcome.summary
            )
            total.failed += 1
            continue
        by_outcome.setdefault(outcome.outcome if outcome else "not_found", []).append(event)
    for outcome, group in by_outcome.items():
        state = WebhookEvent.State.IGNORED if outcome in ("not_found", "ignored") else WebhookEvent.State.PROCESSED
        _events_finish(events=group, state=state, outcome=outcome)
        if state == WebhookEvent.State.IGNORED:
            total.ignored += len(group)
        else:
            total.processed += len(group)
    logger.info(
        "xero.webhook.processed",
        extra={
            "event": "xero.webhook.processed",
            "events": len(events),
            "resources": len(resource_ids),
            "outcomes": {k: len(v) for k, v in by_outcome.items()},
            **context,
        },
    )


def _fetch_failed(exc: XeroError, *, events: list[WebhookEvent], total: ProcessResult, context: dict) -> None:
    """The one classifier's verdict (integrations/xero/errors.classify) on a fetch Xero did not answer with the
    resources: rate limited, the task comes back when the limiter said; the connection marked unusable, the events
    wait for the reconnect; an outage or a refusal that leaves the connection connected (a permission, a scope, a token
    a refresh did not cure, the tenant's 403 AuthenticationUnsuccessful while the check of Xero's connections it queued
    has not marked it), backed off and failed visibly in the end; anything else fails the events at once."""
    verdict = classify(exc, attempt=max(event.attempts for event in events) + 1)
    extra = {"error": type(exc).__name__, "correlation_id": exc.correlation_id, **context}
    if isinstance(verdict, Retry) and verdict.rate_limited:
        total.retry_after = max(1, math.ceil(verdict.after))
        total.deferred += len(events)
        logger.info("xero.webhook.rate_limited", extra={"event": "xero.webhook.rate_limited", **extra})
    elif isinstance(verdict, WaitForConnection):
        total.waiting_for_connection = True
        total.deferred += len(events)
        logger.warning("xero.webhook.connection_unusable", extra={"event": "xero.webhook.connection_unusable", **extra})
    elif isinstance(verdict, Retry):
        _events_defer(events=events, error=str(exc), total=total)
        logger.warning("xero.webhook.fetch_failed", extra={"event": "xero.webhook.fetch_failed", **extra})
    else:
        _events_finish(events=events, state=WebhookEvent.State.FAILED, outcome="fetch_refused", error=str(exc))
        total.failed += len(events)
        logger.warning("xero.webhook.fetch_refused", extra={"event": "xero.webhook.fetch_refused", **extra})


def _skip_what_we_hold_newer(
    *, connection: XeroConnection, category: str, events: list[WebhookEvent], total: ProcessResult
) -> list[WebhookEvent]:
    """Finish, as fetch_skipped, the events older than the version we hold; return the ones still to fetch for."""
    held = fetch.resource_versions_held(
        organisation_id=connection.organisation_id,
        category=category,
        resource_ids=list(dict.fromkeys(event.resource_id for event in events)),
    )
    skipped = [e for e in events if not fetch.fetch_needed(event_date=e.event_date, held=held.get(e.resource_id))]
    if not skipped:
        return events
    _events_finish(events=skipped, state=WebhookEvent.State.PROCESSED, outcome=fetch.FETCH_SKIPPED)
    total.processed += len(skipped)
    logger.info(
        "xero.webhook.fetch_skipped",
        extra={
            "event": "xero.webhook.fetch_skipped",
            "events": len(skipped),
            "organisation_id": connection.organisation_id,
            "tenant_id": connection.tenant_id,
            "category": category,
        },
    )
    done = {e.pk for e in skipped}
    return [e for e in events if e.pk not in done]


def _events_finish(*, events: list[WebhookEvent], state: str, outcome: str, error: str = "") -> None:
    now = timezone.now()
    # Only rows still `received`: a concurrent duplicate run must not overwrite what was already decided.
    WebhookEvent.objects.filter(pk__in=[e.pk for e in events], state=WebhookEvent.State.RECEIVED).update(
        state=state,
        outcome=outcome,
        last_error=error[:2000],
        processed_at=now,
        attempts=F("attempts") + 1,
        next_attempt_at=None,
    )


def _events_defer(*, events: list[WebhookEvent], error: str, total: ProcessResult) -> None:
    now = timezone.now()
    delay = DEFER_BASE_SECONDS
    failed_organisation = None
    for event in events:
        attempts = event.attempts + 1
        if attempts >= TRANSIENT_MAX_ATTEMPTS:
            WebhookEvent.objects.filter(pk=event.pk, state=WebhookEvent.State.RECEIVED).update(
                state=WebhookEvent.State.FAILED,
                outcome="fetch_failed",
                attempts=attempts,
                last_error=error[:2000],
                processed_at=now,
            )
            total.failed += 1
            failed_organisation = event.organisation_id
        else:
            delay = backoff_seconds(attempts, base=DEFER_BASE_SECONDS, cap=DEFER_MAX_SECONDS)
            WebhookEvent.objects.filter(pk=event.pk, state=WebhookEvent.State.RECEIVED).update(
                attempts=attempts, last_error=error[:2000], next_attempt_at=now + dt.timedelta(seconds=delay)
            )
            total.deferred += 1
    total.retry_after = delay
    if failed_organisation is not None:
        # What those events named never reached us: the tenant's reconciliation comes soon instead of at its cadence.
        from integrations.services.reconcile_cadence import Reason, reconcile_soon

        reconcile_soon(reason=Reason.FAILED_DELIVERY, organisation_ids=[failed_organisation])
