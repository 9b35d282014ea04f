"""GET /metrics: Prometheus text read from the shared stores (values match the rows we create), guarded by a bearer
token in production (404 without METRICS_TOKEN), GET only, and never a secret in the output."""

import datetime as dt
import uuid

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from integrations.models import WebhookEvent, XeroConnection
from integrations.outbound.models import OutboundAttempt, OutboundOperation
from integrations.usage import record as usage_record
from integrations.xero.ratelimit import rate_limiter
from invoices.models import Invoice
from invoices.outbound.chunks import CHUNK_KIND
from tests.factories import make_batch, make_connection, make_organisation

pytestmark = pytest.mark.django_db

TOKEN = "metrics-" + uuid.uuid4().hex


@pytest.fixture(autouse=True)
def metrics_token(settings):
    # Tests run with DEBUG off (Django's test runner turns it off): production rules, so a token is needed.
    settings.METRICS_TOKEN = TOKEN


def scrape(**headers) -> dict[tuple[str, tuple], float]:
    response = Client().get("/metrics", **{"HTTP_AUTHORIZATION": f"Bearer {TOKEN}", **headers})
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels) -> float | None:
    return samples.get((name, tuple(sorted((k, str(v)) for k, v in labels.items()))))


@pytest.fixture
def world(db):
    now = timezone.now()
    org = make_organisation(name="Metrics Ltd")
    other = make_organisation(name="Quiet Ltd")
    connection = make_connection(organisation=org, tenant_id=str(uuid.uuid4()), connection_id=str(uuid.uuid4()))
    make_connection(
        organisation=other,
        tenant_id=str(uuid.uuid4()),
        connection_id=str(uuid.uuid4()),
        status=XeroConnection.Status.NEEDS_RECONNECT,
    )
    # Pushes: two chunks done, one open; three attempts of 0.4 s, 1.5 s and 12 s.
    chunks = [
        OutboundOperation.objects.create(
            organisation=org,
            tenant_id=connection.tenant_id,
            kind=CHUNK_KIND,
            state=state,
            idempotency_key=str(uuid.uuid4()),
        )
        for state in ("done", "done", "sending", "needs_attention")
    ]
    for ms, outcome in ((400, "confirmed"), (1500, "confirmed"), (12000, "retry")):
        OutboundAttempt.objects.create(
            operation=chunks[0],
            action=OutboundAttempt.Action.SEND,
            started_at=now,
            duration_ms=ms,
            http_status=200 if outcome == "confirmed" else 429,
            outcome=outcome,
        )
    make_batch(organisation=org, invoices=2, sync_state=Invoice.SyncState.PENDING)
    make_batch(organisation=org, invoices=1, sync_state=Invoice.SyncState.FAILED)
    # Xero usage: last minute 7 calls (one 429), earlier 3 calls, a refresh failure, a call 25 hours ago.
    last_minute = now - dt.timedelta(minutes=1)
    for status in (200,) * 6 + (429,):
        usage_record.xero_call_recorded(
            organisation_id=org.pk, status=status, min_remaining=40, day_remaining=4321, at=last_minute
        )
    for status in (200, 503, None):
        usage_record.xero_call_recorded(organisation_id=org.pk, status=status, at=now - dt.timedelta(hours=2))
    usage_record.xero_refresh_failure_recorded(organisation_id=org.pk, at=now - dt.timedelta(hours=3))
    usage_record.xero_call_recorded(organisation_id=org.pk, status=200, at=now - dt.timedelta(hours=25))
    # Webhooks: two waiting (the oldest 10 minutes), four processed with lags 1, 2, 3 and 40 s.
    for minutes in (10, 2):
        WebhookEvent.objects.create(
            organisation=org,
            tenant_id=connection.tenant_id,
            category="INVOICE",
            event_type="UPDATE",
            resource_id=str(uuid.uuid4()),
            event_date=now,
            received_at=now - dt.timedelta(minutes=minutes),
        )
    for lag in (1, 2, 3, 40):
        received = now - dt.timedelta(minutes=20)
        WebhookEvent.objects.create(
            organisation=org,
            tenant_id=connection.tenant_id,
            category="INVOICE",
            event_type="UPDATE",
            resource_id=str(uuid.uuid4()),
            event_date=now,
            state="processed",
            received_at=received,
            processed_at=received + dt.timedelta(seconds=lag),
        )
    return {"org": org, "other": other, "connection": connection}


