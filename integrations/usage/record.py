"""Recording Xero API usage per organisation and minute (XeroApiUsage): written on every call by the front door
(read by integrations.usage.selectors).

Writing is one `INSERT ... ON CONFLICT DO UPDATE` per call (the same statement on PostgreSQL and SQLite), so the
count is exact whichever worker or web process made the call, and it never raises: usage is operational data,
and losing a count must never fail a call to Xero. Xero calls are made outside transactions (house rule), so the
row lock is held only for the statement itself; and on PostgreSQL that statement's commit does not wait for the
WAL to reach the disk (`synchronous_commit` off for it alone), because every worker counts on the same minute's
row and each would otherwise hold it locked through a flush while the others queue (about 10 ms after every answer
from Xero on a 2-vCPU machine). A crash of PostgreSQL can lose the last fraction of a second of counts, no more.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.db import Error, connection, transaction
from django.utils import timezone

from integrations.usage.models import XeroApiUsage

logger = logging.getLogger(__name__)

USAGE_RETENTION = dt.timedelta(days=2)

_TABLE = XeroApiUsage._meta.db_table
# The table name is ours and every value a parameter.
_UPSERT = f"""
INSERT INTO {_TABLE} (organisation_id, minute, calls, webhook_calls, reconcile_calls, health_calls, rate_limited,
                      failed, refresh_failures, min_remaining, day_remaining, updated_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (organisation_id, minute) DO UPDATE SET
  calls = {_TABLE}.calls + excluded.calls,
  webhook_calls = {_TABLE}.webhook_calls + excluded.webhook_calls,
  reconcile_calls = {_TABLE}.reconcile_calls + excluded.reconcile_calls,
  health_calls = {_TABLE}.health_calls + excluded.health_calls,
  rate_limited = {_TABLE}.rate_limited + excluded.rate_limited,
  failed = {_TABLE}.failed + excluded.failed,
  refresh_failures = {_TABLE}.refresh_failures + excluded.refresh_failures,
  min_remaining = COALESCE(excluded.min_remaining, {_TABLE}.min_remaining),
  day_remaining = COALESCE(excluded.day_remaining, {_TABLE}.day_remaining),
  updated_at = excluded.updated_at
"""  # noqa: S608


# One simple query, so one implicit transaction: SET LOCAL holds for the upsert and ends with it.
_UPSERT_ASYNC_COMMIT = "SET LOCAL synchronous_commit TO OFF; " + _UPSERT


def minute_of(at: dt.datetime) -> dt.datetime:
    return at.astimezone(dt.UTC).replace(second=0, microsecond=0)


def _bump(
    *,
    organisation_id: int,
    calls: int = 0,
    priority: str = "customer",
    rate_limited: int = 0,
    failed: int = 0,
    refresh_failures: int = 0,
    min_remaining: int | None = None,
    day_remaining: int | None = None,
    at: dt.datetime | None = None,
) -> None:
    now = at or timezone.now()
    as_db = connection.ops.adapt_datetimefield_value  # SQLite stores naive UTC text, as the ORM writes it
    params = [
        organisation_id,
        as_db(minute_of(now)),
        calls,
        calls if priority == "webhook" else 0,
        calls if priority == "reconcile" else 0,
        calls if priority == "health" else 0,
        rate_limited,
        failed,
        refresh_failures,
        min_remaining,
        day_remaining,
        as_db(now),
    ]
    try:
        if connection.in_atomic_block:
            # Inside a caller's transaction (the connect flow): a savepoint, so a failure here cannot break it.
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(_UPSERT, params)
        else:
            with connection.cursor() as cursor:
                cursor.execute(_UPSERT_ASYNC_COMMIT if connection.vendor == "postgresql" else _UPSERT, params)
    except Error:  # DatabaseError, and InterfaceError for a connection PostgreSQL closed (a restart)
        logger.warning(
            "xero.usage.not_recorded",
            exc_info=True,
            extra={"event": "xero.usage.not_recorded", "organisation_id": organisation_id},
        )


def xero_call_recorded(
    *,
    organisation_id: int | None,
    status: int | None,
    min_remaining: int | None = None,
    day_remaining: int | None = None,
    at: dt.datetime | None = None,
    priority: str = "customer",
) -> None:
    """Count one call to Xero. status: the HTTP status, or None when Xero did not answer. priority: the call's class
    (integrations.xero.ratelimit.Priority), counted apart for the app-wide usage by class."""
    if not organisation_id:
        return
    _bump(
        organisation_id=organisation_id,
        calls=1,
        priority=str(priority),
        rate_limited=int(status == 429),
        failed=int(status is None or status >= 500),
        min_remaining=min_remaining,
        day_remaining=day_remaining,
        at=at,
    )


def xero_refresh_failure_recorded(*, organisation_id: int | None, at: dt.datetime | None = None) -> None:
    """Count one failed token refresh, invalid_grant included (the token store calls this after its transaction)."""
    if organisation_id:
        _bump(organisation_id=organisation_id, refresh_failures=1, at=at)


def xero_usage_prune(*, now: dt.datetime | None = None) -> int:
    """Forget minutes older than USAGE_RETENTION (the housekeeping beat). Uses the `minute` index."""
    cutoff = (now or timezone.now()) - USAGE_RETENTION
    deleted, _ = XeroApiUsage.objects.filter(minute__lt=cutoff).delete()
    return deleted
