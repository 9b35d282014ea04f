"""The Xero side of organisations that have none yet: a connection each (mostly connected, some needing a reconnect
or disconnected in Xero; tokens are encrypted placeholders), its mapping and reconciliation state, an audit trail,
a webhook inbox spread over the last two days, invoices created directly in Xero, the last day's usage and the push
history, Xero ids on the invoices already in Xero, and the support console's people and requests."""

import datetime
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection, transaction
from django.utils import timezone

from integrations.fields import encrypt
from integrations.models import IntegrationAuditEvent, ReconciliationState, WebhookEvent, XeroConnection
from invoices.created_in_xero.models import XeroCreatedInvoice
from invoices.models import Invoice, XeroMapping
from invoices.seeding.copy_writer import CopyWriter, first_free_id, seeded_uuid, sequences_reset
from invoices.seeding.support import support_seed
from invoices.seeding.usage import push_history_seed, usage_seed
from organisations.models import Membership, Organisation

AUDIT_ACTIONS = [
    "connect_started",
    "connected",
    "token_refreshed",
    "token_refreshed",
    "keepalive",
    "xero_reconcile_requested",
    "connection_verified",
]

# Written with COPY here, so their ids are taken ahead and their sequences set after.
XERO_SIDE_MODELS = (
    XeroConnection,
    XeroMapping,
    ReconciliationState,
    IntegrationAuditEvent,
    WebhookEvent,
    XeroCreatedInvoice,
)


@dataclass(frozen=True)
class XeroSideSizes:
    audit_per_org: int
    webhooks_per_org: int
    created_in_xero_per_org: int
    usage_minutes_per_org: int


