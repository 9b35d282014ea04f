"""What the push modules share: the querysets they claim from, the connection, the client, enqueueing."""

from __future__ import annotations

import os
import socket
import uuid
from typing import Any

from django.db.models import QuerySet

from integrations.models import XeroConnection
from integrations.outbound.models import OutboundOperation
from integrations.xero.client import XeroClient
from integrations.xero.errors import backoff_seconds  # noqa: F401 - the one policy, re-exported for push/
from integrations.xero.ratelimit import rate_limiter
from invoices.models import Invoice, InvoiceBatch
from invoices.outbound.chunks import CHUNK_KIND

# Xero recommends about 50 elements per request (https://developer.xero.com/documentation/guides/oauth2/limits/)
CHUNK_SIZE = 50
# Xero allows a tenant 5 calls at once: more chunks in flight would only wait for a slot.
MAX_CHUNKS_IN_FLIGHT = 5

S = Invoice.SyncState
C = OutboundOperation.State


def pending_invoices(organisation_id: int) -> QuerySet[Invoice]:
    """Invoices waiting to go, oldest first; only batches that sync (the rest are not_synced anyway)."""
    return Invoice.objects.filter(
        organisation_id=organisation_id, sync_state=S.PENDING, batch__eligibility=InvoiceBatch.Eligibility.ELIGIBLE
    ).order_by("pk")


def chunks() -> QuerySet[OutboundOperation]:
    """The push's chunks: the outbound engine's operations of kind invoice_chunk."""
    return OutboundOperation.objects.filter(kind=CHUNK_KIND)


def active_chunks(organisation_id: int) -> QuerySet[OutboundOperation]:
    return chunks().filter(organisation_id=organisation_id, state__in=[C.PENDING, C.SENDING])


def connection_for(organisation_id: int) -> XeroConnection | None:
    """The organisation's connection, its tokens left behind (decrypting them costs CPU; the engine reads the row with
    them for each call, integrations/outbound/engine._usable_connection)."""
    return XeroConnection.objects.filter(organisation_id=organisation_id).defer("access_token", "refresh_token").first()


def connection_ready(connection: XeroConnection | None) -> bool:
    """Only an active connection pushes; one that needs a reconnect keeps its invoices pending until then."""
    return connection is not None and connection.is_usable


def xero_client(connection: XeroConnection, *, limiter: Any = None) -> XeroClient:
    """A client for the connection (it reads the row with its tokens at its first call)."""
    return XeroClient(connection.pk, rate_limiter=limiter or rate_limiter())


def worker_name() -> str:
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def enqueue_dispatch(organisation_id: int, *, countdown: float = 0.0) -> None:
    """Dispatch the tenant's next chunks once the current transaction commits (after `countdown` seconds)."""
    from coordinoter import queue
    from invoices.tasks import push_organisation

    queue.enqueue_on_commit(push_organisation, args=(organisation_id,), countdown=countdown)


def enqueue_chunk(chunk_id: int, *, countdown: float = 0.0) -> None:
    from coordinoter import queue
    from invoices.tasks import push_chunk

    queue.enqueue_on_commit(push_chunk, args=(chunk_id,), countdown=countdown)
