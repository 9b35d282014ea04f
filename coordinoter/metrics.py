"""GET /metrics: Prometheus text format, read at scrape time from the stores every process shares.

Web and worker processes come and go, so nothing is counted in process memory: each scrape asks PostgreSQL
(push chunks and attempts, Xero usage per minute, the webhook inbox, connections) and Redis (the rate limiter's
live windows) a fixed, small number of grouped questions. Series are labelled by organisation id, never by
anything secret (no tokens, no tenant names). Counters are totals over rows that are never pruned (push
attempts); windowed figures over pruned tables are gauges named after their window (`_24h`, `_1h`).

The classic text format (version 0.0.4), which every Prometheus version reads. Access: with DEBUG on, open. In
production only with `Authorization: Bearer <METRICS_TOKEN>`; without METRICS_TOKEN configured the URL answers 404,
as if it did not exist. GET only: a GET needs no CSRF token (it changes nothing); a POST is refused like every POST
without one (403), or with 405 when CSRF checks pass. Not CSRF-exempt: the webhook receiver stays the only
exempt view (tests/security/test_csrf.py).
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
from collections.abc import Iterable, Iterator

from django.conf import settings
from django.db import connection as db_connection
from django.db.models import Count, Min, OuterRef, Q, Subquery, Sum
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector

from integrations.models import WebhookEvent, XeroApiUsage, XeroConnection
from integrations.outbound.models import OutboundAttempt, OutboundOperation
from integrations.usage.record import minute_of
from integrations.usage.selectors import xero_app_usage_minutes
from integrations.webhooks.fetch import FETCH_SKIPPED
from integrations.webhooks.selectors import webhook_lag_percentiles
from integrations.xero.ratelimit import BACKGROUND, Priority, rate_limiter
from invoices.models import Invoice
from invoices.outbound.chunks import CHUNK_KIND

logger = logging.getLogger(__name__)

# Seconds. A 50-invoice PUT /Invoices takes about 1-3 s at Xero; the top buckets catch timeouts.
CHUNK_LATENCY_BUCKETS = (0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0)
WAITING_INVOICE_STATES = (Invoice.SyncState.PENDING, Invoice.SyncState.IN_FLIGHT, Invoice.SyncState.FAILED)
ORG = ["organisation_id"]


class CoordinoterCollector(Collector):
    """Builds every family at collect() time (one scrape = one call)."""

    def __init__(self, *, now: dt.datetime | None = None) -> None:
        self.now = now

    def collect(self) -> Iterator[Metric]:
        now = self.now or timezone.now()
        yield from push_metrics()
        yield from xero_usage_metrics(now)
        yield from xero_app_metrics(now)
        yield from xero_connection_metrics()
        yield from webhook_metrics(now)


def push_metrics() -> Iterator[Metric]:
    attempts = CounterMetricFamily(
        "coordinoter_push_attempts", "PUT /Invoices calls made for push chunks, by outcome.", labels=[*ORG, "outcome"]
    )
    # One grouped pass over the chunks' attempts gives the counters and the latency histogram's cumulative buckets.
    bucket_fields = {
        f"le_{i}": Count("pk", filter=Q(duration_ms__lte=int(b * 1000))) for i, b in enumerate(CHUNK_LATENCY_BUCKETS)
    }
    rows = (
        OutboundAttempt.objects.filter(operation__kind=CHUNK_KIND)
        .order_by()
        .values("operation__organisation_id", "outcome")
        .annotate(n=Count("pk"), total_ms=Sum("duration_ms"), **bucket_fields)
    )
    buckets = [0] * len(CHUNK_LATENCY_BUCKETS)
    count = total_ms = 0
    for row in rows:
        attempts.add_metric([str(row["operation__organisation_id"]), row["outcome"]], row["n"])
        count += row["n"]
        total_ms += row["total_ms"] or 0
        for i in range(len(CHUNK_LATENCY_BUCKETS)):
            buckets[i] += row[f"le_{i}"]
    yield attempts
    yield HistogramMetricFamily(
        "coordinoter_push_chunk_duration_seconds",
        "How long Xero took to answer each push chunk's call.",
        buckets=[*((str(b), n) for b, n in zip(CHUNK_LATENCY_BUCKETS, buckets, strict=True)), ("+Inf", count)],
        sum_value=total_ms / 1000.0,
    )

    chunks = CounterMetricFamily(
        "coordinoter_push_chunks_finished", "Push chunks finished, by final state.", labels=[*ORG, "state"]
    )
    chunks_open = GaugeMetricFamily(
        "coordinoter_push_chunks_open",
        "Push chunks not finished: waiting, being sent, or needing attention (support may retry them).",
        labels=[*ORG, "state"],
    )
    S = OutboundOperation.State
    open_states = (S.PENDING, S.SENDING, S.NEEDS_ATTENTION)
    operations = OutboundOperation.objects.filter(kind=CHUNK_KIND).order_by()
    for row in operations.values("organisation_id", "state").annotate(n=Count("pk")):
        family = chunks_open if row["state"] in open_states else chunks
        family.add_metric([str(row["organisation_id"]), row["state"]], row["n"])
    yield chunks
    yield chunks_open

    invoices = GaugeMetricFamily(
        "coordinoter_invoices_unsynced",
        "Invoices not (yet) in Xero: pending, in flight, or failed.",
        labels=[*ORG, "sync_state"],
    )
    for row in (
        Invoice.objects.filter(sync_state__in=WAITING_INVOICE_STATES)
        .order_by()
        .values("organisation_id", "sync_state")
        .annotate(n=Count("*"))
    ):  # from invoice_unsynced alone
        invoices.add_metric([str(row["organisation_id"]), row["sync_state"]], row["n"])
    yield invoices


def xero_usage_metrics(now: dt.datetime) -> Iterator[Metric]:
    day_ago = now - dt.timedelta(hours=24)
    last_minute = minute_of(now - dt.timedelta(minutes=1))
    families = _organisation_gauges(
        {
            "calls": ("coordinoter_xero_calls_24h", "Calls made to Xero over the last 24 hours."),
            "rate_limited": ("coordinoter_xero_rate_limited_24h", "Calls Xero answered 429 over the last 24 hours."),
            "failed": (
                "coordinoter_xero_failed_24h",
                "Calls Xero answered 5xx or did not answer, over the last 24 hours.",
            ),
            "refresh_failures": (
                "coordinoter_xero_token_refresh_failures_24h",
                "Token refreshes that failed (invalid_grant included), last 24 hours.",
            ),
            "last_minute": (
                "coordinoter_xero_calls_last_minute",
                "Calls made to Xero in the last complete minute (Xero allows 60).",
            ),
        }
    )
    rows = (
        XeroApiUsage.objects.filter(minute__gte=day_ago)
        .order_by()
        .values("organisation_id")
        .annotate(
            sum_calls=Sum("calls"),
            sum_rate_limited=Sum("rate_limited"),
            sum_failed=Sum("failed"),
            sum_refresh_failures=Sum("refresh_failures"),
            sum_last_minute=Sum("calls", filter=Q(minute=last_minute)),
        )
    )
    for row in rows:
        for key, family in families.items():
            family.add_metric([str(row["organisation_id"])], row[f"sum_{key}"] or 0)
    yield from families.values()

    minute_remaining = GaugeMetricFamily(
        "coordinoter_xero_minute_remaining",
        "X-MinLimit-Remaining as Xero last reported it (last 24 hours).",
        labels=ORG,
    )
    day_remaining = GaugeMetricFamily(
        "coordinoter_xero_day_remaining", "X-DayLimit-Remaining as Xero last reported it (last 24 hours).", labels=ORG
    )
    for organisation_id, minute_left, day_left in _latest_remaining(since=day_ago):
        if minute_left is not None:
            minute_remaining.add_metric([str(organisation_id)], minute_left)
        day_remaining.add_metric([str(organisation_id)], day_left)
    yield minute_remaining
    yield day_remaining


def _latest_remaining(*, since: dt.datetime) -> Iterable[tuple[int, int | None, int]]:
    """(organisation, minute and day quota left) from each organisation's newest minute with Xero's headers."""
    reported = XeroApiUsage.objects.filter(minute__gte=since, day_remaining__isnull=False)
    fields = ("organisation_id", "min_remaining", "day_remaining")
    if db_connection.features.can_distinct_on_fields:  # PostgreSQL: DISTINCT ON walks the (organisation, minute) index
        return reported.order_by("organisation_id", "-minute").distinct("organisation_id").values_list(*fields)
    newest = reported.filter(organisation_id=OuterRef("organisation_id")).order_by("-minute").values("minute")[:1]
    return reported.filter(minute=Subquery(newest)).order_by().values_list(*fields)  # SQLite in `make run`


def xero_app_metrics(now: dt.datetime) -> Iterator[Metric]:
    """The app as a whole against Xero's app-wide minute (issue 15): the last complete minute's calls by priority
    class (from the usage rows), the limiter's live window by class (Redis), the limit and the background cap."""
    classes = [str(Priority.CUSTOMER), *(str(p) for p in BACKGROUND)]
    this_minute = minute_of(now)
    last = GaugeMetricFamily(
        "coordinoter_xero_app_calls_last_minute",
        "Calls to Xero in the last complete UTC minute, every organisation together, by priority class.",
        labels=["class"],
    )
    minutes = xero_app_usage_minutes(since=this_minute - dt.timedelta(minutes=1), until=this_minute)
    figures = minutes[0] if minutes else None
    for name in classes:
        last.add_metric([name], getattr(figures, name, 0) if figures else 0)
    yield last
    limiter = rate_limiter()
    limit = GaugeMetricFamily(
        "coordinoter_xero_app_minute_limit", "Xero's app-wide limit of calls a minute (every tenant together)."
    )
    limit.add_metric([], limiter.limits.app_minute)
    yield limit
    cap = GaugeMetricFamily(
        "coordinoter_xero_app_background_cap",
        "Calls a minute background work (webhook fetches, reconciliation, health checks) may take at most.",
    )
    cap.add_metric([], limiter.background_limits(Priority.WEBHOOK)[0])
    yield cap
    try:
        live = limiter.app_usage()
    except Exception:  # noqa: BLE001 - Redis down: the database figures are still worth serving
        logger.warning("metrics.redis_unavailable", exc_info=True, extra={"event": "metrics.redis_unavailable"})
        return
    window = GaugeMetricFamily(
        "coordinoter_xero_app_window_calls",
        "Calls counted in the limiter's current app-wide minute window, by priority class.",
        labels=["class"],
    )
    for name in classes:
        window.add_metric([name], live[name])
    yield window


