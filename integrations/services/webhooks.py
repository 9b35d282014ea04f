"""The Xero webhook inbox: parse and record deliveries, process each tenant's events, reconcile by polling.

Webhooks carry ids only, so processing fetches the resources from Xero (in batches: GET /Invoices?IDs=...) and
hands them to the applier the invoices app names in settings.XERO_RESOURCE_APPLIERS (the dependency runs
invoices -> integrations; this module never imports invoices). Applying is idempotent and keyed on Xero's
UpdatedDateUTC, so processing an event twice, or out of order, leaves the newest state.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import re
import socket
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection as db_connection
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.module_loading import import_string

from integrations.models import XeroConnection
from integrations.webhook_models import ReconciliationState, WebhookEvent
from integrations.xero import accounting
from integrations.xero.client import XeroClient
from integrations.xero.exceptions import (
    XeroAuthError,
    XeroError,
    XeroNotConnected,
    XeroRateLimited,
    XeroServerError,
    XeroTimeout,
)
from integrations.xero.ratelimit import Priority

logger = logging.getLogger("integrations.webhooks")

KNOWN_CATEGORIES = ("INVOICE", "CONTACT")
RESOURCE_PATHS = {"INVOICE": "Invoices", "CONTACT": "Contacts"}
# Xero pages GET /Invoices and /Contacts by 100, with line items only when `page` is given.
# https://developer.xero.com/documentation/api/accounting/invoices#optional-parameters-for-get-invoices
FETCH_CHUNK = 100
# One processing round: up to this many events, as long as they name at most FETCH_CHUNK resources per category
# (one GET each). Busy tenants repeat the same invoices, so a round usually covers everything received meanwhile.
PROCESS_BATCH = 2000
INBOX_LEASE = dt.timedelta(seconds=120)
TRANSIENT_MAX_ATTEMPTS = 8
_FIELD_LIMITS = {"tenantId": 64, "resourceId": 64, "eventCategory": 20, "eventType": 20, "tenantType": 20}


class MalformedDelivery(ValueError):
    """A validly signed body that is not a Xero webhook payload at all (nothing in it can be stored)."""


@dataclass(frozen=True)
class IncomingEvent:
    tenant_id: str
    tenant_type: str
    category: str
    event_type: str
    resource_id: str
    event_date: dt.datetime | None  # None only for an unusable event: stored with the delivery's time
    sequence: int | None = None
    problem: str = ""  # why this event cannot be used: stored as ignored ("unusable") with this reason


@dataclass(frozen=True)
class RecordResult:
    events: int
    organisation_ids: tuple[int, ...]
    ignored: int


@dataclass
class ProcessResult:
    processed: int = 0
    ignored: int = 0
    failed: int = 0
    deferred: int = 0
    busy: bool = False
    waiting_for_connection: bool = False
    retry_after: float | None = None


@dataclass(frozen=True)
class ApplyOutcome:
    """What an applier did with one resource fetched from Xero (returned by the invoices app)."""

    resource_id: str
    outcome: str  # applied | unchanged | stale | created_in_xero | not_ours | ignored | conflict
    label: str = ""
    summary: str = ""

    @property
    def changed(self) -> bool:
        return self.outcome in ("applied", "created_in_xero")


Applier = Callable[..., list[ApplyOutcome]]


# ---------------------------------------------------------------- receiving


def webhook_keys() -> list[str]:
    return [key for key in (settings.XERO_WEBHOOK_KEY, settings.XERO_WEBHOOK_KEY_PREVIOUS) if key]


# Bounds on what a signed delivery may hold. Xero's ids are GUIDs and its sequence numbers fit a bigint; events
# are from the last days. Anything outside is not Xero's and is stored as ignored rather than breaking the insert.
_MAX_SEQUENCE = 2**63 - 1
_EARLIEST_EVENT = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
_LATEST_EVENT = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
# C0 and C1 controls (PostgreSQL refuses NUL in text) and lone surrogates (not encodable as UTF-8).
_UNSTORABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def webhook_delivery_parse(*, body: bytes) -> list[IncomingEvent]:
    """The events of a delivery (an empty list for an intent-to-receive check). Raises MalformedDelivery when the
    body is not a webhook payload at all; an event that cannot be used comes back with `problem` set, its text
    fields made storable, so it is recorded as ignored with the reason and the delivery is still answered 200."""
    try:
        payload = json.loads(body)
    except RecursionError:
        raise MalformedDelivery("JSON nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedDelivery(f"not JSON ({type(exc).__name__})") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("events"), list):
        raise MalformedDelivery("no events list")
    raw_events = payload["events"]
    first_sequence = payload.get("firstEventSequence")
    if not (
        isinstance(first_sequence, int)
        and not isinstance(first_sequence, bool)
        and 0 <= first_sequence <= _MAX_SEQUENCE - len(raw_events)
    ):
        first_sequence = None  # informational only: an out-of-range number is dropped, the events are kept
    return [
        _event_parse(index, raw, sequence=first_sequence + index if first_sequence is not None else None)
        for index, raw in enumerate(raw_events)
    ]


def _storable(value: Any, limit: int) -> str:
    text = value if isinstance(value, str) else ""
    return _UNSTORABLE.sub("\ufffd", text.strip())[:limit]


def _event_parse(index: int, raw: Any, *, sequence: int | None) -> IncomingEvent:
    if not isinstance(raw, dict):
        return IncomingEvent(
            tenant_id="",
            tenant_type="",
            category="",
            event_type="",
            resource_id="",
            event_date=None,
            sequence=sequence,
            problem=f"event {index} is not an object",
        )
    problems = []
    values = {}
    for name in ("tenantId", "resourceId", "eventCategory", "eventType", "eventDateUtc", "tenantType"):
        value = raw.get(name)
        limit = _FIELD_LIMITS.get(name, 64)
        values[name] = _storable(value, limit)
        if value is None and name == "tenantType":
            continue
        if not isinstance(value, str) or not value.strip():
            problems.append(f"lacks {name}")
        elif _UNSTORABLE.search(value):
            problems.append(f"{name} holds control characters or broken Unicode")
        elif len(value.strip()) > limit:
            problems.append(f"{name} is longer than {limit} characters")
    event_date = _parse_event_date(values["eventDateUtc"]) if values["eventDateUtc"] else None
    if values["eventDateUtc"] and event_date is None:
        problems.append("eventDateUtc is not a date and time Xero would send")
    return IncomingEvent(
        tenant_id=values["tenantId"].lower(),
        tenant_type=values["tenantType"].upper(),
        category=values["eventCategory"].upper(),
        event_type=values["eventType"].upper(),
        resource_id=values["resourceId"].lower(),
        event_date=event_date,
        sequence=sequence,
        problem="; ".join(problems)[:500],
    )


def _parse_event_date(value: str) -> dt.datetime | None:
    # eventDateUtc comes without a zone ("2024-06-21T01:15:39.902") and is UTC.
    # https://developer.xero.com/documentation/guides/webhooks/overview/
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
        if not _EARLIEST_EVENT <= parsed <= _LATEST_EVENT:
            return None
    except (ValueError, OverflowError):
        return None
    return parsed


def webhook_events_record(*, events: Sequence[IncomingEvent], received_at: dt.datetime | None = None) -> RecordResult:
    """Store a delivery's events, once each, and enqueue processing of the new ones after the commit.

    Events for tenants no organisation holds, or for categories we do not handle, are stored as ignored: the
    inbox shows everything Xero sent. On PostgreSQL this is one statement in autocommit (the receiver's hot path,
    see _record_postgresql); elsewhere (SQLite in `make run`) one tenant query and one INSERT ... ON CONFLICT DO
    NOTHING in a transaction. Both store the same rows.
    """
    if not events:
        return RecordResult(events=0, organisation_ids=(), ignored=0)
    now = received_at or timezone.now()
    events = [event if event.event_date is not None else replace(event, event_date=now) for event in events]
    if db_connection.vendor == "postgresql":
        inserted = _record_postgresql(events=events, now=now)
    else:
        inserted = _record_orm(events=events, now=now)
    ids = tuple(
        sorted({organisation_id for organisation_id, state in inserted if state == WebhookEvent.State.RECEIVED})
    )
    if ids:
        transaction.on_commit(lambda: webhook_processing_enqueue(organisation_ids=ids))
    ignored = sum(1 for _organisation_id, state in inserted if state == WebhookEvent.State.IGNORED)
    return RecordResult(events=len(events), organisation_ids=ids, ignored=ignored)


def _ignored_because(*, organisation_id: int | None, event: IncomingEvent) -> str:
    if event.problem:
        return "unusable"
    if organisation_id is None:
        return "unknown_tenant"
    if event.category not in KNOWN_CATEGORIES or (event.tenant_type and event.tenant_type != "ORGANISATION"):
        return "unknown_category"
    return ""


def _record_orm(*, events: Sequence[IncomingEvent], now: dt.datetime) -> list[tuple[int | None, str]]:
    """The portable path. Returns (organisation id, state) of every row it offered to store."""
    tenants = {event.tenant_id for event in events}
    holders = dict(
        XeroConnection.objects.filter(tenant_id__in=tenants, status__in=XeroConnection.BOUND_STATUSES).values_list(
            "tenant_id", "organisation_id"
        )
    )
    rows = []
    for event in events:
        organisation_id = holders.get(event.tenant_id)
        outcome = _ignored_because(organisation_id=organisation_id, event=event)
        rows.append(
            WebhookEvent(
                organisation_id=organisation_id,
                tenant_id=event.tenant_id,
                tenant_type=event.tenant_type,
                category=event.category,
                event_type=event.event_type,
                resource_id=event.resource_id,
                event_date=event.event_date,
                sequence=event.sequence,
                state=WebhookEvent.State.IGNORED if outcome else WebhookEvent.State.RECEIVED,
                outcome=outcome,
                last_error=event.problem,
                received_at=now,
                processed_at=now if outcome else None,
            )
        )
    with transaction.atomic():
        WebhookEvent.objects.bulk_create(rows, ignore_conflicts=True)
    # bulk_create cannot tell the duplicates it skipped: every row counts, and a spare enqueue is harmless.
    return [(row.organisation_id, row.state) for row in rows]


def _record_postgresql(*, events: Sequence[IncomingEvent], now: dt.datetime) -> list[tuple[int | None, str]]:
    """The receiver's hot path: resolve tenants, decide each row's state and insert, in ONE autocommit statement.

    Half the CPU of the ORM path per delivery (no transaction round trips, no ORM compilation; measured in
    docs/benchmarks.md), which is what keeps the receiver's p99 low at Xero's delivery rates. The states and
    outcomes are the same as _ignored_because decides (tests/integrations/test_webhooks_processing.py runs both
    paths on the same deliveries). RETURNING names the rows stored now, not the duplicates ON CONFLICT skipped.
    """
    table = WebhookEvent._meta.db_table
    connections_table = XeroConnection._meta.db_table
    values = ", ".join(["(%s, %s, %s, %s, %s, %s::timestamptz, %s::bigint, %s)"] * len(events))
    # Table names come from the models and every value is a query parameter.
    sql = (
        f"INSERT INTO {table} (organisation_id, tenant_id, tenant_type, category, event_type, resource_id, "  # noqa: S608
        "event_date, sequence, state, outcome, attempts, last_error, received_at, processed_at) "
        "SELECT c.organisation_id, v.tenant_id, v.tenant_type, v.category, v.event_type, v.resource_id, "
        "v.event_date, v.sequence, CASE WHEN d.outcome = '' THEN %s ELSE %s END, d.outcome, 0, v.problem, %s, "
        "CASE WHEN d.outcome = '' THEN NULL ELSE %s::timestamptz END "
        f"FROM (VALUES {values}) AS v(tenant_id, tenant_type, category, event_type, resource_id, event_date, sequence, "
        "problem) "
        f"LEFT JOIN {connections_table} c ON c.tenant_id = v.tenant_id AND c.status = ANY(%s) "
        "CROSS JOIN LATERAL (SELECT CASE WHEN v.problem <> '' THEN 'unusable' "
        "WHEN c.organisation_id IS NULL THEN 'unknown_tenant' "
        "WHEN v.category <> ALL(%s) OR (v.tenant_type <> '' AND v.tenant_type <> 'ORGANISATION') "
        "THEN 'unknown_category' ELSE '' END AS outcome) AS d "
        "ON CONFLICT DO NOTHING RETURNING organisation_id, state"
    )
    params: list[Any] = [WebhookEvent.State.RECEIVED.value, WebhookEvent.State.IGNORED.value, now, now]
    for event in events:
        params += [
            event.tenant_id,
            event.tenant_type,
            event.category,
            event.event_type,
            event.resource_id,
            event.event_date,
            event.sequence,
            event.problem,
        ]
    params += [[str(status) for status in XeroConnection.BOUND_STATUSES], list(KNOWN_CATEGORIES)]
    with db_connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [(organisation_id, state) for organisation_id, state in cursor.fetchall()]


def webhook_processing_enqueue(*, organisation_ids: Iterable[int], countdown: float | None = None) -> int:
    """Ask the workers to process these tenants' inboxes. Never raises, and fails in milliseconds: with the broker
    down the events stay `received` and the beat sweeper (or the next delivery) enqueues them later.

    At most one task per tenant waits in the queue: a tenant receiving 100 deliveries a second gets one task, not
    100 (a cache key says "queued, not started"; the task clears it as it starts, so nothing stored after that is
    missed). A delayed run (countdown) always goes, and holds the key until it is due. Returns how many were queued.
    """
    from coordinoter import queue
    from integrations.webhook_tasks import process_webhook_inbox

    queued = 0
    for organisation_id in organisation_ids:
        if not _queued_mark(organisation_id, countdown=countdown):
            continue
        try:
            # Without a broker this goes to the in-process runner: beside the request, never inside it.
            queue.enqueue(
                process_webhook_inbox, kwargs={"organisation_id": organisation_id}, countdown=countdown, fail_fast=True
            )
            queued += 1
        except Exception as exc:  # noqa: BLE001 - any broker failure: the inbox row is the durable record
            _queued_clear(organisation_id)
            logger.warning(
                "xero.webhook.enqueue_failed",
                extra={
                    "event": "xero.webhook.enqueue_failed",
                    "organisation_id": organisation_id,
                    "error": type(exc).__name__,
                },
            )
    return queued


def _queued_key(organisation_id: int) -> str:
    return f"xero:webhooks:queued:{organisation_id}"


def _queued_mark(organisation_id: int, *, countdown: float | None) -> bool:
    """True if a task should be sent now. Any cache failure says yes: a spare task is harmless, a missing one not."""
    try:
        if countdown:
            cache.set(_queued_key(organisation_id), 1, timeout=int(countdown) + 30)
            return True
        return bool(cache.add(_queued_key(organisation_id), 1, timeout=60))
    except Exception:  # noqa: BLE001 - Redis down: enqueueing fails fast on its own
        return True


def _queued_hold(organisation_id: int, *, seconds: float) -> None:
    with contextlib.suppress(Exception):
        cache.set(_queued_key(organisation_id), 1, timeout=max(1, int(seconds) + 1))


def _queued_clear(organisation_id: int) -> None:
    with contextlib.suppress(Exception):
        cache.delete(_queued_key(organisation_id))


# ---------------------------------------------------------------- processing one tenant's inbox


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


def xero_connection_usable(organisation_id: int) -> XeroConnection | None:
    return XeroConnection.objects.usable().filter(organisation_id=organisation_id).first()


def webhook_inbox_process(*, organisation_id: int) -> ProcessResult:
    """Process an organisation's received events, oldest event first, until none is left.

    One worker per tenant at a time (a lease on its ReconciliationState row, taken under select_for_update with
    skip_locked and re-checked); a second task for the same tenant returns at once. After releasing the lease it
    looks again, so an event stored while it was finishing is not left behind.
    """
    _queued_clear(organisation_id)  # from now on, a new delivery queues a new task
    owner = _worker_name()
    total = ProcessResult()
    for _round in range(10):
        claim, wait = _inbox_claim(organisation_id=organisation_id, owner=owner)
        if claim == "paced":
            total.retry_after = wait
            return total
        if claim == "wakeup_due":
            # Until that run starts, a new delivery need not queue another task.
            _queued_hold(organisation_id, seconds=wait)
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
    connection = xero_connection_usable(organisation_id)
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
    resource_ids = list(dict.fromkeys(event.resource_id for event in events))
    try:
        resources = xero_resources_fetch(connection=connection, category=category, resource_ids=resource_ids)
    except XeroRateLimited as exc:
        total.retry_after = max(1, int(exc.retry_after))
        total.deferred += len(events)
        logger.info(
            "xero.webhook.rate_limited",
            extra={"event": "xero.webhook.rate_limited", "retry_after": exc.retry_after, **context},
        )
        return
    except (XeroNotConnected, XeroAuthError) as exc:
        total.waiting_for_connection = True
        total.deferred += len(events)
        logger.warning(
            "xero.webhook.connection_unusable",
            extra={
                "event": "xero.webhook.connection_unusable",
                "error": type(exc).__name__,
                "correlation_id": exc.correlation_id,
                **context,
            },
        )
        return
    except (XeroServerError, XeroTimeout) as exc:
        _events_defer(events=events, error=str(exc), total=total)
        logger.warning(
            "xero.webhook.fetch_failed",
            extra={
                "event": "xero.webhook.fetch_failed",
                "error": type(exc).__name__,
                "correlation_id": getattr(exc, "correlation_id", ""),
                **context,
            },
        )
        return
    except XeroError as exc:
        _events_finish(events=events, state=WebhookEvent.State.FAILED, outcome="fetch_refused", error=str(exc))
        total.failed += len(events)
        logger.warning(
            "xero.webhook.fetch_refused",
            extra={
                "event": "xero.webhook.fetch_refused",
                "error": type(exc).__name__,
                "correlation_id": exc.correlation_id,
                **context,
            },
        )
        return
    try:
        outcomes = {
            o.resource_id.lower(): o
            for o in resource_apply(
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


def _events_finish(*, events: list[WebhookEvent], state: str, outcome: str, error: str = "") -> None:
    from django.db.models import F

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
    delay = 30
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
            delay = min(3600, 30 * 2 ** (attempts - 1))
            WebhookEvent.objects.filter(pk=event.pk, state=WebhookEvent.State.RECEIVED).update(
                attempts=attempts, last_error=error[:2000], next_attempt_at=now + dt.timedelta(seconds=delay)
            )
            total.deferred += 1
    total.retry_after = delay
    if failed_organisation is not None:
        # What those events named never reached us: the tenant's reconciliation comes soon instead of at its cadence.
        from integrations.services.reconcile_cadence import Reason, reconcile_soon

        reconcile_soon(reason=Reason.FAILED_DELIVERY, organisation_ids=[failed_organisation])


def xero_resources_fetch(
    *, connection: XeroConnection, category: str, resource_ids: Sequence[str]
) -> list[dict[str, Any]]:
    """The current version of each resource, fetched in pages of 100 ids: one call per 100 events, not one each
    (Xero allows a tenant 60 calls a minute). An id Xero does not return is simply absent."""
    client = XeroClient(connection.pk, rate_limiter=xero_rate_limiter(), priority=Priority.WEBHOOK)
    found: list[dict[str, Any]] = []
    for start in range(0, len(resource_ids), FETCH_CHUNK):
        chunk = resource_ids[start : start + FETCH_CHUNK]
        if category == "CONTACT":
            response = accounting.contacts_get(client, ids=chunk, include_archived=True, page=1)
        else:
            response = accounting.invoices_get(client, ids=chunk)
        found.extend(accounting.items(response, RESOURCE_PATHS[category]))
    return found


def xero_rate_limiter():
    """The push pipeline's shared per-tenant limiter, when it is installed."""
    try:
        from integrations.xero import ratelimit
    except ImportError:
        return None
    factory = getattr(ratelimit, "rate_limiter", None)
    return factory() if callable(factory) else None


