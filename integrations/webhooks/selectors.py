"""Reading the webhook inbox for the support console: counts by state, waiting age and lag, per organisation.
Support selectors span tenants (support staff only). Each reads a bounded window through an index and groups in
SQL, so a page costs the same few queries however big the inbox grows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import connection
from django.db.models import Aggregate, Count, F, FloatField, Max, Min, Q
from django.db.models.functions import Extract, TruncHour
from django.utils import timezone

from integrations.models import XeroConnection
from integrations.webhooks.fetch import FETCH_SKIPPED
from integrations.webhooks.models import WebhookEvent


@dataclass(frozen=True)
class InboxSummary:
    organisation_id: int | None
    received: int
    processed: int
    ignored: int
    failed: int
    fetch_skipped: int  # processed without a fetch: we held a newer version than the event (issue 15)
    oldest_waiting_at: dt.datetime | None
    last_received_at: dt.datetime | None

    @property
    def waiting_seconds(self) -> float | None:
        if self.oldest_waiting_at is None:
            return None
        return max(0.0, (timezone.now() - self.oldest_waiting_at).total_seconds())


def webhook_inbox_organisation_ids(*, since: dt.datetime) -> set[int]:
    """Organisations worth a row: events received since `since` (an index-only scan of the window), events still
    waiting (the partial index), or an active connection."""
    recent = set(
        WebhookEvent.objects.filter(received_at__gte=since, organisation__isnull=False)
        .order_by()
        .values_list("organisation_id", flat=True)
        .distinct()
    )
    waiting = set(
        WebhookEvent.objects.filter(state=WebhookEvent.State.RECEIVED, organisation__isnull=False)
        .order_by()
        .values_list("organisation_id", flat=True)
        .distinct()
    )
    active = set(XeroConnection.objects.usable().values_list("organisation_id", flat=True))
    return recent | waiting | active


def webhook_inbox_summaries(
    *, organisation_ids: Iterable[int | None], since: dt.datetime | None = None
) -> dict[int | None, InboxSummary]:
    """Counts by state for these organisations (None: events of tenants no organisation holds), over events received
    since `since`; events still waiting are counted whatever their age. One grouped query."""
    ids = list(organisation_ids)
    wanted = Q(organisation_id__in=[i for i in ids if i is not None])
    if None in ids:
        wanted |= Q(organisation__isnull=True)
    qs = WebhookEvent.objects.filter(wanted)
    if since is not None:
        qs = qs.filter(Q(received_at__gte=since) | Q(state=WebhookEvent.State.RECEIVED))
    rows = (
        qs.order_by()
        .values("organisation_id")
        .annotate(
            received=Count("pk", filter=Q(state="received")),
            processed=Count("pk", filter=Q(state="processed")),
            ignored=Count("pk", filter=Q(state="ignored")),
            failed=Count("pk", filter=Q(state="failed")),
            fetch_skipped=Count("pk", filter=Q(outcome=FETCH_SKIPPED)),
            oldest_waiting_at=Min("received_at", filter=Q(state="received")),
            last_received_at=Max("received_at"),
        )
    )
    return {row["organisation_id"]: InboxSummary(**row) for row in rows}


class _PercentileCont(Aggregate):
    # PostgreSQL's ordered-set aggregate: percentile_cont(f) WITHIN GROUP (ORDER BY expression).
    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression, *, fraction: float, **extra):
        super().__init__(expression, fraction=float(fraction), **extra)


Lag = dict[str, float | None]


def webhook_lag_percentiles(*, organisation_ids: Iterable[int], since: dt.datetime) -> dict[int, Lag]:
    """Received-to-processed lag of events processed since `since`, in seconds, per organisation:
    {id: {"p50", "p95", "count"}}. One grouped query on PostgreSQL; SQLite (make run) sorts in Python."""
    ids = list(organisation_ids)
    qs = WebhookEvent.objects.filter(
        organisation_id__in=ids, state=WebhookEvent.State.PROCESSED, received_at__gte=since, processed_at__isnull=False
    ).order_by()
    empty = {"p50": None, "p95": None, "count": 0}
    out: dict[int, Lag] = {i: dict(empty) for i in ids}
    if connection.vendor == "postgresql":
        lag = Extract(F("processed_at") - F("received_at"), "epoch")
        for row in qs.values("organisation_id").annotate(
            p50=_PercentileCont(lag, fraction=0.5), p95=_PercentileCont(lag, fraction=0.95), count=Count("pk")
        ):
            out[row["organisation_id"]] = {"p50": row["p50"], "p95": row["p95"], "count": row["count"]}
        return out
    lags: dict[int, list[float]] = {}
    for organisation_id, received, processed in qs.values_list("organisation_id", "received_at", "processed_at"):
        lags.setdefault(organisation_id, []).append((processed - received).total_seconds())
    for organisation_id, values in lags.items():
        out[organisation_id] = _percentiles(values)
    return out


def _percentiles(values: list[float]) -> Lag:
    values = sorted(values)
    p50, p95 = (values[min(len(values) - 1, int(p * len(values)))] for p in (0.5, 0.95))
    return {"p50": p50, "p95": p95, "count": len(values)}


def webhook_lag_by_hour(*, organisation_id: int, since: dt.datetime) -> dict[dt.datetime, Lag]:
    """The organisation's received-to-processed lag per hour of receipt (UTC hour start -> {"p50", "p95",
    "count"}), for the support console's usage chart. One grouped query on PostgreSQL; SQLite sorts in Python."""
    qs = WebhookEvent.objects.filter(
        organisation_id=organisation_id,
        state=WebhookEvent.State.PROCESSED,
        received_at__gte=since,
        processed_at__isnull=False,
    ).order_by()
    if connection.vendor == "postgresql":
        lag = Extract(F("processed_at") - F("received_at"), "epoch")
        rows = (
            qs.annotate(hour=TruncHour("received_at", tzinfo=dt.UTC))
            .values("hour")
            .annotate(
                p50=_PercentileCont(lag, fraction=0.5), p95=_PercentileCont(lag, fraction=0.95), count=Count("pk")
            )
        )
        return {row["hour"]: {"p50": row["p50"], "p95": row["p95"], "count": row["count"]} for row in rows}
    lags: dict[dt.datetime, list[float]] = {}
    for received, processed in qs.values_list("received_at", "processed_at"):
        hour = received.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
        lags.setdefault(hour, []).append((processed - received).total_seconds())
    return {hour: _percentiles(values) for hour, values in lags.items()}
