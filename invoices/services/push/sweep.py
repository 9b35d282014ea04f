"""The beat sweeper (every PUSH_SWEEP_SECONDS): nothing waits forever because a message or a worker was lost."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from integrations.models import XeroConnection
from integrations.outbound.models import OutboundOperation
from invoices.models import Invoice, InvoiceBatch
from invoices.services.push.common import chunks, enqueue_chunk, enqueue_dispatch

logger = logging.getLogger(__name__)

C = OutboundOperation.State
BATCH = 1000


@dataclass(frozen=True)
class SweepResult:
    expired_leases: int
    overdue_chunks: int
    organisations: int


def push_sweep(*, now=None) -> SweepResult:
    """Re-dispatch chunks whose lease expired (their worker died) and pending chunks whose reschedule is overdue
    (a lost message), and dispatch tenants that have pending invoices but nothing in flight (a reconnect, a
    mapping just chosen, a broker that was down). Tenants without a mapping are left alone: they wait for one."""
    now = now or timezone.now()
    grace = now - timedelta(seconds=settings.PUSH_SWEEP_SECONDS)
    expired = list(
        chunks()
        .filter(state=C.SENDING, lease_until__lt=now)
        .order_by("lease_until")
        .values_list("pk", flat=True)[:BATCH]
    )
    overdue = list(
        chunks()
        .filter(state=C.PENDING)
        .filter(Q(next_attempt_at__lt=grace) | Q(next_attempt_at__isnull=True, created_at__lt=grace))
        .order_by("pk")
        .values_list("pk", flat=True)[:BATCH]
    )
    for chunk_id in expired + overdue:
        enqueue_chunk(chunk_id)
    busy = chunks().filter(state__in=[C.PENDING, C.SENDING]).values("organisation_id")
    organisation_ids = list(
        Invoice.objects.filter(
            sync_state=Invoice.SyncState.PENDING,
            batch__eligibility=InvoiceBatch.Eligibility.ELIGIBLE,
            organisation__xero_connection__in=XeroConnection.objects.usable(),
            organisation__xero_mapping__isnull=False,
        )
        .exclude(organisation_id__in=busy)
        .order_by()
        .values_list("organisation_id", flat=True)
        .distinct()[:BATCH]
    )
    organisation_ids += [i for i in _with_credit_notes_waiting(busy) if i not in organisation_ids]
    for organisation_id in organisation_ids:
        enqueue_dispatch(organisation_id)
    if expired or overdue or organisation_ids:
        logger.info(
            "push.sweep",
            extra={
                "event": "push.sweep",
                "expired_leases": len(expired),
                "overdue_chunks": len(overdue),
                "organisations": len(organisation_ids),
            },
        )
    return SweepResult(len(expired), len(overdue), len(organisation_ids))


def _with_credit_notes_waiting(busy) -> list[int]:
    """Tenants whose credit notes (or allocations) wait for the dispatcher, with nothing of theirs in flight."""
    from invoices.models import CreditNote, CreditNoteAllocation

    usable = {
        "organisation__xero_connection__status": XeroConnection.Status.ACTIVE,
        "organisation__xero_connection__disconnect_step": "",
        "organisation__xero_mapping__isnull": False,
    }
    notes = CreditNote.objects.filter(
        sync_state=Invoice.SyncState.PENDING, batch__eligibility=InvoiceBatch.Eligibility.ELIGIBLE, **usable
    )
    allocations = CreditNoteAllocation.objects.filter(state=CreditNoteAllocation.State.WAITING, **usable)
    ids: list[int] = []
    for queryset in (notes, allocations):
        ids += queryset.exclude(organisation_id__in=busy).order_by().values_list("organisation_id", flat=True)[:BATCH]
    return list(dict.fromkeys(ids))
