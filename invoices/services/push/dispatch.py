"""One dispatcher per tenant: keeps up to 5 chunks of the tenant in flight, each of up to 50 invoices.

Fairness comes from the shape, not from a scheduler: a tenant never has more than 5 chunk tasks queued, and
each finished chunk queues the tenant's dispatcher again at the back of the shared `xero` queue. A tenant
pushing 10,000 invoices and one pushing 3 therefore take turns on the same workers.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict, namedtuple
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from coordinoter.prepared import Bind, Prepared
from integrations.models import XeroConnection
from integrations.outbound.engine import operation_create, waiter_name
from integrations.xero.exceptions import XeroAuthError, XeroError, XeroNotConnected
from integrations.xero.ratelimit import RateLimitWait, rate_limiter
from invoices import mappers
from invoices.models import CreditNote, Customer, Invoice, InvoiceLine, XeroMapping
from invoices.outbound.chunks import CHUNK_KIND
from invoices.services.credit_notes import credit_notes_dispatch
from invoices.services.mapping import mapping_defaults_for
from invoices.services.push.common import (
    CHUNK_SIZE,
    MAX_CHUNKS_IN_FLIGHT,
    active_chunks,
    backoff_seconds,
    connection_for,
    connection_ready,
    enqueue_chunk,
    enqueue_dispatch,
    pending_invoices,
)
from invoices.services.push.contacts import contacts_ensure
from invoices.services.push.outcomes import Carried, events_insert, outcome_failed, outcomes_save
from invoices.sync_states import sync_state_update_ids
from organisations.models import Organisation

logger = logging.getLogger(__name__)

S = Invoice.SyncState

# What mappers.invoice_to_xero_payload reads of an invoice and its lines: a chunk loads only these, as tuples (model
# instances for 50 invoices, their customers and lines cost more CPU than the rest of building the chunk).
# tests/invoices/test_push.py holds a chunk's queries constant.
PAYLOAD_FIELDS = ("number", "reference", "issue_date", "due_date", "currency", "line_amount_types", "status")
_Payload = namedtuple("_Payload", ["pk", *PAYLOAD_FIELDS, "contact_id"])
_Line = namedtuple("_Line", ["description", "quantity", "unit_amount", "account_code", "tax_type"])

# The statements of every refill, compiled once (coordinoter/prepared.py): building them each time was about a third
# of a chunk's CPU. One row of each is enough to know whether any exists (no ORDER BY: any row will do).
# Asked from the tenant's customers without a ContactID (few, and found by the organisation's index on customers): from
# its pending invoices, the planner could walk every one of them to find none (25 ms at 6,000 pending, its statistics
# behind a batch just created).
_WITHOUT_CONTACT = Prepared(
    lambda: (
        Customer.objects.filter(organisation_id=Bind("organisation"), xero_contact_id="")
        .filter(Exists(pending_invoices(OuterRef("organisation_id")).filter(customer_id=OuterRef("pk"))))
        .order_by()
        .values_list("pk")[:1]
    )
)
_ANY_CREDIT_NOTE = Prepared(
    lambda: CreditNote.objects.filter(organisation_id=Bind("organisation")).order_by().values_list("pk")[:1]
)
# By its primary key: one row, locked without the ORDER BY name that first() took from Organisation's Meta.
_TENANT_LOCK = Prepared(
    lambda: (
        Organisation.objects.select_for_update(no_key=True).filter(pk=Bind("organisation")).order_by().values_list("pk")
    )
)
_ACTIVE = Prepared(lambda: active_chunks(Bind("organisation")).order_by().values_list("pk"))
_READY = Prepared(
    lambda: (
        pending_invoices(Bind("organisation"))
        .exclude(customer__xero_contact_id="")
        .values_list("pk", *PAYLOAD_FIELDS, "customer__xero_contact_id")
        .select_for_update(skip_locked=True, of=("self",))[:CHUNK_SIZE]
    )
)
_LINES = Prepared(
    lambda: (
        InvoiceLine.objects.filter(invoice_id__in=Bind("invoices", many=True))
        .order_by("invoice_id", "position", "pk")
        .values_list("invoice_id", *_Line._fields)
    )
)


@dataclass(frozen=True)
class DispatchResult:
    chunks: int = 0
    waiting: str = ""  # why nothing can go now: connection | mapping | contacts
    retry_in: float | None = None  # the task runs again after this many seconds


def push_enqueue_for_organisation(*, organisation_id: int) -> None:
    """Ask a worker to push the organisation's pending invoices, once the current transaction commits."""
    enqueue_dispatch(organisation_id)


