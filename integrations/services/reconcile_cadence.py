"""When each tenant is reconciled: as rarely as its webhooks allow, never later than its cadence (issue 15).

At 10,000 tenants a poll every 5 minutes would cost 4,000 calls a minute, 40% of the app's. Instead each tenant has
`ReconciliationState.next_due_at`:
- after a pass, the tenant's own time within the next XERO_RECONCILE_QUIET_SECONDS (a day): a fixed phase from its
  id, so tenants stay spread over the day even after a burst of early passes, and no interval exceeds the cadence;
- brought forward to XERO_RECONCILE_SOON_SECONDS by a sign that webhooks missed something:
  - `gap`: the webhooks' sequence numbers (app-wide, one delivery after another) skipped a range that no late
    delivery filled within WEBHOOK_GAP_GRACE_SECONDS. Nothing says whose events those were, so every tenant;
  - `failed_delivery`: events of the tenant that we could not fetch after their retries;
  - `activity`: the tenant's last successful push is older than XERO_RECONCILE_ACTIVITY_GRACE_SECONDS and no webhook
    fetch has happened since (a push makes Xero send webhooks; none came);
- new tenants get their phase time.
The beat fan-out claims one page of due tenants (most overdue first) per run, so 10,000 due tenants become pages of
XERO_RECONCILE_PAGE_SIZE, never 10,000 tasks at once; the limiter's background share bounds what they cost.
"""

from __future__ import annotations

import datetime as dt
import logging
from functools import cache
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from integrations.models import XeroConnection
from integrations.webhooks.models import ReconciliationState

logger = logging.getLogger("integrations.webhooks")

# Multiplying by a number coprime with the cadence spreads consecutive ids over the whole of it.
PHASE_SPREAD = 40507
EPOCH = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
FAR_PAST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


class Reason:
    CADENCE = "cadence"
    NEW = "new"
    GAP = "gap"
    FAILED_DELIVERY = "failed_delivery"
    ACTIVITY = "activity"
    REQUESTED = "requested"
    RETRY = "retry"
    WINDOW = "window"  # a window of changes read over several passes: held while its own task reads on, then soon


def _quiet() -> float:
    return max(1.0, float(settings.XERO_RECONCILE_QUIET_SECONDS))


def phase_seconds(organisation_id: int) -> float:
    """The tenant's own offset within the quiet cadence."""
    quiet = _quiet()
    return (organisation_id * PHASE_SPREAD) % max(1, int(quiet)) * (quiet / max(1, int(quiet)))


def reconcile_next_due(*, organisation_id: int, after: dt.datetime) -> dt.datetime:
    """The latest moment at the tenant's phase no more than one cadence after `after` (so never later than the
    cadence, and back at its own time of day after an early pass)."""
    quiet = _quiet()
    limit = (after - EPOCH).total_seconds() + quiet
    phase = phase_seconds(organisation_id)
    at = limit - ((limit - phase) % quiet)
    return EPOCH + dt.timedelta(seconds=at)


def reconcile_soon(*, reason: str, organisation_ids: list[int] | None = None, now: dt.datetime | None = None) -> int:
    """Bring the next pass of these tenants (None: every tenant) forward to XERO_RECONCILE_SOON_SECONDS from now,
    unless it is due sooner already. One UPDATE."""
    now = now or timezone.now()
    soon = now + dt.timedelta(seconds=settings.XERO_RECONCILE_SOON_SECONDS)
    rows = ReconciliationState.objects.filter(Q(next_due_at__isnull=True) | Q(next_due_at__gt=soon))
    if organisation_ids is not None:
        rows = rows.filter(organisation_id__in=organisation_ids)
    return rows.update(next_due_at=soon, due_reason=reason, updated_at=now)


