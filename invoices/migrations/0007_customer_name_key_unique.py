from django.db import migrations, models


class Migration(migrations.Migration):
    # Apart from 0006 so the constraint is built after the keys are filled and committed (PostgreSQL refuses an
    # ALTER TABLE with row changes still pending in the same transaction).
    dependencies = [("invoices", "0006_customer_name_key")]

    operations = [
        migrations.RemoveConstraint(model_name="customer", name="customer_name_unique_per_org_ci"),
        migrations.AddConstraint(
            model_name="customer",
            constraint=models.UniqueConstraint(
                fields=("organisation", "name_key"), name="customer_name_key_unique_per_org"
            ),
        ),
    ]
