"""During a deploy, workers still running the previous code write rows next to the new schema: a column a migration
adds must take their inserts, which name only the columns they know."""

import pytest
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.utils import timezone

from integrations.outbound.models import OutboundAttempt, OutboundOperation

BEFORE_ANSWER = ("integrations", "0014_outbound_fewer_indexes")


@pytest.mark.django_db
def test_an_old_worker_records_an_attempt_when_the_answer_column_is_new(org_a):
    operation = OutboundOperation.objects.create(
        organisation=org_a, tenant_id="t", kind="invoice_chunk", payload={}, idempotency_key="k-old-worker"
    )
    row = {
        "operation_id": operation.pk,
        "action": "send",
        "outcome": "confirmed",
        "http_status": 200,
        "duration_ms": 120,
        "correlation_id": "",
        "detail": "PUT /Invoices: 1 elements (Ωmega-1, Müßig GmbH)",
        "started_at": timezone.now(),
    }
    # The insert names exactly what the model had before 0015 added `answer` (the primary key is generated).
    old = MigrationLoader(connection).project_state(BEFORE_ANSWER).apps.get_model("integrations", "OutboundAttempt")
    assert set(row) == {f.column for f in old._meta.concrete_fields if not f.primary_key}

    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(OutboundAttempt._meta.db_table)} ({', '.join(map(quote, row))}) "
            f"VALUES ({', '.join(['%s'] * len(row))}) RETURNING id",
            list(row.values()),
        )
        (pk,) = cursor.fetchone()

    assert OutboundAttempt.objects.get(pk=pk).answer == ""
