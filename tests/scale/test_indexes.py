"""Every index is written again by each insert and each non-HOT update of its table: the push updates an invoice
three times (in flight, synced, Xero's webhook) and inserts its history rows and webhook events. An index that
another already serves is paid for on every one of those writes and never read."""

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db

# The tables the push and the webhooks write for every invoice.
HOT_TABLES = (
    "invoices_invoice",
    "invoices_invoiceevent",
    "integrations_outboundoperation",  # a push chunk is one (kind invoice_chunk)
    "integrations_outboundattempt",
    "integrations_webhookevent",
)


# LIKE indexes that a query does use: engine.operation_for_key finds an operation whose key was renewed
# (`<first key>~<n>`) by its first key's prefix.
LIKE_QUERIED = {"integrations_outboundoperation": "idempotency_key"}


def _indexes(table: str) -> list[tuple[str, list[str], bool, bool, str]]:
    """(name, columns, unique, partial, definition) of the table's indexes."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT i.relname, ix.indisunique, ix.indpred IS NOT NULL, pg_get_indexdef(ix.indexrelid),
                   ARRAY(SELECT a.attname FROM unnest(ix.indkey) WITH ORDINALITY AS k(attnum, n)
                         JOIN pg_attribute a ON a.attrelid = ix.indrelid AND a.attnum = k.attnum
                         WHERE k.n <= ix.indnkeyatts ORDER BY k.n)
            FROM pg_index ix JOIN pg_class i ON i.oid = ix.indexrelid JOIN pg_class t ON t.oid = ix.indrelid
            WHERE t.relname = %s
            """,
            [table],
        )
        return [
            (name, list(columns), unique, partial, definition) for name, unique, partial, definition, columns in cursor
        ]


@pytest.mark.parametrize("table", HOT_TABLES)
def test_no_index_on_a_hot_table_is_served_by_another(table):
    indexes = _indexes(table)
    assert indexes, table
    redundant = []
    for name, columns, unique, partial, definition in indexes:
        if "varchar_pattern_ops" in definition:
            if columns != [LIKE_QUERIED.get(table)]:
                redundant.append(f"{name}: a LIKE index (nothing here filters with LIKE on it)")
            continue
        if unique or partial:
            continue
        for other, other_columns, _, other_partial, _ in indexes:
            if other != name and not other_partial and other_columns[: len(columns)] == columns:
                redundant.append(f"{name} {columns}: {other} {other_columns} leads with the same columns")
                break
    assert not redundant, redundant