def xero_connection_metrics() -> Iterator[Metric]:
    info = GaugeMetricFamily(
        "coordinoter_xero_connection_info",
        "One series per organisation's Xero connection (1), with its tenant and state.",
        labels=[*ORG, "tenant_id", "status"],
    )
    connections = list(
        XeroConnection.objects.order_by().only("organisation_id", "tenant_id", "status", "disconnect_step")
    )
    for connection in connections:
        info.add_metric([str(connection.organisation_id), connection.tenant_id, connection.status], 1)
    yield info

    limiter = rate_limiter()  # without Redis (make run), the in-process limiter of this very process
    active = {c.tenant_id: c.organisation_id for c in connections if c.is_usable}
    families = _organisation_gauges(
        {
            "in_flight": (
                "coordinoter_xero_ratelimit_in_flight",
                "Calls to Xero in flight now (the limiter allows 5 per tenant).",
            ),
            "minute_used": (
                "coordinoter_xero_ratelimit_minute_used",
                "Calls counted in the limiter's current minute window (limit 60).",
            ),
            "day_used": (
                "coordinoter_xero_ratelimit_day_used",
                "Calls counted in the limiter's current day window (limit 5,000).",
            ),
            "blocked_ms": (
                "coordinoter_xero_ratelimit_blocked_seconds",
                "Seconds the tenant is still blocked after a 429's Retry-After.",
            ),
        }
    )
    try:
        snapshots = limiter.snapshots(tenant_ids=list(active))
    except Exception:  # noqa: BLE001 - Redis down: the database figures are still worth serving
        logger.warning("metrics.redis_unavailable", exc_info=True, extra={"event": "metrics.redis_unavailable"})
        return
    for tenant_id, figures in snapshots.items():
        for key, family in families.items():
            value = figures[key] / 1000.0 if key == "blocked_ms" else figures[key]
            family.add_metric([str(active[tenant_id])], value)
    yield from families.values()