def resource_apply(
    *, organisation_id: int, category: str, resources: Sequence[Mapping[str, Any]], source: str
) -> list[ApplyOutcome]:
    """Hand fetched resources to the applier registered for their category (settings.XERO_RESOURCE_APPLIERS)."""
    if not resources:
        return []
    applier: Applier = import_string(settings.XERO_RESOURCE_APPLIERS[category])
    return applier(organisation_id=organisation_id, resources=list(resources), source=source)


# ---------------------------------------------------------------- the sweeper


def webhook_inbox_sweep(*, older_than: dt.timedelta = dt.timedelta(seconds=30)) -> list[int]:
    """Organisations with received events nobody is processing (the broker was down, a worker died, a deferred
    retry is due): enqueue them. Returns their ids."""
    now = timezone.now()
    waiting = (
        WebhookEvent.objects.filter(state=WebhookEvent.State.RECEIVED, organisation__isnull=False)
        .filter(Q(received_at__lte=now - older_than, next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .order_by()
        .values_list("organisation_id", flat=True)
        .distinct()
    )
    active = set(
        XeroConnection.objects.usable().filter(organisation_id__in=waiting).values_list("organisation_id", flat=True)
    )
    busy = set(
        ReconciliationState.objects.filter(organisation_id__in=active, inbox_claimed_until__gt=now).values_list(
            "organisation_id", flat=True
        )
    )
    due = sorted(active - busy)
    if due:
        webhook_processing_enqueue(organisation_ids=due)
        logger.info("xero.webhook.swept", extra={"event": "xero.webhook.swept", "organisations": len(due)})
    return due


def webhook_events_purge(*, older_than: dt.timedelta | None = None, limit: int = 10_000) -> int:
    """Forget events handled (processed or ignored) longer ago than WEBHOOK_EVENT_RETENTION_DAYS; waiting and failed
    events are kept until someone deals with them. Deletes at most `limit` rows a call (the sweeper calls often)."""
    older_than = older_than or dt.timedelta(days=settings.WEBHOOK_EVENT_RETENTION_DAYS)
    cutoff = timezone.now() - older_than
    ids = list(
        WebhookEvent.objects.filter(
            state__in=[WebhookEvent.State.PROCESSED, WebhookEvent.State.IGNORED], received_at__lt=cutoff
        )
        .order_by()
        .values_list("pk", flat=True)[:limit]
    )
    if ids:
        WebhookEvent.objects.filter(pk__in=ids).delete()
        logger.info("xero.webhook.purged", extra={"event": "xero.webhook.purged", "events": len(ids)})
    return len(ids)


def webhook_events_retry_failed(*, organisation_id: int) -> int:
    """Support action: put an organisation's failed events back to received and enqueue them."""
    with transaction.atomic():
        count = WebhookEvent.objects.filter(organisation_id=organisation_id, state=WebhookEvent.State.FAILED).update(
            state=WebhookEvent.State.RECEIVED, next_attempt_at=None, processed_at=None, outcome=""
        )
        if count:
            transaction.on_commit(lambda: webhook_processing_enqueue(organisation_ids=[organisation_id]))
    logger.info(
        "xero.webhook.retry_failed",
        extra={"event": "xero.webhook.retry_failed", "organisation_id": organisation_id, "events": count},
    )
    return count


__all__ = [
    "ApplyOutcome",
    "IncomingEvent",
    "MalformedDelivery",
    "ProcessResult",
    "RecordResult",
    "reconciliation_state_for",
    "resource_apply",
    "webhook_delivery_parse",
    "webhook_events_purge",
    "webhook_events_record",
    "webhook_events_retry_failed",
    "webhook_inbox_process",
    "webhook_inbox_sweep",
    "webhook_keys",
    "webhook_processing_enqueue",
    "xero_connection_usable",
    "xero_rate_limiter",
    "xero_resources_fetch",
]
