"""Storing a delivery's events, once each, and queueing their tenants for processing after the commit.

At most one processing task per tenant waits in the queue (a cache key, cleared by the task as it starts).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from django.core.cache import cache
from django.db import connection as db_connection
from django.db import transaction
from django.utils import timezone

from integrations.models import XeroConnection
from integrations.webhooks.models import WebhookEvent
from integrations.webhooks.parse import IncomingEvent

logger = logging.getLogger("integrations.webhooks")

KNOWN_CATEGORIES = ("INVOICE", "CONTACT")


@dataclass(frozen=True)
class RecordResult:
    events: int
    organisation_ids: tuple[int, ...]
    ignored: int


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
    from integrations.webhooks.tasks import process_webhook_inbox

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
            queued_mark_clear(organisation_id)
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


def queued_mark_hold(organisation_id: int, *, seconds: float) -> None:
    with contextlib.suppress(Exception):
        cache.set(_queued_key(organisation_id), 1, timeout=max(1, int(seconds) + 1))


def queued_mark_clear(organisation_id: int) -> None:
    with contextlib.suppress(Exception):
        cache.delete(_queued_key(organisation_id))
