"""Reading Xero API usage: one organisation's minutes and its last 24 hours, and the whole app's minutes by priority
class (the support console's charts, the first-run checklist, /metrics). Selectors only: they never write."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Sum
from django.utils import timezone

from integrations.usage.models import XeroApiUsage
from integrations.usage.record import minute_of
from organisations.models import Organisation


@dataclass(frozen=True)
class UsageMinute:
    minute: dt.datetime
    calls: int
    rate_limited: int
    failed: int
    min_remaining: int | None
    day_remaining: int | None


def xero_usage_minutes(organisation: Organisation, *, since: dt.datetime) -> list[UsageMinute]:
    """The organisation's minutes with any Xero call since `since`, oldest first (one query on the unique index)."""
    rows = (
        XeroApiUsage.objects.filter(organisation=organisation, minute__gte=minute_of(since), calls__gt=0)
        .order_by("minute")
        .values_list("minute", "calls", "rate_limited", "failed", "min_remaining", "day_remaining")
    )
    return [UsageMinute(*row) for row in rows]


@dataclass(frozen=True)
class UsageToday:
    """The organisation's Xero calls over the last 24 hours against its day limit (Xero's day window is fixed per
    tenant and its reset time unknown to us, so the last 24 hours, plus what Xero last said is left)."""

    calls: int
    limit: int
    day_remaining: int | None
    day_remaining_at: dt.datetime | None

    @property
    def percent(self) -> int:
        used = self.calls if self.day_remaining is None else max(self.calls, self.limit - self.day_remaining)
        return min(100, round(100 * used / self.limit)) if self.limit else 0


def xero_usage_today(organisation: Organisation, *, now: dt.datetime | None = None) -> UsageToday:
    """Two small queries on the (organisation, minute) index."""
    since = minute_of((now or timezone.now()) - dt.timedelta(hours=24))
    rows = XeroApiUsage.objects.filter(organisation=organisation, minute__gte=since)
    calls = rows.aggregate(total=Sum("calls"))["total"] or 0
    last = rows.exclude(day_remaining=None).order_by("-minute").values_list("day_remaining", "minute").first()
    return UsageToday(
        calls=calls,
        limit=settings.XERO_RATE_LIMITS["day"],
        day_remaining=last[0] if last else None,
        day_remaining_at=last[1] if last else None,
    )


@dataclass(frozen=True)
class AppMinute:
    """The whole app's Xero calls in one UTC minute, by priority class (integrations.xero.ratelimit.Priority)."""

    minute: dt.datetime
    customer: int
    webhook: int
    reconcile: int
    health: int

    @property
    def calls(self) -> int:
        return self.customer + self.webhook + self.reconcile + self.health

    @property
    def background(self) -> int:
        return self.webhook + self.reconcile + self.health


def xero_app_usage_minutes(*, since: dt.datetime, until: dt.datetime | None = None) -> list[AppMinute]:
    """Every organisation's calls summed per minute and class, oldest first: one grouped query on the minute
    index (the support console's app-wide chart, /metrics). Minutes without a call are absent."""
    rows = XeroApiUsage.objects.filter(minute__gte=minute_of(since))
    if until is not None:
        rows = rows.filter(minute__lt=until)
    grouped = (
        rows.order_by("minute")
        .values("minute")
        .annotate(
            calls=Sum("calls"),
            webhook=Sum("webhook_calls"),
            reconcile=Sum("reconcile_calls"),
            health=Sum("health_calls"),
        )
        .filter(calls__gt=0)
    )
    return [
        AppMinute(
            minute=row["minute"],
            customer=row["calls"] - row["webhook"] - row["reconcile"] - row["health"],
            webhook=row["webhook"],
            reconcile=row["reconcile"],
            health=row["health"],
        )
        for row in grouped
    ]