def xero_side_seed(
    *, sizes: XeroSideSizes, rng: random.Random, started: float, progress: Callable[[str], None]
) -> None:
    """Connections, mappings, reconciliation, audit trail, webhook inbox, invoices created in Xero, support."""
    now = timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit TO OFF")
        orgs = list(Organisation.objects.filter(xero_connection__isnull=True).order_by("pk").values_list("pk", "name"))
        admins = dict(Membership.objects.filter(role="admin").values_list("organisation_id", "user_id"))
        # The same placeholder ciphertexts for every row: nothing ever sends them (no real Xero behind them).
        access, refresh = encrypt("scale-placeholder-access-token"), encrypt("scale-placeholder-refresh-token")
        conns, maps, recs = CopyWriter(XeroConnection), CopyWriter(XeroMapping), CopyWriter(ReconciliationState)
        audit, hooks, created = (
            CopyWriter(IntegrationAuditEvent),
            CopyWriter(WebhookEvent),
            CopyWriter(XeroCreatedInvoice),
        )
        ids = {model: first_free_id(model) for model in XERO_SIDE_MODELS}

        def next_id(model) -> int:
            ids[model] += 1
            return ids[model] - 1

        for position, (oid, name) in enumerate(orgs):
            roll = rng.random()
            status = "active" if roll < 0.85 else ("needs_reconnect" if roll < 0.95 else "revoked_in_xero")
            tenant = seeded_uuid(rng)
            admin = admins.get(oid)
            connected = now - datetime.timedelta(days=30)
            conns.add(
                id=next_id(XeroConnection),
                organisation_id=oid,
                status=status,
                tenant_id=tenant,
                tenant_name=f"{name} (Xero)",
                tenant_type="ORGANISATION",
                tenant_short_code=f"!sc{position:04d}",
                base_currency="AUD",
                connection_id=seeded_uuid(rng),
                auth_event_id=seeded_uuid(rng),
                xero_user_id=seeded_uuid(rng),
                scopes="offline_access accounting.invoices accounting.contacts accounting.settings",
                access_token=access,
                refresh_token=refresh if status != "revoked_in_xero" else "",
                access_token_expires_at=now + datetime.timedelta(days=365),
                refresh_token_issued_at=now,
                last_refreshed_at=now,
                connected_at=connected,
                connected_by_id=admin,
                status_changed_at=connected,
                last_synced_at=now,
                needs_reconnect_reason="Xero refused the refresh token (invalid_grant)."
                if status == "needs_reconnect"
                else "",
                last_error="Xero answered 503" if rng.random() < 0.02 else "",
            )
            maps.add(
                id=next_id(XeroMapping),
                organisation_id=oid,
                revenue_account_code="200",
                revenue_account_name="Sales",
                tax_type="OUTPUT",
                tax_name="GST on Income",
                updated_by_id=admin,
            )
            drift = rng.randint(0, 3)
            recs.add(
                id=next_id(ReconciliationState),
                organisation_id=oid,
                last_success_at=now,
                last_started_at=now,
                last_finished_at=now,
                passes=rng.randint(100, 600),
                checked_last=50,
                drift_last=drift,
                drift_total=drift + rng.randint(0, 20),
                drift_recent=[
                    {
                        "category": "INVOICE",
                        "resource_id": seeded_uuid(rng),
                        "label": "SC-0000001",
                        "summary": "Paid in Xero",
                        "outcome": "applied",
                        "at": now.isoformat(),
                    }
                ]
                if drift
                else [],
            )
            for a in range(sizes.audit_per_org):
                audit.add(
                    id=next_id(IntegrationAuditEvent),
                    organisation_id=oid,
                    actor_id=admin if a % 3 else None,
                    actor_kind="user" if a % 3 else "system",
                    action=AUDIT_ACTIONS[a % len(AUDIT_ACTIONS)],
                    outcome="success" if rng.random() > 0.05 else "failure",
                    detail={"attempt": a},
                    created_at=now - datetime.timedelta(hours=a * 30 + rng.random()),
                )
            for w in range(sizes.webhooks_per_org):
                received = now - datetime.timedelta(seconds=rng.uniform(0, 2 * 86400))
                roll = rng.random()
                state = (
                    "processed"
                    if roll < 0.95
                    else ("ignored" if roll < 0.98 else ("failed" if roll < 0.99 else "received"))
                )
                hooks.add(
                    id=next_id(WebhookEvent),
                    organisation_id=oid,
                    tenant_id=tenant,
                    tenant_type="ORGANISATION",
                    category="INVOICE" if w % 5 else "CONTACT",
                    event_type="UPDATE" if w % 3 else "CREATE",
                    resource_id=seeded_uuid(rng),
                    event_date=received - datetime.timedelta(seconds=2),
                    sequence=w,
                    state=state,
                    outcome={"processed": "applied", "ignored": "unchanged"}.get(state, ""),
                    attempts=0 if state == "received" else 1,
                    last_error="Xero answered 500" if state == "failed" else "",
                    received_at=received,
                    processed_at=received + datetime.timedelta(seconds=rng.uniform(0.1, 4))
                    if state in ("processed", "ignored")
                    else None,
                )
            for c in range(sizes.created_in_xero_per_org):
                issue = now.date() - datetime.timedelta(days=rng.randint(0, 120))
                amount = Decimal(rng.randint(1_000, 90_000)) / 100
                created.add(
                    id=next_id(XeroCreatedInvoice),
                    organisation_id=oid,
                    xero_invoice_id=seeded_uuid(rng),
                    number=f"XC-{c:05d}",
                    contact_name=f"Walk-in {c:03d}",
                    xero_contact_id=seeded_uuid(rng),
                    status="AUTHORISED" if c % 4 else "PAID",
                    currency="AUD",
                    issue_date=issue,
                    due_date=issue + datetime.timedelta(days=14),
                    total=amount,
                    amount_due=amount if c % 4 else 0,
                    amount_paid=0 if c % 4 else amount,
                    xero_updated_at=now,
                )
            if hooks.count >= 100_000:
                hooks.flush(cursor)
        for writer in (conns, maps, recs, audit, hooks, created):
            writer.flush(cursor)
        sequences_reset(cursor, *XERO_SIDE_MODELS)
        usage_seed(
            cursor, organisation_ids=[oid for oid, _ in orgs], rng=rng, now=now, per_org=sizes.usage_minutes_per_org
        )
        push_history_seed(cursor, organisation_ids=[oid for oid, _ in orgs], rng=rng, now=now)
        progress(f"Xero side of {len(orgs)} organisations: {time.monotonic() - started:.0f}s")
        # Invoices already in Xero carry Xero's id (a run of an older seed left them without).
        cursor.execute(
            f"UPDATE {Invoice._meta.db_table} SET xero_invoice_id = gen_random_uuid()::text, "  # noqa: S608
            "xero_status = 'AUTHORISED' WHERE sync_state IN ('synced', 'warning') "
            "AND xero_invoice_id = ''"
        )
        support_seed(orgs=orgs)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
