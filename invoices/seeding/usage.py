"""The last day's Xero usage and the push history (chunks and attempts) of connected organisations."""

import datetime
import random
from dataclasses import dataclass

from django.db import connection, models, transaction
from django.utils import timezone

from integrations.models import XeroConnection
from integrations.outbound.models import OutboundAttempt, OutboundOperation
from integrations.usage.models import XeroApiUsage
from invoices.models import Invoice
from invoices.outbound.chunks import CHUNK_KIND
from invoices.seeding.copy_writer import CopyWriter, first_free_id, seeded_uuid, sequences_reset


@dataclass(frozen=True)
class UsageBackfill:
    organisations: int
    usage_rows: int
    push_chunks: int


def usage_backfill(*, rng: random.Random, per_org: int) -> UsageBackfill:
    """Usage and push history for the connected organisations that have no usage yet."""
    with transaction.atomic(), connection.cursor() as cursor:
        orgs = list(
            XeroConnection.objects.exclude(organisation__in=XeroApiUsage.objects.values("organisation"))
            .order_by("organisation")
            .values_list("organisation", flat=True)
        )
        rows = usage_seed(cursor, organisation_ids=orgs, rng=rng, now=timezone.now(), per_org=per_org)
        chunks = push_history_seed(cursor, organisation_ids=orgs, rng=rng, now=timezone.now())
    return UsageBackfill(organisations=len(orgs), usage_rows=rows, push_chunks=chunks)


def usage_seed(cursor, *, organisation_ids: list[int], rng: random.Random, now: datetime.datetime, per_org: int) -> int:
    """The last day's Xero calls a minute (the support console's chart, /metrics): a few calls in `per_org`
    random minutes per organisation; every 100th organisation pushes all day near Xero's 60 a minute."""
    usage, next_id, rows = CopyWriter(XeroApiUsage), first_free_id(XeroApiUsage), 0
    this_minute = now.replace(second=0, microsecond=0)
    for position, oid in enumerate(organisation_ids):
        busy = position % 100 == 0
        minutes = range(1440) if busy else rng.sample(range(1440), min(per_org, 1440))
        for back in minutes:
            calls = rng.randint(45, 60) if busy else rng.randint(1, 12)
            limited = 1 if busy and rng.random() < 0.01 else 0
            usage.add(
                id=next_id,
                organisation_id=oid,
                minute=this_minute - datetime.timedelta(minutes=back),
                calls=calls,
                rate_limited=limited,
                failed=1 if rng.random() < 0.005 else 0,
                min_remaining=max(0, 60 - calls),
                day_remaining=5000 - rng.randint(0, 3000),
                updated_at=now,
            )
            next_id += 1
            rows += 1
        if usage.count >= 100_000:
            usage.flush(cursor)
    usage.flush(cursor)
    sequences_reset(cursor, XeroApiUsage)
    return rows


def push_history_seed(cursor, *, organisation_ids: list[int], rng: random.Random, now: datetime.datetime) -> int:
    """The push chunks and attempts behind each organisation's invoices in Xero (50 a chunk), over 30 days: what
    the batch page's notice and /metrics read. One attempt each; 2% first met a 503 or a 429 and went again.
    Payloads are left empty (real ones hold the 50 invoices sent)."""
    in_xero = dict(
        Invoice.objects.filter(organisation__in=organisation_ids, sync_state__in=["synced", "warning"])
        .order_by()
        .values("organisation")
        .annotate(n=models.Count("pk"))
        .values_list("organisation", "n")
    )
    tenants = dict(
        XeroConnection.objects.filter(organisation__in=organisation_ids).values_list("organisation", "tenant_id")
    )
    chunks, attempts = CopyWriter(OutboundOperation), CopyWriter(OutboundAttempt)
    chunk_id, attempt_id, made = first_free_id(OutboundOperation), first_free_id(OutboundAttempt), 0
    for oid in organisation_ids:
        for _ in range(-(-in_xero.get(oid, 0) // 50)):
            sent = now - datetime.timedelta(seconds=rng.uniform(0, 30 * 86400))
            retried = rng.random() < 0.02
            chunks.add(
                id=chunk_id,
                organisation_id=oid,
                tenant_id=tenants.get(oid, ""),
                kind=CHUNK_KIND,
                state="done",
                idempotency_key=seeded_uuid(rng),
                payload={},
                key_first_sent_at=sent,
                attempts=2 if retried else 1,
                sends=2 if retried else 1,
                created_at=sent,
                completed_at=sent + datetime.timedelta(seconds=3 if retried else 1.5),
            )
            if retried:
                attempts.add(
                    id=attempt_id,
                    operation_id=chunk_id,
                    action="send",
                    started_at=sent,
                    duration_ms=rng.randint(200, 900),
                    http_status=503,
                    outcome="unknown",
                )
                attempt_id += 1
            attempts.add(
                id=attempt_id,
                operation_id=chunk_id,
                action="send",
                started_at=sent + datetime.timedelta(seconds=1.5 if retried else 0),
                duration_ms=rng.randint(900, 2600),
                http_status=200,
                outcome="confirmed",
            )
            chunk_id, attempt_id, made = chunk_id + 1, attempt_id + 1, made + 1
        if attempts.count >= 100_000:
            chunks.flush(cursor)
            attempts.flush(cursor)
    chunks.flush(cursor)
    attempts.flush(cursor)
    sequences_reset(cursor, OutboundOperation, OutboundAttempt)
    return made
