"""Seed a large data set into PostgreSQL quickly, for scale tests and bench/portal_latency.py.

Defaults: 1,000 organisations, 20,000 batches and 1,000,000 invoices (one line each), written with COPY.
Every organisation gets an admin and an accountant (scale-admin-N@scale.test / scale-accountant-N@scale.test,
password `demo`). Run it on an empty or demo database; it adds, it never deletes.

The Xero side comes with it (or alone, with --xero-only, for organisations that have none yet): a connection per
organisation (mostly connected, some needing a reconnect or disconnected in Xero; tokens are encrypted
placeholders), its mapping and reconciliation state, an audit trail, a webhook inbox spread over the last two days,
invoices created directly in Xero, Xero ids on the invoices already in Xero, support staff
(support@scale.test, password `demo`) and open support requests.
"""

import datetime
import io
import json
import random
import time
import uuid
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, models, transaction
from django.utils import timezone

from integrations.fields import encrypt
from integrations.models import IntegrationAuditEvent, ReconciliationState, WebhookEvent, XeroConnection
from integrations.usage.models import XeroApiUsage
from invoices.created_in_xero.models import XeroCreatedInvoice
from invoices.models import (
    Customer,
    Invoice,
    InvoiceBatch,
    InvoiceLine,
    PushAttempt,
    PushChunk,
    XeroMapping,
    customer_name_key,
)
from invoices.sync_states import sync_state_seed
from organisations.models import Membership, Organisation, SupportRequest
from organisations.roles import SUPPORT_GROUP

STATES = [
    (Invoice.SyncState.SYNCED, 80),
    (Invoice.SyncState.WARNING, 4),
    (Invoice.SyncState.FAILED, 3),
    (Invoice.SyncState.PENDING, 3),
    (Invoice.SyncState.NOT_SYNCED, 10),
]


def _cell(value) -> str:
    if value is None:
        return r"\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, dict | list):
        value = json.dumps(value)
    elif isinstance(value, datetime.datetime | datetime.date):
        value = value.isoformat()
    return str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


class CopyWriter:
    """Rows for one model: fills every concrete column from the given values, the field's default, or now."""

    def __init__(self, model: type[models.Model]):
        self.model = model
        self.fields = [f for f in model._meta.concrete_fields]
        self.buffer = io.StringIO()
        self.count = 0
        self.now = timezone.now()

    def add(self, **values) -> None:
        cells = []
        for field in self.fields:
            if field.attname in values:
                value = values[field.attname]
            elif getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
                value = self.now
            else:
                value = field.get_default()  # "" for blank text columns, None for nullable ones
            cells.append(_cell(value))
        self.buffer.write("\t".join(cells) + "\n")
        self.count += 1

    def flush(self, cursor) -> None:
        if not self.count:
            return
        self.buffer.seek(0)
        columns = ", ".join(connection.ops.quote_name(f.column) for f in self.fields)
        cursor.copy_expert(f"COPY {self.model._meta.db_table} ({columns}) FROM STDIN", self.buffer)
        self.buffer = io.StringIO()
        self.count = 0


def _next_id(model: type[models.Model]) -> int:
    return (model.objects.aggregate(m=models.Max("pk"))["m"] or 0) + 1


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _sequences_reset(cursor, *models_: type[models.Model]) -> None:
    for model in models_:
        table = model._meta.db_table
        cursor.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608 - model meta
            f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"
        )


AUDIT_ACTIONS = [
    "connect_started",
    "connected",
    "token_refreshed",
    "token_refreshed",
    "keepalive",
    "xero_reconcile_requested",
    "connection_verified",
]


