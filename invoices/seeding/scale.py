"""A whole scale data set: tenants with their batches and invoices in one transaction, then their Xero side."""

import random
import time
from collections.abc import Callable

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import connection, transaction
from django.utils import timezone

from invoices.models import Customer, Invoice, InvoiceBatch, InvoiceLine
from invoices.seeding.batches import invoices_seed
from invoices.seeding.copy_writer import sequences_reset
from invoices.seeding.tenants import tenants_seed
from invoices.seeding.xero import XeroSideSizes, xero_side_seed
from organisations.models import Membership, Organisation


def scale_seed(
    *,
    organisations: int,
    batches: int,
    invoices: int,
    customers_per_org: int,
    xero: XeroSideSizes,
    rng: random.Random,
    started: float,
    progress: Callable[[str], None],
) -> None:
    """Adds, never deletes; `progress` gets a line after each stage, timed from `started`."""
    password = make_password("demo")
    user_model = get_user_model()
    today = timezone.localdate()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit TO OFF")
        tenants = tenants_seed(
            cursor, organisations=organisations, customers_per_org=customers_per_org, password=password
        )
        progress(f"organisations, users, customers: {time.monotonic() - started:.1f}s")
        invoices_seed(
            cursor,
            tenants=tenants,
            batches=batches,
            invoices=invoices,
            rng=rng,
            today=today,
            started=started,
            progress=progress,
        )
        sequences_reset(cursor, Organisation, user_model, Membership, Customer, InvoiceBatch, Invoice, InvoiceLine)
    progress(
        f"Seeded {organisations} organisations, {batches} batches, {invoices} invoices "
        f"in {time.monotonic() - started:.0f}s."
    )
    xero_side_seed(sizes=xero, rng=rng, started=started, progress=progress)
