"""Seed a large data set into PostgreSQL quickly, for scale tests and bench/portal_latency.py.

Defaults: 1,000 organisations, 20,000 batches and 1,000,000 invoices (one line each), written with COPY.
Every organisation gets an admin and an accountant (scale-admin-N@scale.test / scale-accountant-N@scale.test,
password `demo`). Run it on an empty or demo database; it adds, it never deletes.
"""

import datetime
import io
import json
import random
import time
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, models, transaction
from django.utils import timezone

from invoices.models import Customer, Invoice, InvoiceBatch, InvoiceLine
from organisations.models import Membership, Organisation

STATES = [(Invoice.SyncState.SYNCED, 80), (Invoice.SyncState.WARNING, 4), (Invoice.SyncState.FAILED, 3),
          (Invoice.SyncState.PENDING, 3), (Invoice.SyncState.NOT_SYNCED, 10)]


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


class Command(BaseCommand):
    help = "Seed many organisations, batches and invoices into PostgreSQL with COPY (for scale tests)."

    def add_arguments(self, parser):
        parser.add_argument("--organisations", type=int, default=1000)
        parser.add_argument("--batches", type=int, default=20_000)
        parser.add_argument("--invoices", type=int, default=1_000_000)
        parser.add_argument("--customers-per-org", type=int, default=20)
        parser.add_argument("--seed", type=int, default=7)

    def handle(self, *args, **opts) -> None:
        if connection.vendor != "postgresql":
            raise CommandError("seed_scale needs PostgreSQL (set DATABASE_URL).")
        n_orgs, n_batches, n_invoices = opts["organisations"], opts["batches"], opts["invoices"]
        if n_batches < n_orgs or n_invoices < n_batches:
            raise CommandError("Need at least one batch per organisation and one invoice per batch.")
        rng = random.Random(opts["seed"])
        started = time.monotonic()
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
                    users.add(id=user_id, username=email, email=email, password=password, is_active=True,
                              is_staff=False, is_superuser=False, first_name="", last_name="",
                              date_joined=timezone.now())
                    mems.add(id=mem_id, user_id=user_id, organisation_id=oid, role=role)
                    if role == "admin":
                        org_admin[oid] = user_id
                    user_id += 1
                    mem_id += 1
                org_customers[oid] = list(range(cust_id, cust_id + opts["customers_per_org"]))
                for c in range(opts["customers_per_org"]):
                    custs.add(id=cust_id, organisation_id=oid, name=f"Customer {c:03d}", email=f"c{c}@example.test")
                    cust_id += 1
            for writer in (orgs, users, mems, custs):
                writer.flush(cursor)
            self.stdout.write(f"organisations, users, customers: {time.monotonic() - started:.1f}s")

            per_batch, extra = divmod(n_invoices, n_batches)
            numbers = dict.fromkeys(org_ids, 0)
            for b in range(n_batches):
                oid = org_ids[b % n_orgs]
                eligible = rng.random() > 0.1
                batches.add(id=batch_id, organisation_id=oid, name=f"Batch {b:06d}", source="csv",
                            eligibility="eligible" if eligible else "before_connection",
                            created_by_id=org_admin[oid], created_at=timezone.now() - datetime.timedelta(minutes=b))
                for _ in range(per_batch + (1 if b < extra else 0)):
                    numbers[oid] += 1
                    amount = Decimal(rng.randint(5_000, 500_000)) / 100
                    state = rng.choices(states, weights)[0] if eligible else Invoice.SyncState.NOT_SYNCED
                    issue = today - datetime.timedelta(days=rng.randint(0, 365))
                    invoices.add(id=inv_id, organisation_id=oid, batch_id=batch_id,
                                 customer_id=rng.choice(org_customers[oid]), number=f"SC-{numbers[oid]:07d}",
                                 reference="", currency="AUD", issue_date=issue,
                                 due_date=issue + datetime.timedelta(days=14), line_amount_types="Exclusive",
                                 status="AUTHORISED", sync_state=state, subtotal=amount, total=amount,
                                 amount_due=amount,
                                 sync_errors=[{"Message": "Account code '999' is not a valid code."}]
                                 if state == Invoice.SyncState.FAILED else [])
                    lines.add(id=line_id, invoice_id=inv_id, position=1, description="Services", quantity=1,
                              unit_amount=amount, account_code="", tax_type="")
                    inv_id += 1
                    line_id += 1
                batch_id += 1
                if invoices.count >= 100_000:
                    batches.flush(cursor)
                    invoices.flush(cursor)
                    lines.flush(cursor)
                    self.stdout.write(f"  {b + 1} batches written "
                                      f"({time.monotonic() - started:.0f}s)")
            for writer in (batches, invoices, lines):
                writer.flush(cursor)
            for model in (Organisation, user_model, Membership, Customer, InvoiceBatch, Invoice, InvoiceLine):
                table = model._meta.db_table
                cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))")  # noqa: S608 - table names from model meta
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        self.stdout.write(self.style.SUCCESS(
            f"Seeded {n_orgs} organisations, {n_batches} batches, {n_invoices} invoices "
            f"in {time.monotonic() - started:.0f}s."))