def push_organisation_dispatch(
    *, organisation_id: int, connection: XeroConnection | None = None, refill: bool = False
) -> DispatchResult:
    """Fill the tenant's free chunk slots. Safe to run twice at once: counting a tenant's chunks and adding one is
    serialised per tenant (`_chunk_create`).

    connection: the organisation's connection row if the caller has just read it (a chunk's send does).
    refill: a chunk of the tenant has just finished (its send chains this). While every pending invoice's customer
    is a Xero contact already (one EXISTS), the slot it freed is filled at once; the whole round (counting the free
    slots, making contacts of the next invoices' customers) runs only when one is not, or when that chunk comes out
    short. So a new customer's invoices wait for no ready ones."""
    if connection is None or connection.organisation_id != organisation_id:
        connection = connection_for(organisation_id)
    if not connection_ready(connection):
        # Needs a reconnect, disconnected or never connected: invoices stay pending; the sweeper comes back.
        _log("push.waiting_for_connection", organisation_id, status=getattr(connection, "status", "none"))
        return DispatchResult(waiting="connection")
    mapping = mapping_defaults_for(organisation_id)
    if mapping is None:
        _log("push.blocked_no_mapping", organisation_id)
        return DispatchResult(waiting="mapping")
    created = 0
    contacts_wait: float | None = None  # a contact create waiting for Xero: come back for its customers' invoices
    try:
        built = None
        if refill and not list(_WITHOUT_CONTACT.rows(organisation=organisation_id)):
            built = _chunk_create(
                organisation_id=organisation_id, tenant_id=connection.tenant_id, mapping=mapping, paced=True
            )
        if built is not None:
            created = 1
        rounds = 0 if built is not None and built[1] == CHUNK_SIZE else MAX_CHUNKS_IN_FLIGHT + 1
        for _ in range(rounds):
            free = MAX_CHUNKS_IN_FLIGHT - active_chunks(organisation_id).count()
            if free <= 0:
                break
            candidates = list(
                pending_invoices(organisation_id).values_list("customer_id", "customer__xero_contact_id")[
                    : free * CHUNK_SIZE
                ]
            )
            if not candidates:
                break
            missing = sorted({customer_id for customer_id, contact_id in candidates if not contact_id})
            if missing:
                ensured = contacts_ensure(organisation_id=organisation_id, connection=connection, customer_ids=missing)
                contacts_wait = ensured.retry_in if ensured.retry_in is not None else contacts_wait
            chunk_ids = push_chunks_create(
                organisation_id=organisation_id, tenant_id=connection.tenant_id, mapping=mapping, max_chunks=free
            )
            created += len(chunk_ids)
            if not chunk_ids or len(chunk_ids) >= free:
                # Nothing was ready, or every free slot is now taken: counting the chunks again would find no slot
                # (a chunk finishing meanwhile refills its own).
                break
        # Credit notes go beside the invoices; an allocation goes once its invoice is in (this runs after each chunk).
        # An organisation without a single credit note (an allocation belongs to one) gives that dispatcher nothing to
        # do: one cheap query instead of its three after every chunk.
        if list(_ANY_CREDIT_NOTE.rows(organisation=organisation_id)):
            credit_wait = credit_notes_dispatch(organisation_id=organisation_id, connection=connection, mapping=mapping)
            contacts_wait = credit_wait if credit_wait is not None else contacts_wait
    except RateLimitWait as wait:
        return DispatchResult(chunks=created, waiting="rate_limit", retry_in=wait.seconds)
    except (XeroAuthError, XeroNotConnected) as exc:
        # The connection changed state under us; the sweeper picks the tenant up once it is usable again.
        _log("push.dispatch_auth_failed", organisation_id, error=type(exc).__name__)
        return DispatchResult(chunks=created, waiting="connection")
    except XeroError as exc:
        _log("push.dispatch_failed", organisation_id, error=type(exc).__name__, level=logging.WARNING)
        return DispatchResult(chunks=created, waiting="contacts", retry_in=backoff_seconds(1))
    if contacts_wait is not None:
        return DispatchResult(chunks=created, waiting="contacts", retry_in=contacts_wait)
    return DispatchResult(chunks=created)


