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

import random
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from invoices.seeding.scale import scale_seed
from invoices.seeding.usage import usage_backfill
from invoices.seeding.xero import XeroSideSizes, xero_side_seed


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
        xero = XeroSideSizes(
            audit_per_org=opts["audit_per_org"],
            webhooks_per_org=opts["webhooks_per_org"],
            created_in_xero_per_org=opts["created_in_xero_per_org"],
            usage_minutes_per_org=opts["usage_minutes_per_org"],
        )
        if opts["xero_only"]:
            xero_side_seed(sizes=xero, rng=rng, started=started, progress=self.stdout.write)
        elif opts["usage_only"]:
            done = usage_backfill(rng=rng, per_org=opts["usage_minutes_per_org"])
            self.stdout.write(
                self.style.SUCCESS(
                    f"{done.usage_rows} usage rows and {done.push_chunks} push chunks for {done.organisations} "
                    f"organisations in {time.monotonic() - started:.0f}s."
                )
            )
            return
        else:
            scale_seed(
                organisations=n_orgs,
                batches=n_batches,
                invoices=n_invoices,
                customers_per_org=opts["customers_per_org"],
                xero=xero,
                rng=rng,
                started=started,
                progress=self.stdout.write,
            )
        self.stdout.write(self.style.SUCCESS(f"Done in {time.monotonic() - started:.0f}s."))
