"""Migrations a deploy can run while workers on the previous code still write: a column added NOT NULL takes their
inserts (which do not name it) only with a default in the database, `db_default`. A Python `default` is not enough:
Django drops it from the column once the existing rows are filled."""

from collections.abc import Iterator
from pathlib import Path

from django.apps import apps
from django.db import migrations
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.operations.base import Operation

ROOT = Path(__file__).resolve().parent.parent

# Added before this rule (integrations 0016 gives 0015's `answer` its database default); no new entry belongs here.
NOT_NULL_WITHOUT_DB_DEFAULT = {
    ("integrations", "0008_usage_by_priority", "xeroapiusage", "health_calls"),
    ("integrations", "0008_usage_by_priority", "xeroapiusage", "reconcile_calls"),
    ("integrations", "0008_usage_by_priority", "xeroapiusage", "webhook_calls"),
    ("integrations", "0009_reconcile_cadence", "reconciliationstate", "due_reason"),
    ("integrations", "0013_outbound_checks", "outboundoperation", "checks"),
    ("integrations", "0015_outbound_attempt_answer", "outboundattempt", "answer"),
    ("invoices", "0002_push_mapping_history", "invoice", "amount_credited"),
    ("invoices", "0002_push_mapping_history", "invoice", "subtotal"),
    ("invoices", "0002_push_mapping_history", "invoice", "total_tax"),
    ("invoices", "0002_push_mapping_history", "invoice", "xero_status"),
    ("invoices", "0006_customer_name_key", "customer", "name_key"),
    ("invoices", "0009_fix_resend_payments_tenant", "invoice", "xero_short_code"),
    ("invoices", "0009_fix_resend_payments_tenant", "invoice", "xero_tenant_id"),
    ("invoices", "0009_fix_resend_payments_tenant", "invoicebatch", "eligibility_at_creation"),
    ("invoices", "0011_credit_note_fix", "cancelledinvoice", "document"),
    ("invoices", "0013_push_attempt_action", "pushattempt", "action"),
    ("organisations", "0002_sign_in_email_and_name_skeleton", "organisation", "name_skeleton"),
    ("organisations", "0003_people_invitations_audit", "membership", "failure_emails"),
    ("organisations", "0004_time_zone_and_locale", "organisation", "locale"),
    ("organisations", "0004_time_zone_and_locale", "organisation", "locale_source"),
    ("organisations", "0004_time_zone_and_locale", "organisation", "time_zone"),
}


def _local_apps() -> set[str]:
    return {
        config.label
        for config in apps.get_app_configs()
        if Path(config.path).is_relative_to(ROOT) and ".venv" not in Path(config.path).parts
    }


def _database_operations(operations: list[Operation]) -> Iterator[Operation]:
    for operation in operations:
        if isinstance(operation, migrations.SeparateDatabaseAndState):
            yield from _database_operations(operation.database_operations)
        else:
            yield operation


def _not_null_columns_without_db_default() -> set[tuple[str, str, str, str]]:
    found = set()
    local = _local_apps()
    for (app, name), migration in MigrationLoader(None, ignore_no_migrations=True).disk_migrations.items():
        if app not in local:
            continue
        # A table the same migration creates has no rows and no older code writing to it.
        created = {op.name_lower for op in migration.operations if isinstance(op, migrations.CreateModel)}
        for op in _database_operations(migration.operations):
            if not isinstance(op, migrations.AddField) or op.model_name_lower in created:
                continue
            field = op.field
            if field.null or field.many_to_many or field.primary_key or field.has_db_default():
                continue
            found.add((app, name, op.model_name_lower, op.name_lower))
    return found


def test_the_guard_reads_every_local_app_with_migrations():
    assert {"integrations", "invoices", "organisations"} <= _local_apps()


def test_no_migration_adds_a_not_null_column_when_it_has_no_db_default():
    found = _not_null_columns_without_db_default()
    assert found - NOT_NULL_WITHOUT_DB_DEFAULT == set(), "give these fields a db_default"
    assert NOT_NULL_WITHOUT_DB_DEFAULT - found == set(), "the allowlist names an AddField that is gone or now fine"
