"""Reading the webhook inbox for the support console: counts by state, waiting age and lag, per organisation.
Support selectors span tenants (support staff only)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Count, Max, Min, Q
from django.utils import timezone

from integrations.webhook_models import WebhookEvent


@dataclass(frozen=True)
class InboxSummary:
    organisation_id: int | None
    received: int
    processed: int
    ignored: int
    failed: int
    oldest_waiting_at: dt.datetime | None
    last_received_at: dt.datetime | None

    @property
    def waiting_seconds(self) -> float | None:
        if self.oldest_waiting_at is None:
            return None
        return max(0.0, (timezone.now() - self.oldest_waiting_at).total_seconds())


def webhook_inbox_summaries(*, organisation_ids: Iterable[int | None] | None = None,
                            since: dt.datetime | None = None) -> dict[int | None, InboxSummary]:
    """Counts by state per organisation (None: events of tenants no organisation holds), over events received
    since `since`; events still waiting are counted whatever their age."""
    qs = WebhookEvent.objects.all()
    if since is not None:
        qs = qs.filter(Q(received_at__gte=since) | Q(state=WebhookEvent.State.RECEIVED))
    if organisation_ids is not None:
        ids = list(organisation_ids)
        wanted = Q(organisation_id__in=[i for i in ids if i is not None])
        if None in ids:
            wanted |= Q(organisation__isnull=True)
        qs = qs.filter(wanted)
    rows = qs.values("organisation_id").annotate(
        received=Count("pk", filter=Q(state="received")), processed=Count("pk", filter=Q(state="processed")),
        ignored=Count("pk", filter=Q(state="ignored")), failed=Count("pk", filter=Q(state="failed")),
        oldest_waiting_at=Min("received_at", filter=Q(state="received")), last_received_at=Max("received_at"),
    )
    return {row["organisation_id"]: InboxSummary(**row) for row in rows}


def webhook_lag_percentiles(*, organisation_id: int | None, since: dt.datetime) -> dict[str, float | None]:
    """Received-to-processed lag of recent processed events, in seconds: {"p50": ..., "p95": ..., "count": n}."""
    lags = sorted(
        (processed - received).total_seconds()
        for received, processed in WebhookEvent.objects.filter(
            organisation_id=organisation_id, state=WebhookEvent.State.PROCESSED, received_at__gte=since,
            processed_at__isnull=False).order_by("-received_at").values_list("received_at", "processed_at")[:5000]
    )

    def pick(p: float) -> float | None:
        return lags[min(len(lags) - 1, int(p * len(lags)))] if lags else None

    return {"p50": pick(0.5), "p95": pick(0.95), "count": len(lags)}
