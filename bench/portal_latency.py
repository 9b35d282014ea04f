"""Portal page latency on a large data set (not a test).

Usage:
  DJANGO_DEBUG=true DATABASE_URL=postgres://postgres@127.0.0.1:5432/coordinoter_scale \
  REDIS_URL=redis://127.0.0.1:6379/0 .venv/bin/python bench/portal_latency.py [--requests 40]

Seed the database first with `manage.py seed_scale` (1,000 organisations, 20,000 batches, 1,000,000
invoices, and the Xero side: connections, 200,000 webhook events, audit trail, invoices created in Xero; an
older seed gets the Xero side with `manage.py seed_scale --xero-only`). Requests go through Django's full stack
in process (middleware, sessions, templates, the ORM on PostgreSQL) with the test client, so the figures are
server time without network. Xero itself is answered by `responses` (the mapping page's accounts and tax rates,
read once and then cached ten minutes, as in production); `xero_calls` counts calls during measurement (0).
Prints one JSON object as its last line: per page p50_ms, p95_ms and queries, plus the target (p95 < 150 ms).
"""

import argparse
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path

import responses

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coordinoter.settings")
os.environ.setdefault("DJANGO_DEBUG", "true")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Count  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from integrations.usage.models import XeroApiUsage  # noqa: E402
from invoices.models import Invoice, InvoiceBatch  # noqa: E402
from organisations.models import Membership  # noqa: E402

TARGET_P95_MS = 150
FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "xero"


def measure(client: Client, url: str, n: int, xero: responses.RequestsMock) -> dict:
    timings, queries = [], 0
    client.get(url)  # warm caches and connections
    calls = len(xero.calls)
    for _ in range(n):
        with CaptureQueriesContext(connection) as ctx:
            started = time.perf_counter()
            response = client.get(url)
            timings.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"{url} answered {response.status_code}")
        queries = len(ctx.captured_queries)
    timings.sort()
    return {
        "url": url,
        "p50_ms": round(statistics.median(timings), 1),
        "p95_ms": round(timings[max(0, int(len(timings) * 0.95) - 1)], 1),
        "queries": queries,
        "xero_calls": len(xero.calls) - calls,
    }


def xero_answers() -> responses.RequestsMock:
    mock = responses.RequestsMock(assert_all_requests_are_fired=False)
    for name in ("Accounts", "TaxRates", "Organisation"):
        fixture = {"Accounts": "accounts.json", "TaxRates": "tax_rates.json", "Organisation": "organisation.json"}
        mock.get(re.compile(rf".*/api\.xro/2\.0/{name}$"), json=json.loads((FIXTURES / fixture[name]).read_text()))
    return mock


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=40)
    args = parser.parse_args()
    settings.ALLOWED_HOSTS = ["*"]
    settings.DEBUG = False
    settings.XERO_RATE_LIMIT_PREFIX = "bench:portal"

    admin_membership = (
        Membership.objects.filter(role="admin", organisation__xero_connection__status="active")
        .select_related("user", "organisation")
        .order_by("-organisation_id")
        .first()
    )
    if admin_membership is None:
        raise SystemExit("No data: run manage.py seed_scale first (or seed_scale --xero-only on an older seed).")
    organisation = admin_membership.organisation
    batch = InvoiceBatch.objects.filter(organisation=organisation, eligibility="eligible").order_by("-pk").first()
    invoice = Invoice.objects.filter(batch=batch, sync_state="synced").order_by("pk").first()
    ids = ",".join(
        str(pk) for pk in Invoice.objects.filter(batch=batch).order_by("number").values_list("pk", flat=True)[:50]
    )
    user = admin_membership.user

    customer = Client()
    customer.force_login(user)
    pages = {
        "dashboard": "/portal/",
        "batch_list": "/batches/",
        "batch_list_failed": "/batches/?state=failed",
        "batch_list_search": "/batches/?q=SC-00001",
        "batch_list_page_2": "/batches/?page=2",
        "batch_detail": f"/batches/{batch.pk}/",
        "batch_detail_failed": f"/batches/{batch.pk}/?state=failed",
        "batch_progress": f"/batches/{batch.pk}/progress/",
        "xero_states_partial": f"/invoices/xero-states/?ids={ids}",
        "batch_new": "/batches/new/",
        "batch_upload": "/batches/upload/",
        "created_in_xero": "/invoices/created-in-xero/",
        "invoice_void_confirm": f"/invoices/{invoice.pk}/xero/void/",
        "invoice_edit": f"/invoices/{invoice.pk}/xero/edit/",
        "manage_integrations": "/integrations/",
        "settings": "/settings/",
        "xero_mapping": "/settings/xero-mapping/",
    }
    with xero_answers() as xero:
        results = {name: measure(customer, url, args.requests, xero) for name, url in pages.items()}

        support_user = get_user_model().objects.filter(is_staff=True, groups__name="Support").first()
        # The organisation whose usage chart has the most to draw (a Xero call in every minute of the day).
        busy = (
            XeroApiUsage.objects.values("organisation")
            .annotate(n=Count("pk"))
            .order_by("-n")
            .values_list("organisation", flat=True)
            .first()
        ) or organisation.pk
        if support_user is not None:
            staff = Client()
            staff.force_login(support_user)
            for name, url in {
                "support_console": "/support/",
                "support_console_search": "/support/?q=00999",
                "support_console_problems": "/support/?state=problems",
                "support_console_page_20": "/support/?page=20",
                "support_organisation": f"/support/organisations/{organisation.pk}/",
                "support_organisation_busy": f"/support/organisations/{busy}/",
                "webhook_inbox": "/support/webhooks/",
                "webhook_inbox_organisation": f"/support/organisations/{organisation.pk}/webhooks/",
            }.items():
                results[name] = measure(staff, url, args.requests, xero)

        # Prometheus' scrape, as production serves it: a bearer token (METRICS_TOKEN).
        settings.METRICS_TOKEN = "bench-metrics-token"
        # Not a page a person waits for (Prometheus' scrape timeout is 10 s by default): reported beside the pages.
        scrape = measure(Client(HTTP_AUTHORIZATION="Bearer bench-metrics-token"), "/metrics", args.requests, xero)
        scrape["bytes"] = len(Client(HTTP_AUTHORIZATION="Bearer bench-metrics-token").get("/metrics").content)

    worst = max(r["p95_ms"] for r in results.values())
    print(
        json.dumps(
            {
                "organisation_id": organisation.pk,
                "requests_per_page": args.requests,
                "pages": results,
                "metrics_scrape": scrape,
                "worst_p95_ms": worst,
                "target_p95_ms": TARGET_P95_MS,
                "meets_target": worst < TARGET_P95_MS,
                "missing_target": sorted(n for n, r in results.items() if r["p95_ms"] >= TARGET_P95_MS),
            }
        )
    )


if __name__ == "__main__":
    main()
