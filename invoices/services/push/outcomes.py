"""Writing each invoice's outcome: its fields from Xero's answer (all of a chunk's invoices in one statement), the
Xero organisation it is in, its history rows, and the connection's "last successful sync"."""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar

import orjson
from django.db import connection
from django.utils import timezone

from integrations.models import XeroConnection
from integrations.outbound.models import OutboundOperation
from invoices import mappers
from invoices.models import Invoice, InvoiceEvent
from invoices.sync_states import sync_state_move

S = Invoice.SyncState


@dataclass(eq=False, slots=True)
class Carried:
    """One of a chunk's invoices while Xero's answer is recorded, read as values rather than as a model instance (50
    of those cost more CPU than the rest of recording): what recording reads of it, its sync state (moved through
    invoices/sync_states.py like an Invoice's), and every other field it sets, in `changes`."""

    state_model: ClassVar[type] = Invoice  # the sync state table it moves by

    pk: int
    organisation_id: int
    number: str
    sync_state: str
    sync_errors: list[str]
    contact_id: str = ""  # its customer's Xero ContactID, read only when a lookup compares them
    sync_warnings: list[str] = field(default_factory=list)
    changes: dict[str, Any] = field(default_factory=dict)

    @property
    def xero_status(self) -> str:
        return self.changes.get("xero_status", "")


# Always written (recording may move the state, or set or clear the messages); the rest only when in `changes`.
_WRITTEN = ("sync_state", "sync_errors", "sync_warnings")
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


def outcomes_save(invoices: list[Carried]) -> None:
    """Write what recording set on up to 50 invoices: one statement per set of fields (usually one per chunk).

    On PostgreSQL the rows travel as one JSON document (UPDATE ... FROM jsonb_array_elements): encoding it takes a
    third of the CPU that psycopg2's quoting of each value took (bulk_update()'s CASE per field and row took ~0.3 s
    a chunk, more than the call to Xero itself)."""
    groups: dict[tuple[str, ...], list[Carried]] = defaultdict(list)
    for invoice in invoices:
        groups[(*_WRITTEN, *sorted(invoice.changes))].append(invoice)
    for names, rows in groups.items():
        values = [{"id": row.pk, **{name: getattr(row, name) for name in _WRITTEN}, **row.changes} for row in rows]
        _update(names, values)


def _update(names: tuple[str, ...], values: list[dict[str, Any]]) -> None:
    meta = Invoice._meta
    columns = {name: meta.get_field(name).column for name in names}
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            fields = [meta.get_field(name) for name in names]
            assignments = ", ".join(f'"{columns[name]}" = %s' for name in names)
            # Only model metadata goes into the statement; every value is a parameter.
            sql = f'UPDATE "{meta.db_table}" SET {assignments} WHERE id = %s'  # noqa: S608
            params = [[*(f.get_db_prep_save(row[f.name], connection) for f in fields), row["id"]] for row in values]
            cursor.executemany(sql, params)
            return
        assignments = ", ".join(f'"{columns[name]}" = {_from_json(name)}' for name in names)
        # Only model metadata goes into the statement; the rows are one parameter.
        sql = (
            f'UPDATE "{meta.db_table}" AS i SET {assignments} '  # noqa: S608
            "FROM jsonb_array_elements(%s::jsonb) AS v(d) WHERE i.id = (v.d->>'id')::bigint"
        )
        # orjson writes an aware datetime as isoformat() does, in a fifth of the standard library's time for 50 rows.
        cursor.execute(sql, [orjson.dumps(values, default=_json_value).decode()])


def _from_json(name: str) -> str:
    cast = _CASTS.get(name, "text")
    return f"v.d->'{name}'" if cast == "jsonb" else f"(v.d->>'{name}')::{cast}"


def _json_value(value: Any) -> str:
    if isinstance(value, Decimal):
        return str(value)  # exactly, scale included (a float would not be)
    raise TypeError(f"{type(value).__name__} is not written by outcomes_save")


def outcome_synced(invoice: Carried, result: mappers.InvoiceOutcome, now) -> None:
    sync_state_move(invoice, S.WARNING if result.warnings else S.SYNCED)
    changes = invoice.changes
    changes["xero_invoice_id"] = result.invoice_id
    changes["xero_status"] = result.status[:12]
    changes["xero_updated_at"] = result.updated_at
    for name, value in (
        ("subtotal", result.subtotal),
        ("total_tax", result.total_tax),
        ("total", result.total),
        ("amount_due", result.amount_due),
        ("amount_paid", result.amount_paid),
        ("amount_credited", result.amount_credited),
    ):
        if value is not None:
            changes[name] = value
    invoice.sync_errors, invoice.sync_warnings = [], list(result.warnings)
    changes["synced_at"] = changes["updated_at"] = now


def outcomes_created_in(chunk: OutboundOperation, synced: list[Carried], *, short_code: str | None = None) -> None:
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
        invoice.changes["xero_tenant_id"], invoice.changes["xero_short_code"] = chunk.tenant_id, short_code


def outcome_failed(invoice: Carried, errors: list[str], now) -> None:
    sync_state_move(invoice, S.FAILED)
    invoice.sync_errors, invoice.sync_warnings = list(errors), []
    invoice.changes["updated_at"] = now


def events_add(invoices: list[Carried], kind: str, message) -> None:
    events_insert([(invoice, kind, message(invoice)) for invoice in invoices])


def events_insert(events: list[tuple[Carried, str, str]]) -> None:
    """The invoices' history rows (invoice, kind, message; from the sync, by nobody), in one INSERT.

    bulk_create() builds and prepares a model instance per row (about 2 ms of CPU for a chunk's 50 invoices, as much
    as the rest of recording them); on PostgreSQL the rows go straight into one INSERT ... SELECT.
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
    rows = [[invoice.pk, invoice.organisation_id, kind, text[:500]] for invoice, kind, text in events]
    meta = InvoiceEvent._meta
    columns = ", ".join(
        f'"{meta.get_field(name).column}"'
        for name in ("invoice", "organisation", "source", "kind", "message", "changes", "actor", "created_at")
    )
    with connection.cursor() as cursor:
        # Only model metadata goes into the statement; the rows are one parameter (a JSON document, as in
        # outcomes_save). `changes` is the field's default ({}) and `actor` none: the sync did it.
        sql = (
            f'INSERT INTO "{meta.db_table}" ({columns}) '  # noqa: S608
            "SELECT (e->>0)::bigint, (e->>1)::bigint, %s, e->>2, e->>3, '{}'::jsonb, NULL, %s "
            "FROM jsonb_array_elements(%s::jsonb) AS e"
        )
        cursor.execute(sql, [source, timezone.now(), orjson.dumps(rows).decode()])


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
