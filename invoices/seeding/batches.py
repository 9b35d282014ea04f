"""Batches of invoices (one line each) spread over the organisations, most of them already in Xero."""

import datetime
import random
import time
from collections.abc import Callable
from decimal import Decimal

from django.utils import timezone

from invoices.models import Invoice, InvoiceBatch, InvoiceLine
from invoices.seeding.copy_writer import CopyWriter, first_free_id, seeded_uuid
from invoices.seeding.tenants import SeededTenants
from invoices.sync_states import sync_state_seed

STATES = [
    (Invoice.SyncState.SYNCED, 80),
    (Invoice.SyncState.WARNING, 4),
    (Invoice.SyncState.FAILED, 3),
    (Invoice.SyncState.PENDING, 3),
    (Invoice.SyncState.NOT_SYNCED, 10),
]


def invoices_seed(
    cursor,
    *,
    tenants: SeededTenants,
    batches: int,
    invoices: int,
    rng: random.Random,
    today: datetime.date,
    started: float,
    progress: Callable[[str], None],
) -> None:
    """Write them with COPY on `cursor`, reporting every 100,000 invoices; the caller resets the sequences."""
    weights = [w for _, w in STATES]
    states = [s for s, _ in STATES]
    batch_id, inv_id, line_id = first_free_id(InvoiceBatch), first_free_id(Invoice), first_free_id(InvoiceLine)
    batch_rows, invoice_rows, lines = CopyWriter(InvoiceBatch), CopyWriter(Invoice), CopyWriter(InvoiceLine)
    org_ids, n_orgs = tenants.organisation_ids, len(tenants.organisation_ids)
    per_batch, extra = divmod(invoices, batches)
    numbers = dict.fromkeys(org_ids, 0)
    for b in range(batches):
        oid = org_ids[b % n_orgs]
        eligible = rng.random() > 0.1
        batch_rows.add(
            id=batch_id,
            organisation_id=oid,
            name=f"Batch {b:06d}",
            source="csv",
            eligibility="eligible" if eligible else "before_connection",
            created_by_id=tenants.admins[oid],
            created_at=timezone.now() - datetime.timedelta(minutes=b),
        )
        for _ in range(per_batch + (1 if b < extra else 0)):
            numbers[oid] += 1
            amount = Decimal(rng.randint(5_000, 500_000)) / 100
            state = rng.choices(states, weights)[0] if eligible else Invoice.SyncState.NOT_SYNCED
            in_xero = state in (Invoice.SyncState.SYNCED, Invoice.SyncState.WARNING)
            issue = today - datetime.timedelta(days=rng.randint(0, 365))
            invoice_rows.add(
                id=inv_id,
                organisation_id=oid,
                batch_id=batch_id,
                customer_id=rng.choice(tenants.customers[oid]),
                number=f"SC-{numbers[oid]:07d}",
                reference="",
                currency="AUD",
                issue_date=issue,
                due_date=issue + datetime.timedelta(days=14),
                line_amount_types="Exclusive",
                status="AUTHORISED",
                sync_state=sync_state_seed(state),
                subtotal=amount,
                total=amount,
                amount_due=amount,
                xero_invoice_id=seeded_uuid(rng) if in_xero else "",
                xero_status="AUTHORISED" if in_xero else "",
                sync_errors=[{"Message": "Account code '999' is not a valid code."}]
                if state == Invoice.SyncState.FAILED
                else [],
            )
            lines.add(
                id=line_id,
                invoice_id=inv_id,
                position=1,
                description="Services",
                quantity=1,
                unit_amount=amount,
                account_code="",
                tax_type="",
            )
            inv_id += 1
            line_id += 1
        batch_id += 1
        if invoice_rows.count >= 100_000:
            batch_rows.flush(cursor)
            invoice_rows.flush(cursor)
            lines.flush(cursor)
            progress(f"  {b + 1} batches written ({time.monotonic() - started:.0f}s)")
    for writer in (batch_rows, invoice_rows, lines):
        writer.flush(cursor)
