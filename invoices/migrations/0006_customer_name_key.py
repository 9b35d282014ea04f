import unicodedata

from django.db import migrations, models


def _key(name: str) -> str:
    # A frozen copy of invoices.models.customer_name_key: a migration must not change when the model does.
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


def fill_name_keys(apps, schema_editor):
    """Every customer's canonical key. Two old customers whose names now share a key (allowed under the old
    lower()-based constraint, e.g. "Straße" and "STRASSE") keep apart: the later one's key carries its id, and
    new batches match the first."""
    Customer = apps.get_model("invoices", "Customer")
    seen: set[tuple[int, str]] = set()
    batch = []
    for customer in Customer.objects.order_by("pk").only("pk", "organisation_id", "name").iterator(chunk_size=2000):
        key = _key(customer.name)
        if (customer.organisation_id, key) in seen:
            key = f"{key}#{customer.pk}"
        seen.add((customer.organisation_id, key))
        customer.name_key = key
        batch.append(customer)
        if len(batch) >= 2000:
            Customer.objects.bulk_update(batch, ["name_key"])
            batch = []
    if batch:
        Customer.objects.bulk_update(batch, ["name_key"])


class Migration(migrations.Migration):
    dependencies = [
        ("invoices", "0005_push_attempt_latest_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="customer",
            name="name_key",
            field=models.CharField(
                default="",
                editable=False,
                help_text="customer_name_key(name): how names are matched, unique per organisation. Set on save.",
                max_length=1024,
            ),
            preserve_default=False,
        ),
        migrations.RunPython(fill_name_keys, migrations.RunPython.noop),
    ]