def test_metrics_match_the_stored_data(world):
    org, other = world["org"], world["other"]
    s = scrape()

    assert value(s, "coordinoter_push_attempts_total", organisation_id=org.pk, outcome="confirmed") == 2
    assert value(s, "coordinoter_push_attempts_total", organisation_id=org.pk, outcome="retry") == 1
    assert value(s, "coordinoter_push_chunk_duration_seconds_bucket", le="0.5") == 1
    assert value(s, "coordinoter_push_chunk_duration_seconds_bucket", le="2.0") == 2
    assert value(s, "coordinoter_push_chunk_duration_seconds_bucket", le="10.0") == 2
    assert value(s, "coordinoter_push_chunk_duration_seconds_bucket", le="+Inf") == 3
    assert value(s, "coordinoter_push_chunk_duration_seconds_count") == 3
    assert value(s, "coordinoter_push_chunk_duration_seconds_sum") == pytest.approx(13.9)
    assert value(s, "coordinoter_push_chunks_finished_total", organisation_id=org.pk, state="done") == 2
    assert value(s, "coordinoter_push_chunks_open", organisation_id=org.pk, state="sending") == 1
    # Not finished: support may retry it (a counter must never go down).
    assert value(s, "coordinoter_push_chunks_open", organisation_id=org.pk, state="needs_attention") == 1
    assert value(s, "coordinoter_push_chunks_finished_total", organisation_id=org.pk, state="needs_attention") is None
    assert value(s, "coordinoter_invoices_unsynced", organisation_id=org.pk, sync_state="pending") == 2
    assert value(s, "coordinoter_invoices_unsynced", organisation_id=org.pk, sync_state="failed") == 1

    assert value(s, "coordinoter_xero_calls_24h", organisation_id=org.pk) == 10  # not the one 25 hours ago
    assert value(s, "coordinoter_xero_calls_last_minute", organisation_id=org.pk) == 7
    assert value(s, "coordinoter_xero_rate_limited_24h", organisation_id=org.pk) == 1
    assert value(s, "coordinoter_xero_failed_24h", organisation_id=org.pk) == 2
    assert value(s, "coordinoter_xero_token_refresh_failures_24h", organisation_id=org.pk) == 1
    assert value(s, "coordinoter_xero_minute_remaining", organisation_id=org.pk) == 40
    assert value(s, "coordinoter_xero_day_remaining", organisation_id=org.pk) == 4321
    assert value(s, "coordinoter_xero_calls_24h", organisation_id=other.pk) is None

    tenant = world["connection"].tenant_id
    assert value(s, "coordinoter_xero_connection_info", organisation_id=org.pk, tenant_id=tenant, status="active") == 1
    assert (
        value(
            s,
            "coordinoter_xero_connection_info",
            organisation_id=other.pk,
            tenant_id=XeroConnection.objects.get(organisation=other).tenant_id,
            status="needs_reconnect",
        )
        == 1
    )

    assert value(s, "coordinoter_webhook_events_waiting", organisation_id=org.pk) == 2
    assert value(s, "coordinoter_webhook_oldest_waiting_seconds", organisation_id=org.pk) == pytest.approx(600, abs=30)
    assert value(s, "coordinoter_webhook_events_1h", organisation_id=org.pk, state="processed") == 4
    assert value(s, "coordinoter_webhook_events_1h", organisation_id=org.pk, state="received") == 2
    p95 = value(s, "coordinoter_webhook_lag_seconds", organisation_id=org.pk, quantile="0.95")
    p50 = value(s, "coordinoter_webhook_lag_seconds", organisation_id=org.pk, quantile="0.5")
    assert 3 < p95 <= 40 and 2 <= p50 <= 3


def test_live_rate_limiter_figures_come_from_redis(world):
    org, tenant = world["org"], world["connection"].tenant_id
    limiter = rate_limiter()
    for _ in range(3):
        limiter.acquire(tenant_id=tenant)  # three calls in flight, counted in the minute and the day
    s = scrape()
    assert value(s, "coordinoter_xero_ratelimit_in_flight", organisation_id=org.pk) == 3
    assert value(s, "coordinoter_xero_ratelimit_minute_used", organisation_id=org.pk) == 3
    assert value(s, "coordinoter_xero_ratelimit_day_used", organisation_id=org.pk) == 3
    assert value(s, "coordinoter_xero_ratelimit_blocked_seconds", organisation_id=org.pk) == 0
    # Only active connections: the needs-reconnect one has no live series.
    assert value(s, "coordinoter_xero_ratelimit_in_flight", organisation_id=world["other"].pk) is None