class Command(BaseCommand):
    help = "Seed many organisations, batches and invoices into PostgreSQL with COPY (for scale tests)."

    def add_arguments(self, parser):
        parser.add_argument("--organisations", type=int, default=1000)
        parser.add_argument("--batches", type=int, default=20_000)
        parser.add_argument("--invoices", type=int, default=1_000_000)
        parser.add_argument("--customers-per-org", type=int, default=20)
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument(
            "--xero-only",
            action="store_true",
            help="Only add the Xero side to organisations that have no Xero connection yet.",
        )
        parser.add_argument("--audit-per-org", type=int, default=20)
        parser.add_argument("--webhooks-per-org", type=int, default=200)
        parser.add_argument("--created-in-xero-per-org", type=int, default=20)
        parser.add_argument(
            "--usage-minutes-per-org",
            type=int,
            default=150,
            help="Minutes with Xero calls in the last day per organisation (every 100th organisation "
            "is busy: calls in every minute).",
        )
        parser.add_argument(
            "--usage-only",
            action="store_true",
            help="Only add the last day's Xero usage and the push history (chunks and attempts) to "
            "connected organisations that have none.",
        )

    def handle(self, *args, **opts) -> None:
        if connection.vendor != "postgresql":
            raise CommandError("seed_scale needs PostgreSQL (set DATABASE_URL).")
        n_orgs, n_batches, n_invoices = opts["organisations"], opts["batches"], opts["invoices"]
        if n_batches < n_orgs or n_invoices < n_batches:
            raise CommandError("Need at least one batch per organisation and one invoice per batch.")
        rng = random.Random(opts["seed"])
        started = time.monotonic()
        if opts["xero_only"]:
            self._xero_side(opts, rng, started)
            return
        if opts["usage_only"]:
            with transaction.atomic(), connection.cursor() as cursor:
                orgs = list(
                    XeroConnection.objects.exclude(organisation__in=XeroApiUsage.objects.values("organisation"))
                    .order_by("organisation")
                    .values_list("organisation", flat=True)
                )
                rows = self._usage(cursor, orgs, rng, timezone.now(), opts["usage_minutes_per_org"])
                chunks = self._push_history(cursor, orgs, rng, timezone.now())
            self.stdout.write(
                self.style.SUCCESS(
                    f"{rows} usage rows and {chunks} push chunks for {len(orgs)} "
                    f"organisations in {time.monotonic() - started:.0f}s."
                )
            )
            return
        password = make_password("demo")
        user_model = get_user_model()
        weights = [w for _, w in STATES]
        states = [s for s, _ in STATES]
        today = timezone.localdate()

        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
            org_id, user_id, mem_id = _next_id(Organisation), _next_id(user_model), _next_id(Membership)
            cust_id, batch_id = _next_id(Customer), _next_id(InvoiceBatch)
            inv_id, line_id = _next_id(Invoice), _next_id(InvoiceLine)
            run = org_id  # keeps names unique when the command runs twice
            orgs, users, mems = CopyWriter(Organisation), CopyWriter(user_model), CopyWriter(Membership)
            custs, batches = CopyWriter(Customer), CopyWriter(InvoiceBatch)
            invoices, lines = CopyWriter(Invoice), CopyWriter(InvoiceLine)
            org_ids, org_customers, org_admin = [], {}, {}
            for i in range(n_orgs):
                oid = org_id + i
                orgs.add(id=oid, name=f"Scale Org {run}-{i:05d}")
                org_ids.append(oid)
                for role in ("admin", "accountant"):
                    email = f"scale-{role}-{run}-{i}@scale.test"
                    users.add(
                        id=user_id,
                        username=email,
                        email=email,
                        password=password,
                        is_active=True,
                        is_staff=False,
                        is_superuser=False,
                        first_name="",
                        last_name="",
                        date_joined=timezone.now(),
                    )
                    mems.add(id=mem_id, user_id=user_id, organisation_id=oid, role=role)
                    if role == "admin":
                        org_admin[oid] = user_id
                    user_id += 1
                    mem_id += 1
                org_customers[oid] = list(range(cust_id, cust_id + opts["customers_per_org"]))
                for c in range(opts["customers_per_org"]):
                    name = f"Customer {c:03d}"
                    custs.add(
                        id=cust_id,
                        organisation_id=oid,
                        name=name,
                        name_key=customer_name_key(name),
                        email=f"c{c}@example.test",
                    )
                    cust_id += 1
            for writer in (orgs, users, mems, custs):
                writer.flush(cursor)
            self.stdout.write(f"organisations, users, customers: {time.monotonic() - started:.1f}s")

            per_batch, extra = divmod(n_invoices, n_batches)
            numbers = dict.fromkeys(org_ids, 0)
            for b in range(n_batches):
                oid = org_ids[b % n_orgs]
                eligible = rng.random() > 0.1
                batches.add(
                    id=batch_id,
                    organisation_id=oid,
                    name=f"Batch {b:06d}",
                    source="csv",
                    eligibility="eligible" if eligible else "before_connection",
                    created_by_id=org_admin[oid],
                    created_at=timezone.now() - datetime.timedelta(minutes=b),
                )
                for _ in range(per_batch + (1 if b < extra else 0)):
                    numbers[oid] += 1
                    amount = Decimal(rng.randint(5_000, 500_000)) / 100
                    state = rng.choices(states, weights)[0] if eligible else Invoice.SyncState.NOT_SYNCED
                    in_xero = state in (Invoice.SyncState.SYNCED, Invoice.SyncState.WARNING)
                    issue = today - datetime.timedelta(days=rng.randint(0, 365))
                    invoices.add(
                        id=inv_id,
                        organisation_id=oid,
                        batch_id=batch_id,
                        customer_id=rng.choice(org_customers[oid]),
                        number=f"SC-{numbers[oid]:07d}",
                        reference="",
                        currency="AUD",
                        issue_date=issue,
                        due_date=issue + datetime.timedelta(days=14),
                        line_amount_types="Exclusive",
                        status="AUTHORISED",
                        sync_state=sync_state_seed(state),
                        subtotal=amount,
                        total=amount,
                        amount_due=amount,
                        xero_invoice_id=_uuid(rng) if in_xero else "",
                        xero_status="AUTHORISED" if in_xero else "",
                        sync_errors=[{"Message": "Account code '999' is not a valid code."}]
                        if state == Invoice.SyncState.FAILED
                        else [],
                    )
                    lines.add(
                        id=line_id,
                        invoice_id=inv_id,
                        position=1,
                        description="Services",
                        quantity=1,
                        unit_amount=amount,
                        account_code="",
                        tax_type="",
                    )
                    inv_id += 1
                    line_id += 1
                batch_id += 1
                if invoices.count >= 100_000:
                    batches.flush(cursor)
                    invoices.flush(cursor)
                    lines.flush(cursor)
                    self.stdout.write(f"  {b + 1} batches written ({time.monotonic() - started:.0f}s)")
            for writer in (batches, invoices, lines):
                writer.flush(cursor)
            _sequences_reset(cursor, Organisation, user_model, Membership, Customer, InvoiceBatch, Invoice, InvoiceLine)
        self.stdout.write(
            f"Seeded {n_orgs} organisations, {n_batches} batches, {n_invoices} invoices "
            f"in {time.monotonic() - started:.0f}s."
        )
        self._xero_side(opts, rng, started)

    def _xero_side(self, opts, rng: random.Random, started: float) -> None:
        """Connections, mappings, reconciliation, audit trail, webhook inbox, invoices created in Xero, support."""
        now = timezone.now()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
            orgs = list(
                Organisation.objects.filter(xero_connection__isnull=True).order_by("pk").values_list("pk", "name")
            )
            admins = dict(Membership.objects.filter(role="admin").values_list("organisation_id", "user_id"))
            # The same placeholder ciphertexts for every row: nothing ever sends them (no real Xero behind them).
            access, refresh = encrypt("scale-placeholder-access-token"), encrypt("scale-placeholder-refresh-token")
            conns, maps, recs = CopyWriter(XeroConnection), CopyWriter(XeroMapping), CopyWriter(ReconciliationState)
            audit, hooks, created = (
                CopyWriter(IntegrationAuditEvent),
                CopyWriter(WebhookEvent),
                CopyWriter(XeroCreatedInvoice),
            )
            ids = {
                model: _next_id(model)
                for model in (
                    XeroConnection,
                    XeroMapping,
                    ReconciliationState,
                    IntegrationAuditEvent,
                    WebhookEvent,
                    XeroCreatedInvoice,
                )
            }

            def next_id(model) -> int:
                ids[model] += 1
                return ids[model] - 1

            for position, (oid, name) in enumerate(orgs):
                roll = rng.random()
                status = "active" if roll < 0.85 else ("needs_reconnect" if roll < 0.95 else "revoked_in_xero")
                tenant = _uuid(rng)
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
                    connection_id=_uuid(rng),
                    auth_event_id=_uuid(rng),
                    xero_user_id=_uuid(rng),
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
                            "resource_id": _uuid(rng),
                            "label": "SC-0000001",
                            "summary": "Paid in Xero",
                            "outcome": "applied",
                            "at": now.isoformat(),
                        }
                    ]
                    if drift
                    else [],
                )
                for a in range(opts["audit_per_org"]):
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
                for w in range(opts["webhooks_per_org"]):
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
                        resource_id=_uuid(rng),
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
                for c in range(opts["created_in_xero_per_org"]):
                    issue = now.date() - datetime.timedelta(days=rng.randint(0, 120))
                    amount = Decimal(rng.randint(1_000, 90_000)) / 100
                    created.add(
                        id=next_id(XeroCreatedInvoice),
                        organisation_id=oid,
                        xero_invoice_id=_uuid(rng),
                        number=f"XC-{c:05d}",
                        contact_name=f"Walk-in {c:03d}",
                        xero_contact_id=_uuid(rng),
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
            _sequences_reset(
                cursor,
                XeroConnection,
                XeroMapping,
                ReconciliationState,
                IntegrationAuditEvent,
                WebhookEvent,
                XeroCreatedInvoice,
            )
            self._usage(cursor, [oid for oid, _ in orgs], rng, now, opts["usage_minutes_per_org"])
            self._push_history(cursor, [oid for oid, _ in orgs], rng, now)
            self.stdout.write(f"Xero side of {len(orgs)} organisations: {time.monotonic() - started:.0f}s")
            # Invoices already in Xero carry Xero's id (a run of an older seed left them without).
            cursor.execute(
                f"UPDATE {Invoice._meta.db_table} SET xero_invoice_id = gen_random_uuid()::text, "  # noqa: S608
                "xero_status = 'AUTHORISED' WHERE sync_state IN ('synced', 'warning') "
                "AND xero_invoice_id = ''"
            )
            self._support(orgs, now)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        self.stdout.write(self.style.SUCCESS(f"Done in {time.monotonic() - started:.0f}s."))

    def _usage(
        self, cursor, organisation_ids: list[int], rng: random.Random, now: datetime.datetime, per_org: int
    ) -> int:
        """The last day's Xero calls a minute (the support console's chart, /metrics): a few calls in `per_org`
        random minutes per organisation; every 100th organisation pushes all day near Xero's 60 a minute."""
        usage, next_id, rows = CopyWriter(XeroApiUsage), _next_id(XeroApiUsage), 0
        this_minute = now.replace(second=0, microsecond=0)
        for position, oid in enumerate(organisation_ids):
            busy = position % 100 == 0
            minutes = range(1440) if busy else rng.sample(range(1440), min(per_org, 1440))
            for back in minutes:
                calls = rng.randint(45, 60) if busy else rng.randint(1, 12)
                limited = 1 if busy and rng.random() < 0.01 else 0
                usage.add(
                    id=next_id,
                    organisation_id=oid,
                    minute=this_minute - datetime.timedelta(minutes=back),
                    calls=calls,
                    rate_limited=limited,
                    failed=1 if rng.random() < 0.005 else 0,
                    min_remaining=max(0, 60 - calls),
                    day_remaining=5000 - rng.randint(0, 3000),
                    updated_at=now,
                )
                next_id += 1
                rows += 1
            if usage.count >= 100_000:
                usage.flush(cursor)
        usage.flush(cursor)
        _sequences_reset(cursor, XeroApiUsage)
        return rows

    def _push_history(self, cursor, organisation_ids: list[int], rng: random.Random, now: datetime.datetime) -> int:
        """The push chunks and attempts behind each organisation's invoices in Xero (50 a chunk), over 30 days: what
        the batch page's notice and /metrics read. One attempt each; 2% first met a 503 or a 429 and went again.
        Payloads are left empty (real ones hold the 50 invoices sent)."""
        in_xero = dict(
            Invoice.objects.filter(organisation__in=organisation_ids, sync_state__in=["synced", "warning"])
            .order_by()
            .values("organisation")
            .annotate(n=models.Count("pk"))
            .values_list("organisation", "n")
        )
        tenants = dict(
            XeroConnection.objects.filter(organisation__in=organisation_ids).values_list("organisation", "tenant_id")
        )
        chunks, attempts = CopyWriter(PushChunk), CopyWriter(PushAttempt)
        chunk_id, attempt_id, made = _next_id(PushChunk), _next_id(PushAttempt), 0
        for oid in organisation_ids:
            for _ in range(-(-in_xero.get(oid, 0) // 50)):
                sent = now - datetime.timedelta(seconds=rng.uniform(0, 30 * 86400))
                retried = rng.random() < 0.02
                chunks.add(
                    id=chunk_id,
                    organisation_id=oid,
                    tenant_id=tenants.get(oid, ""),
                    state="done",
                    idempotency_key=_uuid(rng),
                    payload={},
                    first_attempt_at=sent,
                    attempts=2 if retried else 1,
                    created_at=sent,
                    completed_at=sent + datetime.timedelta(seconds=3 if retried else 1.5),
                )
                if retried:
                    attempts.add(
                        id=attempt_id,
                        chunk_id=chunk_id,
                        organisation_id=oid,
                        started_at=sent,
                        duration_ms=rng.randint(200, 900),
                        http_status=503,
                        outcome="server_error",
                    )
                    attempt_id += 1
                attempts.add(
                    id=attempt_id,
                    chunk_id=chunk_id,
                    organisation_id=oid,
                    started_at=sent + datetime.timedelta(seconds=1.5 if retried else 0),
                    duration_ms=rng.randint(900, 2600),
                    http_status=200,
                    outcome="ok",
                )
                chunk_id, attempt_id, made = chunk_id + 1, attempt_id + 1, made + 1
            if attempts.count >= 100_000:
                chunks.flush(cursor)
                attempts.flush(cursor)
        chunks.flush(cursor)
        attempts.flush(cursor)
        _sequences_reset(cursor, PushChunk, PushAttempt)
        return made

    def _support(self, orgs: list[tuple[int, str]], now: datetime.datetime) -> None:
        user_model = get_user_model()
        support, _ = user_model.objects.get_or_create(
            username="support@scale.test",
            defaults={"email": "support@scale.test", "is_staff": True, "password": make_password("demo")},
        )
        support.groups.add(Group.objects.get_or_create(name=SUPPORT_GROUP)[0])
        admins = dict(
            Membership.objects.filter(role="admin", organisation_id__in=[o for o, _ in orgs[:50]]).values_list(
                "organisation_id", "user_id"
            )
        )
        SupportRequest.objects.bulk_create(
            [
                SupportRequest(
                    organisation_id=oid,
                    user_id=admins[oid],
                    subject=f"Invoices from {name} not in Xero",
                    message="Some invoices of our last batch did not arrive in Xero.",
                    page_url="/batches/",
                )
                for oid, name in orgs[:50]
                if oid in admins
            ]
        )
