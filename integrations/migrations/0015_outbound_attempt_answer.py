"""The start of Xero's answer to a call gets a field of its own: a chunk's PUT kept it at the end of its detail
("50 elements; answer: <JSON>"), and the push read it back by splitting that text. Existing attempts are split
the same way, in batches."""

from django.db import migrations, models

MARK = "; answer: "
# What the push's record of a PUT wrote (invoices/services/push/record.record_put; before chunks were the engine's
# operations, without the call's name): nothing else is split.
RECORDED_PUT = r"^(PUT /Invoices: )?[0-9]+ elements; answer: "
BATCH = 500


def _in_batches(rows, fields: list[str], change) -> None:
    """`change` each row (by primary key order, BATCH at a time) and save `fields`."""
    last = 0
    while batch := list(rows.filter(pk__gt=last).order_by("pk").only("pk", *fields)[:BATCH]):
        for attempt in batch:
            change(attempt)
        rows.model.objects.bulk_update(batch, fields)
        last = batch[-1].pk


def _split(attempt) -> None:
    attempt.detail, attempt.answer = attempt.detail.split(MARK, 1)


def _join(attempt) -> None:
    attempt.detail = f"{attempt.detail}{MARK}{attempt.answer}"


def _answers_apart(apps, schema_editor):
    Attempt = apps.get_model("integrations", "OutboundAttempt")
    _in_batches(Attempt.objects.filter(action="send", detail__regex=RECORDED_PUT), ["detail", "answer"], _split)


def _answers_back(apps, schema_editor):
    Attempt = apps.get_model("integrations", "OutboundAttempt")
    _in_batches(Attempt.objects.filter(action="send").exclude(answer=""), ["detail", "answer"], _join)


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0014_outbound_fewer_indexes"),
        # After the push's chunks and attempts moved into the engine's tables (their details are split here too, and
        # that migration's historical model writes attempts without this column).
        ("invoices", "0015_drop_push_chunk_tables"),
    ]

    operations = [
        migrations.AddField(
            model_name="outboundattempt",
            name="answer",
            field=models.TextField(blank=True),
        ),
        migrations.RunPython(_answers_apart, _answers_back),
    ]
