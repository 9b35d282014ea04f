"""Portal page latency on a large data set (not a test).

Usage:
  DJANGO_DEBUG=true DATABASE_URL=postgres://postgres@127.0.0.1:5432/coordinoter_scale \
  REDIS_URL=redis://127.0.0.1:6379/0 .venv/bin/python bench/portal_latency.py [--requests 40]

Seed the database first with `manage.py seed_scale` (1,000 organisations, 20,000 batches, 1,000,000
invoices). Requests go through Django's full stack in process (middleware, sessions, templates, the ORM on
PostgreSQL) with the test client, so the figures are server time without network. Prints one JSON object
as its last line: per page p50_ms, p95_ms and queries, plus the target (p95 < 150 ms).
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coordinoter.settings")
os.environ.setdefault("DJANGO_DEBUG", "true")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from invoices.models import InvoiceBatch  # noqa: E402
from organisations.models import Membership  # noqa: E402

TARGET_P95_MS = 150


def measure(client: Client, url: str, n: int) -> dict:
    timings, queries = [], 0
    client.get(url)  # warm caches and connections
    for _ in range(n):
        with CaptureQueriesContext(connection) as ctx:
            started = time.perf_counter()
            response = client.get(url)
            timings.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"{url} answered {response.status_code}")
        queries = len(ctx.captured_queries)
    timings.sort()
    return {"url": url, "p50_ms": round(statistics.median(timings), 1),
            "p95_ms": round(timings[max(0, int(len(timings) * 0.95) - 1)], 1), "queries": queries}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=40)
    args = parser.parse_args()
    settings.ALLOWED_HOSTS = ["*"]
    settings.DEBUG = False

    admin_membership = (Membership.objects.filter(role="admin").select_related("user", "organisation")
                        .order_by("-organisation_id").first())
    if admin_membership is None:
        raise SystemExit("No data: run manage.py seed_scale first.")
    organisation = admin_membership.organisation
    batch = InvoiceBatch.objects.filter(organisation=organisation).order_by("-pk").first()
    user = admin_membership.user

    customer = Client()
    customer.force_login(user)
    pages = {
        "dashboard": "/portal/",
        "batch_list": "/batches/",
        "batch_list_failed": "/batches/?state=failed",
        "batch_list_search": "/batches/?q=SC-00001",
        "batch_list_page_10": "/batches/?page=2",
        "batch_detail": f"/batches/{batch.pk}/",
        "manage_integrations": "/integrations/",
        "settings": "/settings/",
    }
    results = {name: measure(customer, url, args.requests) for name, url in pages.items()}

    support_user = get_user_model().objects.filter(is_staff=True, groups__name="Support").first()
    if support_user is not None:
        staff = Client()
        staff.force_login(support_user)
        for name, url in {"support_console": "/support/", "support_console_search": "/support/?q=Org%2000999",
                          "support_console_page_20": "/support/?page=20"}.items():
            results[name] = measure(staff, url, args.requests)

    worst = max(r["p95_ms"] for r in results.values())
    print(json.dumps({"organisations_seeded": True, "requests_per_page": args.requests, "pages": results,
                      "worst_p95_ms": worst, "target_p95_ms": TARGET_P95_MS, "meets_target": worst < TARGET_P95_MS}))


if __name__ == "__main__":
    main()
