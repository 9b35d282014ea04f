"""The support console's usage chart for one organisation: Xero calls per minute over the last 24 hours against
Xero's 60-a-minute limit (429s marked) and the webhook lag (p95 per hour), as geometry for an inline SVG.

Server-rendered (the CSP allows no inline script and no CDN): this module reads three things (the usage minutes,
the hourly lag, the day's lag) and computes coordinates; templates/integrations/support/_usage_chart.html draws.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

from django.utils import timezone

from integrations.usage.record import minute_of
from integrations.usage.selectors import UsageMinute, xero_app_usage_minutes, xero_usage_minutes
from integrations.webhooks.selectors import Lag, webhook_lag_by_hour, webhook_lag_percentiles
from organisations.models import Organisation

XERO_MINUTE_LIMIT = 60
WINDOW = dt.timedelta(hours=24)
# Plot areas in SVG user units; the SVG scales to the card's width.
WIDTH, LEFT, RIGHT = 760, 44, 12
CALLS_TOP, CALLS_HEIGHT = 14, 150
LAG_TOP, LAG_HEIGHT = 14, 90


@dataclass(frozen=True)
class Tick:
    at: float
    label: str


@dataclass(frozen=True)
class Mark:
    x: float
    y: float
    label: str


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str


@dataclass(frozen=True)
class HourRow:
    start: dt.datetime
    calls: int
    peak: int
    rate_limited: int
    lag_p95: float | None
    lag_count: int


@dataclass
class UsageChart:
    start: dt.datetime
    end: dt.datetime
    width: int = WIDTH
    left: int = LEFT
    right_edge: int = WIDTH - RIGHT
    calls_top: int = CALLS_TOP
    calls_bottom: int = CALLS_TOP + CALLS_HEIGHT
    calls_view_height: int = CALLS_TOP + CALLS_HEIGHT + 24
    lag_top: int = LAG_TOP
    lag_bottom: int = LAG_TOP + LAG_HEIGHT
    lag_view_height: int = LAG_TOP + LAG_HEIGHT + 24
    calls_points: str = ""
    limit_y: float = 0.0
    calls_ticks: list[Tick] = field(default_factory=list)
    time_ticks: list[Tick] = field(default_factory=list)
    marks_429: list[Mark] = field(default_factory=list)
    lag_bars: list[Bar] = field(default_factory=list)
    lag_ticks: list[Tick] = field(default_factory=list)
    hours: list[HourRow] = field(default_factory=list)
    calls_total: int = 0
    peak_calls: int = 0
    peak_at: dt.datetime | None = None
    rate_limited_total: int = 0
    failed_total: int = 0
    day_remaining: int | None = None
    day_remaining_at: dt.datetime | None = None
    lag_p95: float | None = None
    lag_p50: float | None = None
    lag_count: int = 0

    @property
    def has_calls(self) -> bool:
        return self.calls_total > 0

    @property
    def has_lag(self) -> bool:
        return self.lag_count > 0

    @property
    def empty(self) -> bool:
        return not self.has_calls and not self.has_lag


def usage_chart_for(organisation: Organisation, *, now: dt.datetime | None = None) -> UsageChart:
    """Three queries whatever the data: the usage minutes, the lag per hour, and the day's lag percentiles."""
    end = minute_of(now or timezone.now()) + dt.timedelta(minutes=1)
    start = end - WINDOW
    minutes = xero_usage_minutes(organisation, since=start)
    lag_by_hour = webhook_lag_by_hour(organisation_id=organisation.pk, since=start)
    day_lag = webhook_lag_percentiles(organisation_ids=[organisation.pk], since=start)[organisation.pk]
    return build_usage_chart(start=start, end=end, minutes=minutes, lag_by_hour=lag_by_hour, day_lag=day_lag)


