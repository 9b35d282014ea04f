"""The start of Xero's answer to a call gets a field of its own: a chunk's PUT kept it at the end of its detail
("50 elements; answer: <JSON>"), and the push read it back by splitting that text. Existing attempts are split
the same way, in batches."""

from django.db import migrations, models

MARK = "; answer: "
# What the push's record of a PUT wrote (invoices/services/push/record.record_put; before chunks were the engine's
# operations, without the call's name): nothing else is split.
RECORDED_PUT = r"^(PUT /Invoices: )?[0-9]+ elements; answer: "
BATCH = 500


def _answers_apart(apps, schema_editor):
    Attempt = apps.get_model("integrations", "OutboundAttempt")
    rows = Attempt.objects.filter(action="send", detail__regex=RECORDED_PUT).order_by("pk")
    last = 0
    while True:
        batch = list(rows.filter(pk__gt=last).only("pk", "detail")[:BATCH])
        if not batch:
            return
        for attempt in batch:
            attempt.detail, attempt.answer = attempt.detail.split(MARK, 1)
        Attempt.objects.bulk_update(batch, ["detail", "answer"])
        last = batch[-1].pk


def _answers_back(apps, schema_editor):
    Attempt = apps.get_model("integrations", "OutboundAttempt")
    rows = Attempt.objects.filter(action="send").exclude(answer="").order_by("pk")
    last = 0
    while True:
        batch = list(rows.filter(pk__gt=last).only("pk", "detail", "answer")[:BATCH])
        if not batch:
            return
        for attempt in batch:
            attempt.detail = f"{attempt.detail}{MARK}{attempt.answer}"
        Attempt.objects.bulk_update(batch, ["detail"])
        last = batch[-1].pk


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
