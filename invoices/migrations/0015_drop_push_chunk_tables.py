"""The push's own chunk and attempt tables, now moved into the outbound engine's (0014); Invoice.chunk points there."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("invoices", "0014_chunks_as_outbound_operations"),
    ]

    operations = [
        migrations.RemoveField(model_name="invoice", name="chunk"),
        migrations.RenameField(model_name="invoice", old_name="operation", new_name="chunk"),
        migrations.AlterField(
            model_name="invoice",
            name="chunk",
            field=models.ForeignKey(
                blank=True,
                help_text="The push chunk (an outbound operation of kind invoice_chunk) that last carried it.",
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="invoices",
                to="integrations.outboundoperation",
            ),
        ),
        migrations.DeleteModel(name="PushAttempt"),
        migrations.DeleteModel(name="PushChunk"),
    ]