def webhook_metrics(now: dt.datetime) -> Iterator[Metric]:
    waiting = GaugeMetricFamily(
        "coordinoter_webhook_events_waiting", "Webhook events received and not yet processed.", labels=ORG
    )
    oldest = GaugeMetricFamily(
        "coordinoter_webhook_oldest_waiting_seconds", "Age of the oldest webhook event still waiting.", labels=ORG
    )
    for row in (
        WebhookEvent.objects.filter(state=WebhookEvent.State.RECEIVED)
        .order_by()
        .values("organisation_id")
        .annotate(n=Count("pk"), first=Min("received_at"))
    ):
        label = [str(row["organisation_id"] or "")]
        waiting.add_metric(label, row["n"])
        oldest.add_metric(label, max(0.0, (now - row["first"]).total_seconds()))
    yield waiting
    yield oldest

    hour_ago = now - dt.timedelta(hours=1)
    handled = GaugeMetricFamily(
        "coordinoter_webhook_events_1h", "Webhook events received in the last hour, by state.", labels=[*ORG, "state"]
    )
    skipped = GaugeMetricFamily(
        "coordinoter_webhook_fetches_skipped_1h",
        "Webhook events received in the last hour and processed without a Xero call (we held a newer version).",
        labels=ORG,
    )
    seen: set[int] = set()
    for row in (
        WebhookEvent.objects.filter(received_at__gte=hour_ago)
        .order_by()
        .values("organisation_id", "state")
        .annotate(n=Count("pk"), skipped=Count("pk", filter=Q(outcome=FETCH_SKIPPED)))
    ):
        handled.add_metric([str(row["organisation_id"] or ""), row["state"]], row["n"])
        if row["organisation_id"] and row["state"] == WebhookEvent.State.PROCESSED:
            seen.add(row["organisation_id"])
            skipped.add_metric([str(row["organisation_id"])], row["skipped"])
    yield handled
    yield skipped

    lag = GaugeMetricFamily(
        "coordinoter_webhook_lag_seconds",
        "Received-to-processed lag of webhook events received in the last hour.",
        labels=[*ORG, "quantile"],
    )
    by_org = webhook_lag_percentiles(organisation_ids=sorted(seen), since=hour_ago) if seen else {}
    for organisation_id, figures in sorted(by_org.items()):
        for quantile, key in (("0.5", "p50"), ("0.95", "p95")):
            if figures.get(key) is not None:
                lag.add_metric([str(organisation_id), quantile], figures[key])
    yield lag


def _organisation_gauges(spec: dict[str, tuple[str, str]]) -> dict[str, GaugeMetricFamily]:
    return {key: GaugeMetricFamily(name, documentation, labels=ORG) for key, (name, documentation) in spec.items()}


def metrics_text(*, now: dt.datetime | None = None) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(CoordinoterCollector(now=now))
    return generate_latest(registry)


def _authorised(request: HttpRequest) -> bool:
    if settings.DEBUG:
        return True
    token = settings.METRICS_TOKEN
    if not token:
        raise Http404
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not _authorised(request):
        response = HttpResponse("Unauthorised.\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(metrics_text(), content_type=CONTENT_TYPE_PLAIN_0_0_4)