def push_chunks_create(*, organisation_id: int, tenant_id: str, mapping: XeroMapping, max_chunks: int) -> list[int]:
    """Claim up to `max_chunks` chunks of up to 50 pending invoices whose customers are Xero contacts.

    Each chunk commits (and is queued) on its own, so the first goes out while the next is being built.
    """
    created: list[int] = []
    for _ in range(max(0, max_chunks)):
        # None once other workers have filled the slots meanwhile: _chunk_store counts them before it claims anything.
        built = _chunk_create(organisation_id=organisation_id, tenant_id=tenant_id, mapping=mapping)
        if built is None:
            break
        created.append(built[0])
    return created


def _chunk_create(
    *, organisation_id: int, tenant_id: str, mapping: XeroMapping, paced: bool = False
) -> tuple[int, int] | None:
    """One chunk (its id and how many invoices it carries), or None when the tenant has 5 in flight or nothing is
    ready to go (`_chunk_store`).

    paced (a refill: the tenant's calls have just been made): the chunk takes its place in the limiter's queue
    before it is stored and is queued for the moment the limiter names, instead of running at once only to be told
    to wait (a task, a read of the chunk and of the connection, a write, for each chunk that waits). The place is
    taken before the tenant's rows are locked (no call to Redis while they are held) and given back if no chunk is
    built after all.
    """
    key = f"coordinoter-{organisation_id}-{uuid.uuid4().hex}"
    wait = _limiter_wait(tenant_id, key) if paced else 0.0
    built = None
    try:
        built = _chunk_store(organisation_id=organisation_id, tenant_id=tenant_id, mapping=mapping, key=key, wait=wait)
    finally:
        if built is None and wait:  # nothing built, or the transaction failed: no chunk will come for the place
            rate_limiter().leave(tenant_id=tenant_id, waiter=waiter_name(key))
    return built


