"""Customers become Xero contacts before their invoices go: found by ContactNumber (our customer id), then by
Name, created in bulk otherwise; the ContactID is stored on the customer.

One tenant's contacts are matched by one worker at a time (a short lock in the cache), so five chunks starting
together do not look up and create the same customers five times.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Exists
from django.utils import timezone

from coordinoter.prepared import Bind, Prepared
from integrations.models import XeroConnection
from integrations.outbound import engine
from integrations.outbound.models import OutboundOperation
from integrations.outbound.states import FINAL
from integrations.xero import accounting
from integrations.xero.errors import backoff_seconds
from invoices import mappers
from invoices.models import Customer, Invoice, InvoiceEvent
from invoices.outbound import CONTACTS_CREATE
from invoices.services.push.common import pending_invoices, xero_client
from invoices.sync_states import sync_state_move

logger = logging.getLogger(__name__)

# Each lookup is one GET whose `where` ORs a number and a name per customer: keep the URL well under 8 KB.
LOOKUP_GROUP = 25
WHERE_BUDGET = 4000
CREATE_GROUP = 50


@dataclass
class ContactsResult:
    found: int = 0
    created: int = 0
    failed: list[int] = field(default_factory=list)
    busy: bool = False
    retry_in: float | None = None  # a create is waiting (Xero busy or rate limit): try again after this long


def contacts_ensure(*, organisation_id: int, connection: XeroConnection, customer_ids: list[int]) -> ContactsResult:
    """Give each of these customers a Xero ContactID. Raises the front door's errors (RateLimitWait included)."""
    lock_key = f"push:contacts:{organisation_id}"
    token = uuid.uuid4().hex
    if not cache.add(lock_key, token, timeout=max(1, int(settings.PUSH_LEASE_SECONDS))):
        return ContactsResult(busy=True)
    try:
        return _ensure(organisation_id=organisation_id, connection=connection, customer_ids=customer_ids)
    finally:
        if cache.get(lock_key) == token:
            cache.delete(lock_key)


def _ensure(*, organisation_id: int, connection: XeroConnection, customer_ids: list[int]) -> ContactsResult:
    result = ContactsResult()
    customers = list(
        Customer.objects.filter(organisation_id=organisation_id, pk__in=customer_ids, xero_contact_id="").order_by("pk")
    )
    if not customers:
        return result
    client = xero_client(connection)
    missing: list[Customer] = []
    for group in _lookup_groups(customers):
        response = accounting.contacts_get(client, where=contacts_where(group), summary_only=True)
        contacts = mappers.contact_outcomes(response.body or {})
        by_number = {c.contact_number: c for c in contacts if c.contact_number and c.contact_id}
        by_name = {c.name.strip().lower(): c for c in contacts if c.contact_id}
        for customer in group:
            match = by_number.get(customer.contact_number) or by_name.get(customer.name.strip().lower())
            if match is None:
                missing.append(customer)
            elif _store(customer, match.contact_id, tenant_id=connection.tenant_id):
                result.found += 1
    for start in range(0, len(missing), CREATE_GROUP):
        group = missing[start : start + CREATE_GROUP]
        operation = _create_operation(organisation_id=organisation_id, tenant_id=connection.tenant_id, group=group)
        run = engine.operation_run(operation_id=operation.pk)
        if run.retry_in is not None or run.state in ("busy", "waiting", "early"):
            result.retry_in = run.retry_in if run.retry_in is not None else backoff_seconds(1)
            break
        stored = dict(Customer.objects.filter(pk__in=[c.pk for c in group]).values_list("pk", "xero_contact_id"))
        result.created += sum(1 for c in group if stored.get(c.pk))
        result.failed += [c.pk for c in group if not stored.get(c.pk)]
    logger.info(
        "push.contacts",
        extra={
            "event": "push.contacts",
            "organisation_id": organisation_id,
            "tenant_id": connection.tenant_id,
            "contacts_found": result.found,
            "contacts_created": result.created,
            "contacts_failed": len(result.failed),
        },
    )
    return result


def _create_operation(*, organisation_id: int, tenant_id: str, group: list[Customer]) -> OutboundOperation:
    """The create of these contacts as an outbound operation, made once: the key is the body's own digest, so the
    same request is the same operation however often dispatch comes back to it. POST updates-or-creates by
    ContactNumber, so even a send after the key's 6 minutes makes no second contact.

    One that has finished (done or refused) while the lookup just now still found a customer of it missing in Xero
    (Xero refused that customer, and a person retried its invoices; or it was deleted in Xero since) is not waited
    on: a new create follows, under the digest and that operation's id."""
    body = {"Contacts": [mappers.contact_payload(c) for c in group]}
    digest = "contacts-" + hashlib.sha256((tenant_id + json.dumps(body, sort_keys=True)).encode()).hexdigest()[:48]
    key = digest
    existing = engine.operation_for_key(key)
    while existing is not None and existing.state in FINAL:
        key = f"{digest}-{existing.pk}"
        existing = engine.operation_for_key(key)
    if existing is not None:
        if existing.state == OutboundOperation.State.NEEDS_ATTENTION:
            engine.operation_retry(organisation_id=organisation_id, operation_id=existing.pk)
        return existing
    with transaction.atomic():
        return engine.operation_create(
            organisation_id=organisation_id,
            tenant_id=tenant_id,
            kind=CONTACTS_CREATE,
            payload=body,
            idempotency_key=key,
        )


