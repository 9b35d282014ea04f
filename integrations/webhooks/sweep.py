"""The inbox's housekeeping: enqueue tenants nobody is processing, purge old events, and support's retry."""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from integrations.models import XeroConnection
from integrations.webhooks.models import ReconciliationState, WebhookEvent
from integrations.webhooks.record import webhook_processing_enqueue

logger = logging.getLogger("integrations.webhooks")


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