def build_usage_chart(
    *,
    start: dt.datetime,
    end: dt.datetime,
    minutes: list[UsageMinute],
    lag_by_hour: dict[dt.datetime, Lag],
    day_lag: Lag,
) -> UsageChart:
    chart = UsageChart(start=start, end=end)
    span = (end - start).total_seconds()
    plot_width = chart.right_edge - chart.left

    def x_at(at: dt.datetime) -> float:
        return round(chart.left + plot_width * (at - start).total_seconds() / span, 1)

    # ---- calls per minute
    by_minute = {m.minute: m for m in minutes if start <= m.minute < end}
    chart.calls_total = sum(m.calls for m in by_minute.values())
    chart.rate_limited_total = sum(m.rate_limited for m in by_minute.values())
    chart.failed_total = sum(m.failed for m in by_minute.values())
    if by_minute:
        peak = max(by_minute.values(), key=lambda m: (m.calls, m.minute))
        chart.peak_calls, chart.peak_at = peak.calls, peak.minute
        seen = [m for m in by_minute.values() if m.day_remaining is not None]
        if seen:
            last = max(seen, key=lambda m: m.minute)
            chart.day_remaining, chart.day_remaining_at = last.day_remaining, last.minute
    top = _nice_ceiling(max(XERO_MINUTE_LIMIT * 1.2, chart.peak_calls * 1.1))

    def y_calls(value: float) -> float:
        return round(chart.calls_bottom - CALLS_HEIGHT * value / top, 1)

    chart.limit_y = y_calls(XERO_MINUTE_LIMIT)
    step = _tick_step(top)
    chart.calls_ticks = [Tick(y_calls(v), str(v)) for v in range(0, int(top) + 1, step)]
    points: list[tuple[float, float]] = []
    count = int(span // 60)
    for i in range(count):
        at = start + dt.timedelta(minutes=i)
        m = by_minute.get(at)
        value = m.calls if m else 0
        point = (x_at(at), y_calls(value))
        # Drop the middle of runs of the same value: a straight line needs only its ends.
        if len(points) >= 2 and points[-1][1] == point[1] == points[-2][1]:
            points[-1] = point
        else:
            points.append(point)
        if m and m.rate_limited:
            chart.marks_429.append(
                Mark(
                    point[0],
                    y_calls(value),
                    f"{timezone.localtime(at):%H:%M}: "
                    f"{m.rate_limited} call{'s' if m.rate_limited != 1 else ''} answered 429",
                )
            )
    chart.calls_points = " ".join(f"{x},{y}" for x, y in points)

    # ---- time axis: every 3 hours, on the hour
    first = start.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
    hour = first
    while hour < end:
        if timezone.localtime(hour).hour % 3 == 0:
            chart.time_ticks.append(Tick(x_at(hour), f"{timezone.localtime(hour):%H:%M}"))
        hour += dt.timedelta(hours=1)

    # ---- webhook lag p95 per hour
    chart.lag_p50, chart.lag_p95, chart.lag_count = day_lag["p50"], day_lag["p95"], int(day_lag["count"] or 0)
    worst = max((lag["p95"] or 0 for lag in lag_by_hour.values()), default=0)
    lag_top = _nice_ceiling(max(worst * 1.1, 1.0))
    lag_step = _tick_step(lag_top, ticks=3, integral=lag_top >= 3)
    chart.lag_ticks = [
        Tick(round(chart.lag_bottom - LAG_HEIGHT * v / lag_top, 1), _seconds(v)) for v in _frange(0, lag_top, lag_step)
    ]
    hour_start = start.replace(minute=0, second=0, microsecond=0)
    hours = []
    while hour_start < end:
        hours.append(hour_start)
        hour_start += dt.timedelta(hours=1)
    for h in hours:
        lag = lag_by_hour.get(h)
        in_hour = [m for m in by_minute.values() if h <= m.minute < h + dt.timedelta(hours=1)]
        chart.hours.append(
            HourRow(
                start=h,
                calls=sum(m.calls for m in in_hour),
                peak=max((m.calls for m in in_hour), default=0),
                rate_limited=sum(m.rate_limited for m in in_hour),
                lag_p95=lag["p95"] if lag else None,
                lag_count=int(lag["count"]) if lag else 0,
            )
        )
        if lag and lag["p95"] is not None:
            x0, x1 = max(x_at(h), chart.left), min(x_at(h + dt.timedelta(hours=1)), chart.right_edge)
            height = round(LAG_HEIGHT * lag["p95"] / lag_top, 1)
            chart.lag_bars.append(
                Bar(
                    x=round(x0 + 1, 1),
                    y=round(chart.lag_bottom - height, 1),
                    width=round(max(1.0, x1 - x0 - 2), 1),
                    height=max(height, 1.0),
                    label=f"{timezone.localtime(h):%H:00}: p95 {_seconds(lag['p95'])} over {lag['count']} events",
                )
            )
    chart.hours = [row for row in chart.hours if row.calls or row.lag_count]
    return chart


def _nice_ceiling(value: float) -> float:
    """The next round number (1, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 times a power of ten) at or above value."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for factor in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if value <= factor * power:
            return factor * power
    return 10 * power


def _tick_step(top: float, *, ticks: int = 4, integral: bool = True) -> float:
    raw = top / ticks
    step = _nice_ceiling(raw)
    return max(1, int(step)) if integral else step


def _frange(start: float, stop: float, step: float) -> list[float]:
    values, v = [], start
    while v <= stop + 1e-9:
        values.append(round(v, 3))
        v += step
    return values


def _seconds(value: float) -> str:
    if value >= 60:
        return f"{value / 60:.1f} min"
    if value >= 10 or value == int(value):
        return f"{value:.0f} s"
    return f"{value:.1f} s"


# ---------------------------------------------------------------- the whole app (issue 15)


@dataclass(frozen=True)
class AppHourRow:
    start: dt.datetime
    calls: int
    background: int
    peak: int
    peak_background: int
    peak_background_share: float


@dataclass
class AppUsageChart:
    """Every tenant's calls a minute against Xero's app-wide limit, split by priority class: customers' calls and
    background (webhook fetches, reconciliation, health checks), with the background cap."""

    start: dt.datetime
    end: dt.datetime
    limit: int
    background_cap: int
    width: int = WIDTH
    left: int = LEFT
    right_edge: int = WIDTH - RIGHT
    calls_top: int = CALLS_TOP
    calls_bottom: int = CALLS_TOP + CALLS_HEIGHT
    calls_view_height: int = CALLS_TOP + CALLS_HEIGHT + 24
    all_points: str = ""
    background_points: str = ""
    limit_y: float = 0.0
    cap_y: float = 0.0
    calls_ticks: list[Tick] = field(default_factory=list)
    time_ticks: list[Tick] = field(default_factory=list)
    hours: list[AppHourRow] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=dict)
    peak_calls: int = 0
    peak_at: dt.datetime | None = None
    peak_background: int = 0
    peak_background_at: dt.datetime | None = None

    @property
    def calls_total(self) -> int:
        return sum(self.totals.values())

    @property
    def empty(self) -> bool:
        return self.calls_total == 0


def app_usage_chart(*, now: dt.datetime | None = None) -> AppUsageChart:
    """One grouped query (the minutes of the last 24 hours, summed over every organisation)."""
    from integrations.xero.ratelimit import Priority, rate_limiter

    limiter = rate_limiter()
    end = minute_of(now or timezone.now()) + dt.timedelta(minutes=1)
    start = end - WINDOW
    chart = AppUsageChart(
        start=start,
        end=end,
        limit=limiter.limits.app_minute,
        background_cap=limiter.background_limits(Priority.WEBHOOK)[0],
    )
    by_minute = {m.minute: m for m in xero_app_usage_minutes(since=start) if start <= m.minute < end}
    chart.totals = {
        name: sum(getattr(m, name) for m in by_minute.values())
        for name in ("customer", "webhook", "reconcile", "health")
    }
    if by_minute:
        peak = max(by_minute.values(), key=lambda m: (m.calls, m.minute))
        chart.peak_calls, chart.peak_at = peak.calls, peak.minute
        busiest = max(by_minute.values(), key=lambda m: (m.background, m.minute))
        chart.peak_background, chart.peak_background_at = busiest.background, busiest.minute
    span = (end - start).total_seconds()
    plot_width = chart.right_edge - chart.left
    top = _nice_ceiling(max(chart.limit * 1.1, chart.peak_calls * 1.1))

    def x_at(at: dt.datetime) -> float:
        return round(chart.left + plot_width * (at - start).total_seconds() / span, 1)

    def y_at(value: float) -> float:
        return round(chart.calls_bottom - CALLS_HEIGHT * value / top, 1)

    chart.limit_y, chart.cap_y = y_at(chart.limit), y_at(chart.background_cap)
    chart.calls_ticks = [Tick(y_at(v), f"{v:,}") for v in range(0, int(top) + 1, _tick_step(top))]
    lines: dict[str, list[tuple[float, float]]] = {"all": [], "background": []}
    for i in range(int(span // 60)):
        at = start + dt.timedelta(minutes=i)
        m = by_minute.get(at)
        for name, value in (("all", m.calls if m else 0), ("background", m.background if m else 0)):
            points, point = lines[name], (x_at(at), y_at(value))
            if len(points) >= 2 and points[-1][1] == point[1] == points[-2][1]:
                points[-1] = point  # a straight run needs only its ends
            else:
                points.append(point)
    chart.all_points = " ".join(f"{x},{y}" for x, y in lines["all"])
    chart.background_points = " ".join(f"{x},{y}" for x, y in lines["background"])
    hour = start.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
    while hour < end:
        if timezone.localtime(hour).hour % 3 == 0:
            chart.time_ticks.append(Tick(x_at(hour), f"{timezone.localtime(hour):%H:%M}"))
        hour += dt.timedelta(hours=1)
    hour = start.replace(minute=0, second=0, microsecond=0)
    while hour < end:
        in_hour = [m for m in by_minute.values() if hour <= m.minute < hour + dt.timedelta(hours=1)]
        if in_hour:
            chart.hours.append(
                AppHourRow(
                    start=hour,
                    calls=sum(m.calls for m in in_hour),
                    background=sum(m.background for m in in_hour),
                    peak=max(m.calls for m in in_hour),
                    peak_background=max(m.background for m in in_hour),
                    peak_background_share=max(m.background / chart.limit for m in in_hour),
                )
            )
        hour += dt.timedelta(hours=1)
    return chart