def contacts_where(customers: list[Customer]) -> str:
    return " OR ".join(_clauses(c) for c in customers)


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _clauses(customer: Customer) -> str:
    # https://developer.xero.com/documentation/api/accounting/contacts (where: ContactNumber, Name)
    return f"ContactNumber=={_quote(customer.contact_number)} OR Name=={_quote(customer.name.strip())}"


def _lookup_groups(customers: list[Customer]):
    group: list[Customer] = []
    size = 0
    for customer in customers:
        length = len(_clauses(customer)) + 4
        if group and (len(group) >= LOOKUP_GROUP or size + length > WHERE_BUDGET):
            yield group
            group, size = [], 0
        group.append(customer)
        size += length
    if group:
        yield group


CONTACT_NUMBER_CLAUSE = 'ContactNumber=="{}"'


def _customer_pk(number: str) -> int | None:
    prefix = "COORD-"
    if not number.startswith(prefix) or not number[len(prefix) :].isdigit():
        return None
    return int(number[len(prefix) :])


def _customer_by_number(*, organisation_id: int, number: str) -> Customer | None:
    pk = _customer_pk(number)
    return None if pk is None else Customer.objects.filter(organisation_id=organisation_id, pk=pk).first()


def contact_created(*, organisation_id: int, tenant_id: str, number: str, contact_id: str) -> None:
    """The contacts strategy's outcome for one customer: Xero organisation `tenant_id` holds it under `contact_id`.
    One statement (no read of the customer first): a create of 50 contacts is recorded in 50 of them."""
    pk = _customer_pk(number)
    if pk is not None:
        _stored(organisation_id, pk, contact_id, tenant_id)


def contact_failed(*, organisation_id: int, number: str, errors: list[str], needs_attention: bool = False) -> None:
    """The contact cannot be made (or Xero's answer could not be confirmed): its pending invoices say why."""
    customer = _customer_by_number(organisation_id=organisation_id, number=number)
    if customer is not None:
        _fail_invoices_of(customer, errors, needs_attention=needs_attention)


def _store(customer: Customer, contact_id: str, *, tenant_id: str) -> bool:
    """Keep the customer's ContactID in the Xero organisation `tenant_id`, only while that is still the one connected:
    after a switch to another (which forgets every ContactID) an answer from the old one must not be stored."""
    updated = _stored(customer.organisation_id, customer.pk, contact_id, tenant_id)
    if updated:
        customer.xero_contact_id = contact_id
    return updated


def _stored(organisation_id: int, customer_id: int, contact_id: str, tenant_id: str) -> bool:
    moved = _STORE.update(
        {"xero_contact_id": contact_id, "updated_at": timezone.now()},
        organisation=organisation_id,
        customer=customer_id,
        tenant=tenant_id,
    )
    return bool(moved)


# Compiled once (coordinoter/prepared.py): a customer without a ContactID yet, while its organisation is still
# connected to that Xero organisation.
_STORE = Prepared(
    lambda: Customer.objects.filter(
        organisation_id=Bind("organisation"), pk=Bind("customer"), xero_contact_id=""
    ).filter(Exists(XeroConnection.objects.filter(organisation_id=Bind("organisation"), tenant_id=Bind("tenant"))))
)


@transaction.atomic
def _fail_invoices_of(customer: Customer, errors: list[str], *, needs_attention: bool = False) -> None:
    """The contact cannot be made: its pending invoices fail with Xero's reason, to be retried once fixed."""
    messages = [f"Xero contact {customer.name!r}: {message}" for message in errors]
    invoices = list(
        pending_invoices(customer.organisation_id).filter(customer=customer).select_for_update(of=("self",))
    )
    now = timezone.now()
    for invoice in invoices:
        sync_state_move(invoice, Invoice.SyncState.NEEDS_ATTENTION if needs_attention else Invoice.SyncState.FAILED)
        invoice.sync_errors = messages
        invoice.updated_at = now
    Invoice.objects.bulk_update(invoices, ["sync_state", "sync_errors", "updated_at"])
    InvoiceEvent.objects.bulk_create(
        [
            InvoiceEvent(
                invoice=invoice,
                organisation_id=invoice.organisation_id,
                source=InvoiceEvent.Source.SYSTEM,
                kind="needs_attention" if needs_attention else "failed",
                message=("; ".join(messages))[:500],
            )
            for invoice in invoices
        ]
    )