@transaction.atomic
def _chunk_store(
    *, organisation_id: int, tenant_id: str, mapping: XeroMapping, key: str, wait: float
) -> tuple[int, int] | None:
    """The chunk of `_chunk_create`, stored under `key` and queued `wait` seconds from now.

    The payload and a new Idempotency-Key are stored with the chunk before any attempt, so every retry sends the
    very same request under the same key. A tenant's chunks are built one at a time: its organisation row is locked
    (FOR NO KEY UPDATE: rows that merely refer to the organisation, such as its webhook events and push attempts,
    commit meanwhile) and its chunks counted before any invoice is claimed. Claiming first let two workers race for
    the last slot: the second claimed what the first had not locked (a short tail), won the count, and the first's
    full chunk was dropped (tests/invoices/test_push_claims.py). The invoices are still claimed FOR UPDATE SKIP
    LOCKED: one a user is editing waits for the next chunk.
    """
    now = timezone.now()
    list(_TENANT_LOCK.rows(organisation=organisation_id))
    if len(list(_ACTIVE.rows(organisation=organisation_id))) >= MAX_CHUNKS_IN_FLIGHT:
        return None
    while True:
        invoices = _ready(organisation_id)
        if not invoices:
            return None
        lines: dict[int, list[_Line]] = defaultdict(list)
        for invoice_id, *line in _LINES.rows(invoices=[invoice.pk for invoice in invoices]):
            lines[invoice_id].append(_Line(*line))
        elements, carried, unmappable = [], [], []
        for invoice in invoices:
            try:
                elements.append(
                    mappers.invoice_to_xero_payload(
                        invoice, lines[invoice.pk], mapping=mapping, contact_id=invoice.contact_id
                    )
                )
                carried.append(invoice.pk)
            except (mappers.MappingRequired, ValueError) as exc:
                unmappable.append((invoice.pk, str(exc)))
        _fail_unmappable(organisation_id, unmappable, now)
        if carried:
            break
    chunk = operation_create(
        organisation_id=organisation_id,
        tenant_id=tenant_id,
        kind=CHUNK_KIND,
        payload={"Invoices": elements},
        idempotency_key=key,
        next_attempt_at=now + timedelta(seconds=wait) if wait else None,
    )
    sync_state_update_ids(
        Invoice,
        carried,
        [S.PENDING],
        S.IN_FLIGHT,
        chunk=chunk,
        sync_errors=[],
        sync_warnings=[],
        updated_at=now,
    )
    enqueue_chunk(chunk.pk, countdown=wait)
    _log("push.chunk_created", organisation_id, chunk_id=chunk.pk, invoices=len(carried), tenant_id=tenant_id)
    return chunk.pk, len(carried)


def _ready(organisation_id: int) -> list[_Payload]:
    """The tenant's next 50 pending invoices whose customers are Xero contacts, locked, oldest first.

    On PostgreSQL the claim walks the tenant's pending invoices in id order (the `invoice_unsynced` index) and stops
    at 50. Left to itself the planner sorts all of them instead: it takes the eligible batch to hold its share of the
    invoices, not all of them, so it expects few to pass and the walk to be long (26 ms at 10,000 pending against
    0.4 ms, docs/benchmarks.md). Sorting is turned off for this statement alone."""
    database = transaction.get_connection()
    if database.vendor != "postgresql":
        return [_Payload(*row) for row in _READY.rows(organisation=organisation_id)]
    with database.cursor() as cursor:
        cursor.execute("SET LOCAL enable_sort = off")  # a failed claim rolls the transaction back, and this with it
        ready = [_Payload(*row) for row in _READY.rows(organisation=organisation_id)]
        cursor.execute("SET LOCAL enable_sort TO DEFAULT")
    return ready


def _limiter_wait(tenant_id: str, key: str) -> float:
    """How long the chunk of this key must wait for its tenant's next call, its place in the limiter's queue taken
    (the send asks again under the same name, integrations/xero/ratelimit). A slot free now is given back: the
    send takes it."""
    limiter = rate_limiter()
    try:
        ticket = limiter.acquire(tenant_id=tenant_id, waiter=waiter_name(key))
    except RateLimitWait as wait:
        return wait.seconds
    limiter.refund(tenant_id=tenant_id, ticket=ticket)
    return 0.0


def _fail_unmappable(organisation_id: int, unmappable: list[tuple[int, str]], now) -> None:
    """Invoices that cannot be sent as they are (no account or tax rate for a line): failed, with the reason."""
    if not unmappable:
        return
    # Claimed as pending, under their row locks.
    invoices = [Carried(pk, organisation_id, "", S.PENDING, []) for pk, _ in unmappable]
    for invoice, (_, message) in zip(invoices, unmappable, strict=True):
        outcome_failed(invoice, [message], now)
    outcomes_save(invoices)
    events_insert([(invoice, "failed", invoice.sync_errors[0]) for invoice in invoices])


def _log(event: str, organisation_id: int, *, level: int = logging.INFO, **extra) -> None:
    logger.log(level, event, extra={"event": event, "organisation_id": organisation_id, **extra})
