"""Queries per page stay constant as data grows: every portal and support page is rendered with N of everything
(batches, invoices in a batch, lines, history, customers, members, invoices created in Xero, audit events,
webhook events, organisations, support requests, Xero organisations to choose from), then with 3N, and must
make the same number of queries. N stays under every page size, so a per-row query cannot hide behind pagination.

bench/portal_latency.py measures the same pages on 1,000,000 invoices (docs/benchmarks.md).
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from integrations.audit import audit_event_record
from integrations.models import ReconciliationState, WebhookEvent, XeroConnection, XeroPendingTenantChoice
from integrations.usage import record as usage_record
from invoices.created_in_xero.models import XeroCreatedInvoice, XeroInvoiceChange
from invoices.models import (
    CreditNoteAllocation,
    Customer,
    Invoice,
    InvoiceBatch,
    InvoiceEvent,
    InvoiceLine,
    XeroMapping,
)
from organisations.models import Organisation, SupportRequest
from tests.factories import (
    make_connection,
    make_credit_note,
    make_membership,
    make_organisation,
    make_user,
    mfa_verify_client,
)

pytestmark = pytest.mark.django_db

N = 2


@dataclass
class Scale:
    organisation: Organisation
    admin: object
    support: object
    batch: InvoiceBatch
    invoice: Invoice
    pending: XeroPendingTenantChoice
    grown: int = 0
    invoice_ids: list[int] = field(default_factory=list)


def _invoice(scale: Scale, batch: InvoiceBatch, customer: Customer, *, state: str, n: int) -> Invoice:
    org = scale.organisation
    invoice = Invoice.objects.create(
        organisation=org,
        batch=batch,
        customer=customer,
        number=f"SCALE-{batch.pk}-{n:05d}-{state}",
        issue_date=dt.date(2026, 11, 1),
        due_date=dt.date(2026, 11, 15),
        sync_state=state,
        status="DRAFT",
        xero_status="DRAFT" if state == "synced" else "",
        xero_invoice_id=str(uuid.uuid4()) if state == "synced" else "",
        total=Decimal("110.00"),
        sync_errors=[{"Message": "Bad account"}] if state == "failed" else [],
    )
    for position in range(2):
        InvoiceLine.objects.create(invoice=invoice, position=position, description="Work", unit_amount=Decimal("50"))
    for kind in ("created", "pushed"):
        InvoiceEvent.objects.create(
            invoice=invoice, organisation=org, source="coordinoter", kind=kind, message=kind, actor=scale.admin
        )
    XeroInvoiceChange.objects.create(
        organisation=org,
        invoice=invoice,
        action="void",
        state="failed",
        idempotency_key=str(uuid.uuid4()),
        completed_at=timezone.now(),
        requested_by=scale.admin,
    )
    return invoice


def _credit_note(scale: Scale, batch: InvoiceBatch, customer: Customer, *, state: str) -> None:
    """A credit note in the batch (counted with its invoices), allocated to the measured invoice."""
    note = make_credit_note(
        batch=batch, customer=customer, sync_state=state, xero_status="VOIDED" if state == "synced" else ""
    )
    CreditNoteAllocation.objects.create(organisation=scale.organisation, credit_note=note, invoice=scale.invoice)


def grow(scale: Scale, n: int) -> None:
    """Add n more of everything a portal or support page lists."""
    org, now = scale.organisation, timezone.now()
    for _ in range(n):
        i = scale.grown = scale.grown + 1
        customer = Customer.objects.create(organisation=org, name=f"Scale Customer {i}")
        # Another batch in the list, and more invoices (with lines, history, Xero changes) in the measured batch.
        batch = InvoiceBatch.objects.create(
            organisation=org, name=f"Scale Batch {i}", created_by=scale.admin, eligibility="eligible"
        )
        for state in ("synced", "failed"):
            _invoice(scale, batch, customer, state=state, n=i)
            scale.invoice_ids.append(_invoice(scale, scale.batch, customer, state=state, n=i).pk)
            _credit_note(scale, batch, customer, state=state)
            _credit_note(scale, scale.batch, customer, state=state)
        InvoiceLine.objects.create(invoice=scale.invoice, position=10 + i, description="More", unit_amount=1)
        member = make_user(email=f"member{i}@scale.test")
        make_membership(user=member, organisation=org, role="accountant")
        XeroCreatedInvoice.objects.create(
            organisation=org,
            xero_invoice_id=str(uuid.uuid4()),
            number=f"XC-{i}",
            contact_name="Walk-in",
            issue_date=dt.date(2026, 11, 2),
        )
        audit_event_record(organisation=org, action="token_refreshed", actor=member, detail={"n": i})
        # Xero calls in another minute (some 429s): the support page's usage chart.
        usage_record.xero_call_recorded(
            organisation_id=org.pk,
            status=429 if i % 2 else 200,
            day_remaining=4000 - i,
            at=now - dt.timedelta(minutes=i),
        )
        WebhookEvent.objects.create(
            organisation=org,
            tenant_id=scale.organisation.xero_connection.tenant_id,
            category="INVOICE",
            event_type="UPDATE",
            resource_id=str(uuid.uuid4()),
            event_date=now,
            state="processed",
            received_at=now,
            processed_at=now + dt.timedelta(seconds=1),
        )
        # Another tenant: its connection, inbox, reconciliation, audit trail, and a support request.
        other = make_organisation(name=f"Scale Other {i}")
        tenant = str(uuid.uuid4())
        make_connection(
            organisation=other,
            tenant_id=tenant,
            tenant_name=f"Other Xero {i}",
            connection_id=str(uuid.uuid4()),
            status="needs_reconnect" if i % 2 else "active",
        )
        XeroConnection.objects.filter(organisation=other).update(last_error="Xero said no")
        ReconciliationState.objects.create(organisation=other, drift_total=i)
        WebhookEvent.objects.create(
            organisation=other,
            tenant_id=tenant,
            category="INVOICE",
            event_type="UPDATE",
            resource_id=str(uuid.uuid4()),
            event_date=now,
            state="processed",
            received_at=now,
            processed_at=now + dt.timedelta(seconds=2),
        )
        audit_event_record(organisation=other, action="connected", actor=None)
        SupportRequest.objects.create(organisation=other, user=member, subject=f"Help {i}", message="Please")
        scale.pending.candidates = [
            *scale.pending.candidates,
            {
                "id": str(uuid.uuid4()),
                "tenant_id": str(uuid.uuid4()),
                "tenant_type": "ORGANISATION",
                "tenant_name": f"Candidate {i}",
            },
        ]
        scale.pending.save(update_fields=["candidates"])


@pytest.fixture
def scale(db, xero_mock) -> Scale:
    org = make_organisation(name="Scale Holdings")
    admin = make_user(email="admin@scale.test")
    make_membership(user=admin, organisation=org, role="admin")
    make_connection(organisation=org, tenant_id=str(uuid.uuid4()), connection_id=str(uuid.uuid4()))
    XeroMapping.objects.create(organisation=org, revenue_account_code="200", tax_type="OUTPUT")
    support = make_user(email="support@scale.test", support=True)
    batch = InvoiceBatch.objects.create(
        organisation=org, name="Measured batch", created_by=admin, eligibility="eligible"
    )
    customer = Customer.objects.create(organisation=org, name="Measured Customer")
    now = timezone.now()
    pending = XeroPendingTenantChoice.objects.create(
        organisation=org, user=admin, session_digest="s" * 64, created_at=now, expires_at=now + dt.timedelta(minutes=10)
    )
    scale = Scale(organisation=org, admin=admin, support=support, batch=batch, invoice=None, pending=pending)
    scale.invoice = _invoice(scale, batch, customer, state="synced", n=0)
    grow(scale, N)
    return scale


def portal_pages(s: Scale) -> dict[str, str]:
    ids = ",".join(str(i) for i in s.invoice_ids)
    return {
        "dashboard": "/portal/",
        "batch list": "/batches/",
        "batch list search": "/batches/?q=Scale",
        "batch list failed": "/batches/?state=failed",
        "batch detail": f"/batches/{s.batch.pk}/",
        "batch detail failed": f"/batches/{s.batch.pk}/?state=failed",
        "batch progress": f"/batches/{s.batch.pk}/progress/",
        "batch new": "/batches/new/",
        "batch upload": "/batches/upload/",
        "settings": "/settings/",
        "xero mapping": "/settings/xero-mapping/",
        "manage integrations": "/integrations/",
        "disconnect confirm": "/integrations/xero/disconnect/",
        "choose xero organisation": f"/integrations/xero/choose/{s.pending.pk}/",
        "created in xero": "/invoices/created-in-xero/",
        "xero states partial": f"/invoices/xero-states/?ids={ids}",
        "invoice edit": f"/invoices/{s.invoice.pk}/xero/edit/",
        "invoice void": f"/invoices/{s.invoice.pk}/xero/void/",
        "invoice delete": f"/invoices/{s.invoice.pk}/xero/delete/",
    }


def support_pages(s: Scale) -> dict[str, str]:
    return {
        "support console": "/support/",
        "support console search": "/support/?q=Scale",
        "support console problems": "/support/?state=problems",
        "support organisation": f"/support/organisations/{s.organisation.pk}/",
        "support batches": f"/support/organisations/{s.organisation.pk}/batches/",
        "support batch": f"/support/organisations/{s.organisation.pk}/batches/{s.batch.pk}/",
        "webhook inbox": "/support/webhooks/",
        "webhook inbox organisation": f"/support/organisations/{s.organisation.pk}/webhooks/",
    }


def measure(client: Client, pages: dict[str, str]) -> dict[str, tuple[int, list[str]]]:
    counts = {}
    for name, url in pages.items():
        assert client.get(url).status_code == 200, url  # warm: caches (mapping choices, sessions) are filled
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(url)
        assert response.status_code == 200, url
        counts[name] = (len(ctx.captured_queries), [q["sql"] for q in ctx.captured_queries])
    return counts


def _shape(sql: str) -> str:
    return re.sub(r"\b\d+\b|'[^']*'", "?", sql)[:160]


def growing(before: dict, after: dict, pages: dict[str, str]) -> list[str]:
    problems = []
    for name, (count, queries) in before.items():
        later, later_queries = after[name]
        if later != count:
            extra = Counter(map(_shape, later_queries)) - Counter(map(_shape, queries))
            problems.append(
                f"{name} ({pages[name]}): {count} queries with N={N}, {later} with 3N; repeated: "
                + "; ".join(f"{n}x {sql}" for sql, n in extra.most_common(2))
            )
    return problems


def test_portal_pages_make_the_same_number_of_queries_when_the_data_triples(scale):
    client = Client()
    client.force_login(scale.admin)
    pages = portal_pages(scale)
    before = measure(client, pages)
    grow(scale, 2 * N)
    problems = growing(before, measure(client, portal_pages(scale)), pages)
    assert not problems, "\n".join(problems)


def test_support_pages_make_the_same_number_of_queries_when_the_data_triples(scale):
    client = Client()
    client.force_login(scale.support)
    mfa_verify_client(client, scale.support)
    pages = support_pages(scale)
    before = measure(client, pages)
    grow(scale, 2 * N)
    problems = growing(before, measure(client, support_pages(scale)), pages)
    assert not problems, "\n".join(problems)
