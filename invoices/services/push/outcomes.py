"""Writing each invoice's outcome: its fields from Xero's answer (all of a chunk's invoices in one statement), the
Xero organisation it is in, its history rows, and the connection's "last successful sync"."""

from __future__ import annotations

import json
import time

from django.db import connection
from django.utils import timezone

from integrations.models import XeroConnection
from invoices import mappers
from invoices.models import Invoice, InvoiceEvent, PushChunk
from invoices.sync_states import sync_state_move

S = Invoice.SyncState


OUTCOME_FIELDS = [
    "sync_state",
    "xero_invoice_id",
    "xero_status",
    "xero_updated_at",
    "subtotal",
    "total_tax",
    "total",
    "amount_due",
    "amount_paid",
    "amount_credited",
    "sync_errors",
    "sync_warnings",
    "synced_at",
    "updated_at",
    "xero_tenant_id",
    "xero_short_code",
]
_CASTS = {
    "xero_updated_at": "timestamptz",
    "synced_at": "timestamptz",
    "updated_at": "timestamptz",
    "subtotal": "numeric",
    "total_tax": "numeric",
    "total": "numeric",
    "amount_due": "numeric",
    "amount_paid": "numeric",
    "amount_credited": "numeric",
    "sync_errors": "jsonb",
    "sync_warnings": "jsonb",
}


def outcomes_save(invoices: list[Invoice]) -> None:
    """Write the outcome fields of up to 50 invoices in one statement.

    bulk_update() builds a CASE per field and row (14 x 50 here) and cost ~0.3 s of CPU per chunk, more than the
    call to Xero itself; on PostgreSQL one UPDATE ... FROM (VALUES ...) does the same in a few milliseconds.
    """
    if not invoices:
        return
    if connection.vendor != "postgresql":
        Invoice.objects.bulk_update(invoices, OUTCOME_FIELDS)
        return
    from psycopg2.extras import execute_values

    fields = [Invoice._meta.get_field(name) for name in OUTCOME_FIELDS]
    columns = [field.column for field in fields]
    template = "(%s, " + ", ".join(f"%s::{_CASTS.get(name, 'text')}" for name in OUTCOME_FIELDS) + ")"
    assignments = ", ".join(f'"{column}" = v."{column}"' for column in columns)
    rows = []
    for invoice in invoices:
        row = [invoice.pk]
        for name in OUTCOME_FIELDS:
            value = getattr(invoice, name)
            row.append(json.dumps(value) if name in ("sync_errors", "sync_warnings") else value)
        rows.append(tuple(row))
    table = Invoice._meta.db_table
    value_names = ", ".join(["id", *(f'"{column}"' for column in columns)])
    with connection.cursor() as cursor:
        # Only model metadata goes into the statement; every value is a parameter.
        sql = f'UPDATE "{table}" AS i SET {assignments} FROM (VALUES %s) AS v({value_names}) WHERE i.id = v.id'  # noqa: S608
        execute_values(cursor.cursor, sql, rows, template=template, page_size=100)


def outcome_synced(invoice: Invoice, result: mappers.InvoiceOutcome, now) -> None:
    sync_state_move(invoice, S.WARNING if result.warnings else S.SYNCED)
    invoice.xero_invoice_id = result.invoice_id
    invoice.xero_status = result.status[:12]
    invoice.xero_updated_at = result.updated_at
    for field, value in (
        ("subtotal", result.subtotal),
        ("total_tax", result.total_tax),
        ("total", result.total),
        ("amount_due", result.amount_due),
        ("amount_paid", result.amount_paid),
        ("amount_credited", result.amount_credited),
    ):
        if value is not None:
            setattr(invoice, field, value)
    invoice.sync_errors, invoice.sync_warnings = [], list(result.warnings)
    invoice.synced_at = invoice.updated_at = now


def outcomes_created_in(chunk: PushChunk, synced: list[Invoice], *, short_code: str | None = None) -> None:
    """The Xero organisation these invoices are in: the chunk's tenant, with its short code for links (unknown if
    the connection has moved to another organisation since the chunk was made). `short_code`: the tenant's, if the
    caller read it from the connection it sent with."""
    if not synced:
        return
    if short_code is None:
        short_code = (
            XeroConnection.objects.filter(organisation_id=chunk.organisation_id, tenant_id=chunk.tenant_id)
            .values_list("tenant_short_code", flat=True)
            .first()
        ) or ""
    for invoice in synced:
        invoice.xero_tenant_id, invoice.xero_short_code = chunk.tenant_id, short_code


def outcome_failed(invoice: Invoice, errors: list[str], now) -> None:
    sync_state_move(invoice, S.FAILED)
    invoice.sync_errors, invoice.sync_warnings = list(errors), []
    invoice.updated_at = now


def events_add(invoices: list[Invoice], kind: str, message) -> None:
    events_insert([(invoice, kind, message(invoice)) for invoice in invoices])


def events_insert(events: list[tuple[Invoice, str, str]]) -> None:
    """The invoices' history rows (invoice, kind, message; from the sync, by nobody), in one INSERT.

    bulk_create() builds and prepares a model instance per row (about 2 ms of CPU for a chunk's 50 invoices, as much
    as the rest of recording them); on PostgreSQL the rows go straight into one INSERT ... VALUES.
    """
    if not events:
        return
    source = InvoiceEvent.Source.SYSTEM
    if connection.vendor != "postgresql":
        InvoiceEvent.objects.bulk_create(
            [
                InvoiceEvent(
                    invoice_id=invoice.pk,
                    organisation_id=invoice.organisation_id,
                    source=source,
                    kind=kind,
                    message=message[:500],
                )
                for invoice, kind, message in events
            ]
        )
        return
    from psycopg2.extras import execute_values

    now = timezone.now()
    rows = [(invoice.pk, invoice.organisation_id, source, kind, text[:500], now) for invoice, kind, text in events]
    meta = InvoiceEvent._meta
    columns = ", ".join(
        f'"{meta.get_field(name).column}"'
        for name in ("invoice", "organisation", "source", "kind", "message", "changes", "actor", "created_at")
    )
    with connection.cursor() as cursor:
        # Only model metadata goes into the statement; every value is a parameter. `changes` is the field's default
        # ({}) and `actor` none: the sync did it.
        sql = f'INSERT INTO "{meta.db_table}" ({columns}) VALUES %s'  # noqa: S608
        execute_values(cursor.cursor, sql, rows, template="(%s, %s, %s, %s, %s, '{}'::jsonb, NULL, %s)", page_size=100)


_last_sync_recorded: dict[int, float] = {}


def sync_recorded(organisation_id: int, now) -> None:
    # One stamp every few seconds per tenant is plenty for "last successful sync"; not one UPDATE per chunk.
    clock = time.monotonic()
    if clock - _last_sync_recorded.get(organisation_id, -60.0) < 5:
        return
    _last_sync_recorded[organisation_id] = clock
    from integrations.services.connection import xero_connection_sync_recorded
    from organisations.models import Organisation

    xero_connection_sync_recorded(organisation=Organisation(pk=organisation_id), at=now)