def test_metrics_with_redis_down_still_serve_the_database_figures(world, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    rate_limiter.cache_clear()
    s = scrape()
    assert value(s, "coordinoter_xero_calls_24h", organisation_id=world["org"].pk) == 10
    assert value(s, "coordinoter_xero_ratelimit_in_flight", organisation_id=world["org"].pk) is None


def test_development_metrics_are_open(world, settings):
    settings.DEBUG = True
    settings.METRICS_TOKEN = ""
    response = Client().get("/metrics")
    assert response.status_code == 200 and b"coordinoter_xero_calls_24h" in response.content


def test_no_token_material_in_the_output(world):
    connection = XeroConnection.objects.get(pk=world["connection"].pk)
    body = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()
    secrets = [
        connection.access_token,
        connection.refresh_token,
        *connection.access_token.split("."),
        connection.refresh_token[3:],
    ]
    assert all(secret and secret not in body for secret in secrets)
    for marker in (TOKEN, "Bearer", "eyJ", "rt-", "refresh_token", "access_token", "Metrics Ltd", "Maple"):
        assert marker not in body


def test_production_needs_the_bearer_token(world, settings):
    assert settings.DEBUG is False
    assert Client().get("/metrics").status_code == 401
    assert Client().get("/metrics").headers["WWW-Authenticate"].startswith("Bearer")
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert Client().get("/metrics", HTTP_AUTHORIZATION=f"Basic {TOKEN}").status_code == 401
    s = scrape(HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert value(s, "coordinoter_xero_calls_24h", organisation_id=world["org"].pk) == 10
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert TOKEN not in response.content.decode()
    assert "no-cache" in response["Cache-Control"] and not response.cookies


def test_production_without_a_token_has_no_metrics(db, settings):
    settings.METRICS_TOKEN = ""
    assert Client().get("/metrics").status_code == 404
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404


def test_metrics_is_get_only_and_a_get_needs_no_csrf_token(db):
    auth = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}
    strict = Client(enforce_csrf_checks=True)
    assert strict.get("/metrics", **auth).status_code == 200
    assert strict.post("/metrics", **auth).status_code == 403  # refused by CSRF, like any tokenless POST
    for method in ("post", "put", "delete"):
        assert getattr(Client(), method)("/metrics", **auth).status_code == 405


def test_a_scrape_costs_a_fixed_number_of_queries(world, django_assert_max_num_queries):
    for i in range(5):  # more organisations with data do not add queries
        extra = make_organisation(name=f"Extra {i}")
        usage_record.xero_call_recorded(organisation_id=extra.pk, status=200, day_remaining=4000 + i)
        WebhookEvent.objects.create(
            organisation=extra,
            tenant_id=str(uuid.uuid4()),
            category="INVOICE",
            event_type="UPDATE",
            resource_id=str(uuid.uuid4()),
            event_date=timezone.now(),
            received_at=timezone.now(),
        )
    with django_assert_max_num_queries(10):
        s = scrape()
    assert value(s, "coordinoter_xero_day_remaining", organisation_id=extra.pk) == 4004


def test_app_wide_calls_by_class_are_shown_against_the_limit_when_background_runs(world):
    tenant = world["connection"].tenant_id
    last_minute = timezone.now() - dt.timedelta(minutes=1)
    for priority in ("reconcile", "reconcile", "health", "webhook"):
        usage_record.xero_call_recorded(
            organisation_id=world["other"].pk, status=200, priority=priority, at=last_minute
        )
    limiter = rate_limiter()
    limiter.release(tenant_id=tenant, ticket=limiter.acquire(tenant_id=tenant))
    quiet = "33333333-3333-4333-8333-333333333333"  # a tenant with no customer call just now: its poll goes at once
    limiter.release(tenant_id=quiet, ticket=limiter.acquire(tenant_id=quiet, priority="reconcile"))
    s = scrape()
    # The world's 7 calls of the last minute were the customers'; every organisation's calls add up.
    assert value(s, "coordinoter_xero_app_calls_last_minute", **{"class": "customer"}) == 7
    assert value(s, "coordinoter_xero_app_calls_last_minute", **{"class": "reconcile"}) == 2
    assert value(s, "coordinoter_xero_app_calls_last_minute", **{"class": "health"}) == 1
    assert value(s, "coordinoter_xero_app_calls_last_minute", **{"class": "webhook"}) == 1
    assert value(s, "coordinoter_xero_app_minute_limit") == 10000
    assert value(s, "coordinoter_xero_app_background_cap") == 2000
    assert value(s, "coordinoter_xero_app_window_calls", **{"class": "customer"}) == 1
    assert value(s, "coordinoter_xero_app_window_calls", **{"class": "reconcile"}) == 1


def test_webhook_fetches_skipped_are_counted_per_organisation_over_the_last_hour(db):
    now = timezone.now()
    org = make_organisation(name="Émile Care")
    for received, outcome in ((5, "fetch_skipped"), (30, "fetch_skipped"), (90, "fetch_skipped"), (5, "applied")):
        WebhookEvent.objects.create(
            organisation=org,
            tenant_id="t",
            category="INVOICE",
            event_type="UPDATE",
            resource_id=str(uuid.uuid4()),
            event_date=now,
            state="processed",
            outcome=outcome,
            received_at=now - dt.timedelta(minutes=received),
            processed_at=now - dt.timedelta(minutes=received) + dt.timedelta(seconds=1),
        )
    s = scrape()
    assert value(s, "coordinoter_webhook_fetches_skipped_1h", organisation_id=org.pk) == 2