def reconcile_states_ensure(*, now: dt.datetime | None = None, limit: int = 1000) -> int:
    """Give tenants that have no schedule yet (a new connection, rows from before issue 15) their phase time."""
    now = now or timezone.now()
    missing = list(
        XeroConnection.objects.usable()
        .filter(organisation__xero_reconciliation__isnull=True)
        .values_list("organisation_id", flat=True)[:limit]
    )
    ReconciliationState.objects.bulk_create(
        [ReconciliationState(organisation_id=org_id) for org_id in missing], ignore_conflicts=True
    )
    unscheduled = list(
        ReconciliationState.objects.filter(next_due_at__isnull=True).values_list("pk", "organisation_id")[:limit]
    )
    for pk, org_id in unscheduled:
        ReconciliationState.objects.filter(pk=pk, next_due_at__isnull=True).update(
            next_due_at=reconcile_next_due(organisation_id=org_id, after=now), due_reason=Reason.NEW
        )
    return len(missing) + len(unscheduled)


def reconcile_due_claim(*, now: dt.datetime | None = None, limit: int | None = None) -> list[int]:
    """One page of tenants due for a pass (most overdue first), claimed: their next_due_at moves past the page's
    interval and a lease, so the next fan-out does not queue them again while their task waits, and a lost task
    makes them due again. Returns organisation ids."""
    now = now or timezone.now()
    limit = limit or settings.XERO_RECONCILE_PAGE_SIZE
    grace = dt.timedelta(seconds=settings.XERO_RECONCILE_ACTIVITY_GRACE_SECONDS)
    reconcile_states_ensure(now=now)
    usable = XeroConnection.objects.usable()
    # Activity without webhooks: a push older than the grace, no webhook fetch and no pass since.
    activity = (
        Q(organisation__xero_connection__last_synced_at__lt=now - grace)
        & Q(organisation__xero_connection__last_synced_at__gt=Coalesce(F("inbox_fetched_at"), FAR_PAST))
        & Q(organisation__xero_connection__last_synced_at__gt=Coalesce(F("last_success_at"), FAR_PAST))
        & Q(resume_since__isnull=True)  # a window being read is its passes' to schedule (reconcile_window_held)
    )
    hold = _hold(now)
    with transaction.atomic():
        rows = list(
            ReconciliationState.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(organisation_id__in=usable.values("organisation_id"))
            .filter(Q(next_due_at__lte=now) | activity)
            .order_by("next_due_at", "pk")
            .values_list("pk", "organisation_id", "next_due_at")[:limit]
        )
        active = {pk for pk, _, due in rows if due is not None and due > now}  # came in by activity
        if active:
            ReconciliationState.objects.filter(pk__in=active).update(due_reason=Reason.ACTIVITY)
        ReconciliationState.objects.filter(pk__in=[pk for pk, _, _ in rows]).update(next_due_at=hold)
    return [org_id for _, org_id, _ in rows]


def _hold(now: dt.datetime) -> dt.datetime:
    """Past the next fan-out and a lease: a tenant held till then is not queued again meanwhile, and is due again
    if its task is lost."""
    return now + dt.timedelta(seconds=settings.XERO_RECONCILE_EVERY_SECONDS + 600)


def reconcile_window_held(*, organisation_id: int) -> None:
    """A pass goes on with its own task (the rest of its window, or the same page after a 429): the beat holds off
    (one chain of passes per tenant, not one more at each fan-out), and takes the tenant up again if that task is
    lost."""
    now = timezone.now()
    ReconciliationState.objects.filter(organisation_id=organisation_id).update(
        next_due_at=_hold(now), due_reason=Reason.WINDOW, updated_at=now
    )


def reconcile_pass_scheduled(
    *, organisation_id: int, started: dt.datetime, ok: bool, soon_reason: str = Reason.RETRY
) -> None:
    """After a pass: the next at the tenant's phase within the cadence, or soon (`soon_reason`: after a failure, or
    while a window of changes is read over several passes)."""
    if ok:
        ReconciliationState.objects.filter(organisation_id=organisation_id).update(
            next_due_at=reconcile_next_due(organisation_id=organisation_id, after=started), due_reason=Reason.CADENCE
        )
    else:
        reconcile_soon(reason=soon_reason, organisation_ids=[organisation_id])


