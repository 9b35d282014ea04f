"""Push chunks become the outbound engine's operations (kind `invoice_chunk`) and their attempts its attempts: one
table of writes to Xero, one of calls, one state machine (integrations/outbound/states.py). The old tables go in
0015 (a migration of their own: PostgreSQL refuses to alter a table with rows just written in the same transaction)."""

import json

from django.db import migrations, models
from django.db.models import Case, When
import django.db.models.deletion

CHUNK_KIND = "invoice_chunk"
BATCH = 500

# A chunk's final state: failed chunks whose invoices stopped in needs_attention need attention; the rest of them
# (released without a write, or refused by Xero as a whole) were refused.
STATES = {"pending": "pending", "sending": "sending", "done": "done"}


def _attempt_outcome(action: str, outcome: str, status, final: bool) -> str:
    """A push attempt in the engine's words (what invoices/services/push/record.py now writes). `final`: the chunk
    ended with every invoice resolved (a chunk that needs attention did not: its answers left some to find out)."""
    if outcome in ("ok", "validation"):
        if final:
            return (
                "refused" if outcome == "validation" and action == "send" and status and status >= 400 else "confirmed"
            )
        return "unconfirmed"  # answered, with elements left to look up
    if outcome == "rate_limited":
        return "retry"
    if outcome in ("server_error", "timeout"):
        if action != "send":
            return "retry"
        return "unconfirmed" if status == 500 else "unknown"
    if outcome == "auth":
        return "waiting"
    return "retry"


def _last_answer(attempts: list) -> dict:
    """Xero's answer to the chunk's PUT, as the attempt's detail kept its start ("...; answer: <JSON>")."""
    for attempt in reversed(attempts):
        if attempt.action == "send" and attempt.http_status == 200 and "answer: " in attempt.detail:
            head = attempt.detail.split("answer: ", 1)[1]
            try:
                answer = json.loads(head)
            except ValueError:
                answer = None
            return answer if isinstance(answer, dict) else {"answer_starts": head}
    return {}


def chunks_to_operations(apps, schema_editor):
    PushChunk = apps.get_model("invoices", "PushChunk")
    PushAttempt = apps.get_model("invoices", "PushAttempt")
    Invoice = apps.get_model("invoices", "Invoice")
    Operation = apps.get_model("integrations", "OutboundOperation")
    Attempt = apps.get_model("integrations", "OutboundAttempt")
    last = 0
    while True:
        chunks = list(PushChunk.objects.filter(pk__gt=last).order_by("pk")[:BATCH])
        if not chunks:
            return
        last = chunks[-1].pk
        ids = [chunk.pk for chunk in chunks]
        attention = set(
            Invoice.objects.filter(chunk_id__in=ids, sync_state="needs_attention").values_list("chunk_id", flat=True)
        )
        attempts: dict[int, list] = {}
        for attempt in PushAttempt.objects.filter(chunk_id__in=ids).order_by("started_at", "pk"):
            attempts.setdefault(attempt.chunk_id, []).append(attempt)
        operations = []
        for chunk in chunks:
            mine = attempts.get(chunk.pk, [])
            if chunk.state == "failed":
                state = "needs_attention" if chunk.pk in attention else "refused"
            else:
                state = STATES[chunk.state]
            # A claimed call with no row: its worker stopped mid-call (the old claim counted attempts minus rows). It
            # is written down as a send in flight, the careful reading: the next claim records its outcome as unknown,
            # and a send that may have written is resent under its key or looked up, never given up on.
            lost = chunk.state == "sending" and chunk.attempts > len(mine)
            operations.append(
                Operation(
                    organisation_id=chunk.organisation_id,
                    tenant_id=chunk.tenant_id,
                    kind=CHUNK_KIND,
                    payload=chunk.payload,
                    idempotency_key=chunk.idempotency_key,
                    state=state,
                    attempts=chunk.attempts,
                    sends=sum(1 for a in mine if a.action == "send"),
                    lookups=sum(1 for a in mine if a.action == "lookup"),
                    key_first_sent_at=chunk.first_attempt_at,
                    next_attempt_at=chunk.next_attempt_at,
                    lease_until=chunk.lease_expires_at,
                    leased_by=chunk.claimed_by,
                    in_flight="send" if lost else "",
                    last_answer=_last_answer(mine) if state == "needs_attention" else {},
                    last_error=chunk.last_error,
                    completed_at=chunk.completed_at,
                )
            )
        Operation.objects.bulk_create(operations)
        new_id = {chunk.pk: operation.pk for chunk, operation in zip(chunks, operations, strict=True)}
        # created_at is auto_now_add: written again from the chunks', in one statement.
        Operation.objects.filter(pk__in=new_id.values()).update(
            created_at=Case(*(When(pk=new_id[c.pk], then=models.Value(c.created_at)) for c in chunks))
        )
        Attempt.objects.bulk_create(
            Attempt(
                operation_id=new_id[chunk.pk],
                action=a.action,
                outcome=_attempt_outcome(
                    a.action,
                    a.outcome,
                    a.http_status,
                    chunk.state == "done" or (chunk.state == "failed" and chunk.pk not in attention),
                ),
                http_status=a.http_status,
                duration_ms=a.duration_ms,
                correlation_id=a.correlation_id,
                detail=a.detail,
                started_at=a.started_at,
            )
            for chunk in chunks
            for a in attempts.get(chunk.pk, [])
        )
        for old, new in new_id.items():
            Invoice.objects.filter(chunk_id=old).update(operation_id=new)


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0013_outbound_checks"),
        ("invoices", "0013_push_attempt_action"),
    ]

    operations = [
        migrations.AddField(
            model_name="invoice",
            name="operation",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="integrations.outboundoperation",
            ),
        ),
        migrations.RunPython(chunks_to_operations, migrations.RunPython.noop),
    ]
