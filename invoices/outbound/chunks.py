"""`invoice_chunk`: up to 50 invoices sent in one PUT /Invoices, through the outbound engine's loop. Xero answers
element by element, so the kind records its calls itself (invoices/services/push/send.py, record.py, attempts.py),
under the engine's lock, in the engine's attempts and state table; its task and sweep run on the push's `xero`
queue."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Exists, OuterRef

from integrations.outbound import engine
from integrations.outbound import kinds as k
from integrations.outbound.models import OutboundOperation

CHUNK_KIND = "invoice_chunk"


def _retried(operation: OutboundOperation, by: Any) -> None:
    """Support retried a chunk that needed attention: its invoices that still need it are in flight again, so the
    chunk's next call (a lookup: the rule never resends what may be in Xero) resolves them."""
    from invoices.models import Invoice
    from invoices.sync_states import sync_state_update

    S = Invoice.SyncState
    sync_state_update(Invoice.objects.filter(chunk=operation), [S.NEEDS_ATTENTION], S.IN_FLIGHT, sync_errors=[])


def chunks_settle(*, organisation_id: int, chunk_ids: Iterable[int], reason: str, leaving: Iterable[int] = ()) -> int:
    """Chunks that stopped in needs_attention, once a person has retried or cancelled what needed it: when none of
    their invoices (besides `leaving`, on their way out) still needs attention, they end, withdrawn
    (engine.operation_withdraw), and leave support's list. Returns how many ended."""
    from invoices.models import Invoice

    still = Invoice.objects.filter(chunk=OuterRef("pk"), sync_state=Invoice.SyncState.NEEDS_ATTENTION).exclude(
        pk__in=list(leaving)
    )
    settled = (
        OutboundOperation.objects.filter(
            organisation_id=organisation_id,
            kind=CHUNK_KIND,
            pk__in=[pk for pk in chunk_ids if pk],
            state=OutboundOperation.State.NEEDS_ATTENTION,
        )
        .exclude(Exists(still))
        .values_list("pk", flat=True)
    )
    return sum(
        engine.operation_withdraw(organisation_id=organisation_id, operation_id=pk, reason=reason) for pk in settled
    )


def register() -> None:
    from invoices.services.push import send
    from invoices.services.push.common import enqueue_chunk, enqueue_dispatch

    k.register_kind(
        k.Kind(
            name=CHUNK_KIND,
            send=send.chunk_put,
            look_up=send.chunk_look_up,
            element_wise=k.ElementWise(answered=send.chunk_answered, failed=send.chunk_failed),
            unusable=send.chunk_unusable,
            has_work=send.chunk_has_work,
            lease_seconds=send.lease_seconds,
            limiter_first=True,
            swept_by_engine=False,
            enqueue=enqueue_chunk,
            ended=enqueue_dispatch,
            retried=_retried,
        )
    )


__all__ = ["CHUNK_KIND", "chunks_settle", "register"]
