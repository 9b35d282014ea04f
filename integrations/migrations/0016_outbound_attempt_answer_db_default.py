"""0015 added `answer` NOT NULL with no default in the database: during a deploy, workers still running the previous
code insert attempts without the column and PostgreSQL refused them, so their writes to Xero failed to be recorded.
The column gets a database default ("") that takes those inserts."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0015_outbound_attempt_answer"),
    ]

    operations = [
        migrations.AlterField(
            model_name="outboundattempt",
            name="answer",
            field=models.TextField(blank=True, db_default="", default=""),
        ),
    ]