# ---------------------------------------------------------------- the webhooks' sequence numbers

# KEYS: 1 high-water mark, 2 open gaps (member "from:to", score: when seen, ms). ARGV: 1 first, 2 last.
# A delivery past the mark opens a gap for what it skipped; a late one (a retry, out of order) closes what it covers.
_SEEN = """
local first, last = tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local hw = tonumber(redis.call('GET', KEYS[1]) or '-1')
if hw < 0 then redis.call('SET', KEYS[1], last) return 0 end
local opened = 0
if first > hw + 1 then
  redis.call('ZADD', KEYS[2], now, (hw + 1) .. ':' .. (first - 1))
  opened = 1
end
if last > hw then redis.call('SET', KEYS[1], last) end
if first <= hw then
  local gaps = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
  for i = 1, #gaps, 2 do
    local a, b = string.match(gaps[i], '(%d+):(%d+)')
    a, b = tonumber(a), tonumber(b)
    if first <= b and last >= a then
      redis.call('ZREM', KEYS[2], gaps[i])
      if a < first then redis.call('ZADD', KEYS[2], gaps[i + 1], a .. ':' .. (first - 1)) end
      if b > last then redis.call('ZADD', KEYS[2], gaps[i + 1], (last + 1) .. ':' .. b) end
    end
  end
end
return opened
"""

# KEYS: 1 open gaps; ARGV: 1 grace ms. Removes and counts the gaps open longer than the grace.
_OVERDUE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local old = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[1]))
for _, m in ipairs(old) do redis.call('ZREM', KEYS[2], m) end
return #old
"""


@cache
def _scripts() -> tuple[Any, Any, Any]:
    client = _client()
    return client, client.register_script(_SEEN), client.register_script(_OVERDUE)


@cache
def _client() -> Any:
    if settings.REDIS_URL:
        import redis

        # Short timeouts: the receiver calls this before answering Xero, which waits 5 s at most.
        return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1)
    import fakeredis

    from integrations.xero.ratelimit import in_process_redis_server

    return fakeredis.FakeRedis(server=in_process_redis_server())


def _keys() -> list[str]:
    base = f"{settings.XERO_RATE_LIMIT_PREFIX}:webhook-seq"
    return [f"{base}:hw", f"{base}:gaps"]


def webhook_sequence_seen(*, first: int | None, last: int | None) -> bool:
    """The receiver saw a delivery with these sequence numbers. True when it opened a gap. Never raises: the
    receiver must answer Xero within 5 s whatever Redis does."""
    if not first or not last or last < first:
        return False  # intent-to-receive checks (sequence 0) and deliveries without numbers
    try:
        _, seen, _ = _scripts()
        return bool(seen(keys=_keys(), args=[first, last]))
    except Exception:  # noqa: BLE001 - a count for scheduling, never worth failing a delivery
        logger.warning("xero.webhook.sequence_not_recorded", extra={"event": "xero.webhook.sequence_not_recorded"})
        return False


def webhook_gaps_overdue(*, now: dt.datetime | None = None) -> int:
    """Gaps still open after WEBHOOK_GAP_GRACE_SECONDS: events were lost, and nothing says whose, so every tenant is
    reconciled soon (the fan-out pages through them under the limiter's background share). Returns the gaps."""
    _, _, overdue = _scripts()
    gaps = int(overdue(keys=_keys(), args=[int(settings.WEBHOOK_GAP_GRACE_SECONDS * 1000)]))
    if gaps:
        tenants = reconcile_soon(reason=Reason.GAP, now=now)
        logger.warning(
            "xero.webhook.sequence_gap",
            extra={"event": "xero.webhook.sequence_gap", "gaps": gaps, "tenants": tenants},
        )
    return gaps


__all__ = [
    "Reason",
    "phase_seconds",
    "reconcile_due_claim",
    "reconcile_next_due",
    "reconcile_pass_scheduled",
    "reconcile_soon",
    "reconcile_states_ensure",
    "webhook_gaps_overdue",
    "webhook_sequence_seen",
]
