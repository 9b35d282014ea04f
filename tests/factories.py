"""Small `make_*` factories: the data a test needs, said in the test."""

import datetime
import itertools
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from invoices.models import Customer, Invoice, InvoiceBatch, InvoiceLine
from organisations.models import Membership, Organisation
from organisations.roles import SUPPORT_GROUP

PASSWORD = "correct horse battery staple"
_seq = itertools.count(1)


def make_organisation(*, name: str | None = None) -> Organisation:
    return Organisation.objects.create(name=name or f"Organisation {next(_seq)}")


def make_user(*, email: str | None = None, password: str = PASSWORD, support: bool = False):
    email = email or f"user{next(_seq)}@example.test"
    user = get_user_model().objects.create_user(username=email, email=email, password=password, is_staff=support)
    if support:
        user.groups.add(Group.objects.get_or_create(name=SUPPORT_GROUP)[0])
    return user


def make_membership(*, user, organisation: Organisation, role: str = "admin") -> Membership:
    return Membership.objects.create(user=user, organisation=organisation, role=role)


def make_customer(*, organisation: Organisation, name: str | None = None) -> Customer:
    return Customer.objects.create(organisation=organisation, name=name or f"Customer {next(_seq)}")


def make_batch(
    *,
    organisation: Organisation,
    name: str | None = None,
    invoices: int = 1,
    eligibility: str = InvoiceBatch.Eligibility.BEFORE_CONNECTION,
    sync_state: str = Invoice.SyncState.NOT_SYNCED,
) -> InvoiceBatch:
    batch = InvoiceBatch.objects.create(
        organisation=organisation, name=name or f"Batch {next(_seq)}", eligibility=eligibility
    )
    customer = make_customer(organisation=organisation)
    for _ in range(invoices):
        n = next(_seq)
        invoice = Invoice.objects.create(
            organisation=organisation,
            batch=batch,
            customer=customer,
            number=f"INV-{n:05d}",
            issue_date=datetime.date(2026, 11, 1),
            due_date=datetime.date(2026, 11, 15),
            total=Decimal("110.00"),
            amount_due=Decimal("110.00"),
            sync_state=sync_state,
        )
        InvoiceLine.objects.create(
            invoice=invoice, description="Service", quantity=Decimal("1"), unit_amount=Decimal("100.00")
        )
    return batch


# ---------------------------------------------------------------- Xero webhooks and the two-way sync


def make_xero_event(
    *,
    tenant_id: str,
    resource_id: str | None = None,
    category: str = "INVOICE",
    event_type: str = "UPDATE",
    at: str = "2026-11-24T10:00:00.123",
) -> dict:
    """One event as Xero puts it in a webhook delivery (ids only, no resource data)."""
    import uuid

    resource_id = resource_id or str(uuid.uuid4())
    path = "Invoices" if category == "INVOICE" else "Contacts"
    return {
        "resourceUrl": f"https://api.xero.com/api.xro/2.0/{path}/{resource_id}",
        "resourceId": resource_id,
        "eventDateUtc": at,
        "eventType": event_type,
        "eventCategory": category,
        "tenantId": tenant_id,
        "tenantType": "ORGANISATION",
    }


def make_webhook_delivery(*, events: list[dict], key: str, sequence: int = 1) -> tuple[bytes, str]:
    """(raw body, x-xero-signature) of a delivery signed as Xero signs it."""
    import json

    from integrations.xero.signatures import webhook_signature

    body = json.dumps(
        {
            "events": events,
            "firstEventSequence": sequence if events else 0,
            "lastEventSequence": sequence + len(events) - 1 if events else 0,
            "entropy": f"ENTROPY{next(_seq)}",
        },
        separators=(",", ":"),
    ).encode()
    return body, webhook_signature(body=body, key=key)


def make_pushed_invoice(
    *,
    organisation: Organisation,
    xero_invoice_id: str,
    xero_updated_at=None,
    status: str = "AUTHORISED",
    number: str | None = None,
    customer: Customer | None = None,
    total: str = "110.00",
) -> Invoice:
    """An invoice already in Xero (synced), as the push pipeline leaves it."""
    batch = InvoiceBatch.objects.create(
        organisation=organisation, name=f"Batch {next(_seq)}", eligibility=InvoiceBatch.Eligibility.ELIGIBLE
    )
    customer = customer or make_customer(organisation=organisation)
    invoice = Invoice.objects.create(
        organisation=organisation,
        batch=batch,
        customer=customer,
        number=number or f"INV-{next(_seq):05d}",
        issue_date=datetime.date(2026, 11, 1),
        due_date=datetime.date(2026, 11, 15),
        status=status,
        xero_status=status,
        sync_state=Invoice.SyncState.SYNCED,
        xero_invoice_id=xero_invoice_id,
        xero_updated_at=xero_updated_at,
        subtotal=Decimal("100.00"),
        total_tax=Decimal("10.00"),
        total=Decimal(total),
        amount_due=Decimal(total),
    )
    InvoiceLine.objects.create(
        invoice=invoice,
        description="Service",
        quantity=Decimal("1"),
        unit_amount=Decimal("100.00"),
        account_code="200",
        tax_type="OUTPUT",
    )
    return invoice
