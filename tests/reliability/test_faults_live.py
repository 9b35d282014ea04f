"""The fault suite of issue 7: real Celery workers, PostgreSQL, Redis and xero_sandbox (30x time scale, see
conftest.py), and one fault per test while a batch is being pushed or a webhook arrives. After each: every
invoice is in Xero exactly once, every webhook event applied once, nothing left pending, in flight or received,
and the portal (the Django test client, signed in as a member of the organisation) said what was going on while
it lasted. docs/reliability.md is the table of what these tests prove.

The worker SIGKILLed mid-chunk and a token expiring mid-batch are in test_push_live.py; webhooks duplicated and
reordered in test_webhooks_live.py.
"""

import datetime as dt
import subprocess
import time
from urllib.parse import urlsplit

import pytest
from celery import current_app
from django.db import connections
from django.test import Client
from django.urls import reverse

from coordinoter import queue
from integrations.models import WebhookEvent, XeroConnection
from integrations.outbound.models import OutboundAttempt, OutboundOperation
from integrations.webhooks import fetch, sweep
from integrations.xero.ratelimit import rate_limiter
from invoices.models import Invoice
from invoices.services.push.common import chunks as push_chunks
from tests.factories import make_membership, make_pending_batch, make_user, mfa_verify_client
from tests.reliability.conftest import PUSH_SETTINGS
from tests.support.live import PrivateRedis, wait_until
from tests.support.xero_live import (
    assert_exactly_once,
    connect_organisation,
    pay_in_xero,
    point_settings_at_sandbox,
    push,
    status_of,
    synced,
    xero_invoice_of_ours,
)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

INVOICES = "/api.xro/2.0/Invoices"
HALF_SECOND_CALLS = 15000  # latency_ms: 0.5 s per call at 30x, so a batch of 300 takes a few seconds
# 12 chunks, four waves of three workers: when the first chunk is in, the second wave is already on its way and goes
# through whatever the fault; the third and fourth are what meets it. With 300 invoices (two waves) every chunk could
# be on its way before the fault, so nothing would meet it.
FOUR_WAVES = 600
WEBHOOK_KEY = "fault-suite-webhook-key"
RECEIVER = "/integrations/xero/webhooks/"
POSTGRES_CLUSTER = ("15", "main")


@pytest.fixture(autouse=True)
def scaled_settings(settings):
    """This process renders the portal: it reads the same scaled push settings as the workers."""
    for name, value in PUSH_SETTINGS.items():
        setattr(settings, name, value)


@pytest.fixture
def portal():
    """`portal(organisation, role)`: a test client signed in as a member of the organisation. A page that fails
    (the database is down) comes back as the 500 a person would see instead of raising here."""

    def sign_in(organisation, role: str = "accountant") -> Client:
        user = make_user()
        make_membership(user=user, organisation=organisation, role=role)
        client = Client(raise_request_exception=False)
        client.force_login(user)
        return client

    return sign_in


def batch_page(client: Client, batch) -> tuple[int, str]:
    response = client.get(reverse("invoices:batch_detail", args=[batch.pk]))
    return response.status_code, response.content.decode()


def progress_partial(client: Client, batch) -> str:
    """What the open batch page polls every few seconds."""
    return client.get(reverse("invoices:batch_progress", args=[batch.pk]), HTTP_HX_REQUEST="true").content.decode()


def notice(kind: str) -> str:
    return f'data-push-notice="{kind}"'


def assert_nothing_stuck(organisation) -> None:
    chunks = push_chunks().filter(organisation=organisation)
    assert not chunks.filter(state__in=[OutboundOperation.State.PENDING, OutboundOperation.State.SENDING]).exists()
    assert not Invoice.objects.filter(
        organisation=organisation,
        sync_state__in=[Invoice.SyncState.PENDING, Invoice.SyncState.IN_FLIGHT, Invoice.SyncState.FAILED],
    ).exists()


def assert_settled_page(client: Client, batch, expected: int) -> None:
    status, html = batch_page(client, batch)
    assert status == 200
    assert "All invoices are in Xero" in html and "data-push-notice" not in html
    assert f'<strong data-count="synced">{expected}</strong>' in html


@pytest.fixture
def private_redis(settings, monkeypatch):
    """A redis-server of this test's own as the broker, cache and limiter store, for this process and the workers
    (live_workers(**private_redis.env)); the machine's Redis is shared and never restarted."""
    server = PrivateRedis()
    server.start()
    monkeypatch.setattr(current_app.conf, "broker_url", server.url(0))
    # Celery caches its connection and producer pools: start both afresh on this broker, and put back after.
    monkeypatch.setattr(current_app, "_pool", None)
    monkeypatch.setattr(current_app.amqp, "_producer_pool", None)
    settings.REDIS_URL = server.url(0)
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": server.url(1)}}
    rate_limiter.cache_clear()
    yield server
    queue.fail_fast_connection_drop()
    server.stop()
    rate_limiter.cache_clear()


def postgres(action: str) -> None:
    """The machine's PostgreSQL cluster, as scripts/ensure_services.sh starts it (shared: keep the outage short)."""
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", *POSTGRES_CLUSTER, action],
        check=True,
        capture_output=True,
        timeout=60,
    )


# ---------------------------------------------------------------- infrastructure


def test_postgres_restarted_mid_push_loses_and_duplicates_nothing(sandbox, tenant, celery, portal):
    organisation = connect_organisation(sandbox, name="Postgres Restart Co", tenant_id=tenant)
    batch = make_pending_batch(organisation=organisation, invoices=300, customers=10, prefix="PG")
    client = portal(organisation)
    sandbox.settings(latency_ms=HALF_SECOND_CALLS)
    celery.start_workers(3)
    celery.start_beat()
    push(organisation)
    wait_until(lambda: synced(organisation) >= 50, timeout=30, interval=0.05, message="first chunk synced")
    assert synced(organisation) < 300
    postgres("stop")  # fast shutdown: every session, ours and the workers', is cut mid-transaction
    try:
        time.sleep(2)  # the workers' calls to Xero finish into a database that is not there
        down_status, _ = batch_page(client, batch)
    finally:
        postgres("start")
    connections.close_all()  # this process reconnects like the workers do
    assert down_status == 500  # what a person saw while it was down: the error page
    wait_until(lambda: synced(organisation) == 300, timeout=90, message="300 invoices synced after the restart")
    assert_exactly_once(sandbox, tenant, organisation, 300)
    assert_nothing_stuck(organisation)
    assert "OperationalError" in celery.log_text()  # the workers really met the outage mid-push
    assert_settled_page(client, batch, 300)


def test_redis_restarted_mid_push_is_rebuilt_from_postgres(sandbox, tenant, live_workers, private_redis, portal):
    organisation = connect_organisation(sandbox, name="Redis Restart Co", tenant_id=tenant)
    batch = make_pending_batch(organisation=organisation, invoices=FOUR_WAVES, customers=10, prefix="RR")
    client = portal(organisation)
    sandbox.settings(latency_ms=HALF_SECOND_CALLS)
    workers = live_workers(**private_redis.env)
    workers.start_workers(3)
    workers.start_beat()
    push(organisation)
    wait_until(lambda: synced(organisation) >= 50, timeout=30, interval=0.05, message="first chunk synced")
    private_redis.kill()  # queued tasks, unacknowledged tasks, limiter keys, cache locks: all gone
    try:
        # While it is down nothing moves; after the sweeper's grace the open page says so.
        wait_until(
            lambda: notice("stalled") in progress_partial(client, batch),
            timeout=30,
            message="the batch page says sending has paused",
        )
        assert synced(organisation) <= FOUR_WAVES - 300
        _, html = batch_page(client, batch)
        assert "Sending has paused on our side" in html
    finally:
        private_redis.start()  # empty, on the same port: the workers and beat reconnect to it
    wait_until(lambda: synced(organisation) == FOUR_WAVES, timeout=90, message="all synced after the restart")
    assert_exactly_once(sandbox, tenant, organisation, FOUR_WAVES)
    assert_nothing_stuck(organisation)
    assert workers.log_events("push.sweep")  # the sweeper re-queued what Redis lost, from Postgres
    assert_settled_page(client, batch, FOUR_WAVES)


def test_redis_restarted_while_a_webhook_arrives_applies_it_once(
    sandbox, tenant, live_workers, private_redis, live_server, settings, monkeypatch
):
    point_settings_at_sandbox(settings, sandbox, redirect_uri=sandbox.redirect_uris[0])
    settings.XERO_WEBHOOK_KEY = WEBHOOK_KEY
    monkeypatch.setattr(fetch, "xero_rate_limiter", lambda: None)
    sandbox.set_webhook(
        url=live_server.url + RECEIVER, key=WEBHOOK_KEY, webhook_duplicate=0, webhook_out_of_order=False
    )
    sandbox.settings(webhook_batch_ms=100)
    organisation = connect_organisation(sandbox, name="Redis Webhook Co", tenant_id=tenant)
    workers = live_workers(**private_redis.env, XERO_WEBHOOK_KEY=WEBHOOK_KEY)
    workers.start_workers(2, queues="webhooks,default")
    invoice = xero_invoice_of_ours(organisation, number="RW-0001")
    assert sandbox.flush_webhooks(timeout=10)
    wait_until(lambda: not WebhookEvent.objects.filter(state="received").exists(), timeout=10, message="settled")
    private_redis.kill()
    try:
        pay_in_xero(sandbox, tenant, invoice, "110.00")
        assert sandbox.flush_webhooks(timeout=10)
        assert [a["status"] for a in sandbox.webhook_deliveries()[-1]["attempts"]] == [200]  # answered at once
        stored = WebhookEvent.objects.get(resource_id=invoice.xero_invoice_id, state="received")
        time.sleep(1)
        assert status_of(invoice) == "AUTHORISED"  # the portal shows the last known state meanwhile
        # Support staff see it waiting in the tenant's inbox (the page needs PostgreSQL only, not Redis).
        staff = Client(raise_request_exception=False)
        support = make_user(support=True)
        staff.force_login(support)
        mfa_verify_client(staff, support)  # staff pass the second factor (organisations/mfa) as in real use
        response = staff.get(reverse("webhooks:support_organisation_inbox", args=[organisation.pk]))
        assert response.status_code == 200
        assert '<span class="tile-num" id="count-received">1</span>' in response.content.decode()
    finally:
        private_redis.start()
    # Beat's webhook-inbox sweep (every 30 s) re-queues what waits; its pass, now, through the restarted broker.
    sweep.webhook_inbox_sweep(older_than=dt.timedelta(0))
    wait_until(lambda: status_of(invoice) == "PAID", timeout=15, message="applied after Redis came back")
    # The event is finished just after its invoice is applied (a separate, later commit): wait for that too.
    wait_until(lambda: WebhookEvent.objects.get(pk=stored.pk).state != "received", timeout=10, message="event finished")
    stored.refresh_from_db()
    assert stored.state == "processed"
    assert not WebhookEvent.objects.filter(state="received").exists()
    assert invoice.events.filter(source="xero", message__contains="AUTHORISED → PAID").count() == 1


# ---------------------------------------------------------------- Xero misbehaving


def push_with_every_put_failing(sandbox, tenant, celery, portal, fault: dict, *, name: str, prefix: str):
    """150 invoices pushed while every PUT /Invoices gets `fault` (until the test clears it); returns the
    organisation, its batch, a signed-in client and when the push started."""
    organisation = connect_organisation(sandbox, name=name, tenant_id=tenant)
    batch = make_pending_batch(organisation=organisation, invoices=150, customers=5, prefix=prefix)
    client = portal(organisation)
    sandbox.admin("POST", "/faults", {**fault, "share": 1.0, "method": "PUT", "path": INVOICES})
    celery.start_workers(3)
    celery.start_beat()
    started = time.monotonic()
    push(organisation)
    return organisation, batch, client, started


def test_xero_503_for_longer_than_the_idempotency_window_then_recovering(sandbox, tenant, celery, portal):
    organisation, batch, client, started = push_with_every_put_failing(
        sandbox, tenant, celery, portal, {"kind": "503"}, name="Xero Down Co", prefix="XD"
    )
    wait_until(
        lambda: notice("xero_unavailable") in progress_partial(client, batch),
        timeout=20,
        message="the batch page says Xero is not answering",
    )
    _, html = batch_page(client, batch)
    assert "Xero is not answering" in html and "We will keep trying" in html
    window = 360 / PUSH_SETTINGS["XERO_TIME_SCALE"]
    time.sleep(max(0.0, window * 1.6 - (time.monotonic() - started)))  # ~10 Xero minutes of 503s
    assert synced(organisation) == 0
    assert notice("xero_unavailable") in progress_partial(client, batch)
    sandbox.clear_faults()
    wait_until(lambda: synced(organisation) == 150, timeout=60, message="150 invoices synced after the outage")
    assert_exactly_once(sandbox, tenant, organisation, 150)
    assert_nothing_stuck(organisation)
    attempts = OutboundAttempt.objects.filter(operation__in=push_chunks().filter(organisation=organisation))
    assert attempts.filter(outcome=OutboundAttempt.Outcome.UNKNOWN, http_status=503).count() >= 3
    # Past the key's window a resend could create a second copy: the numbers were looked up instead.
    assert attempts.filter(detail__startswith="GET /Invoices lookup").exists()
    assert_settled_page(client, batch, 150)


def test_a_429_storm_waits_for_xero_without_a_busy_loop(sandbox, tenant, celery, portal):
    organisation, batch, client, started = push_with_every_put_failing(
        sandbox, tenant, celery, portal, {"kind": "429", "problem": "minute"}, name="Rate Storm Co", prefix="RS"
    )
    wait_until(
        lambda: notice("rate_limited") in progress_partial(client, batch),
        timeout=20,
        message="the batch page says it waits for Xero's rate limit",
    )
    _, html = batch_page(client, batch)
    assert "Waiting for Xero's rate limit" in html
    time.sleep(max(0.0, 10 - (time.monotonic() - started)))  # 5 Xero minutes of nothing but 429s
    storm = time.monotonic() - started
    sandbox.clear_faults()
    refused = [e for e in sandbox.requests_log() if e["status"] == 429]
    wait_until(lambda: synced(organisation) == 150, timeout=60, message="150 invoices synced after the storm")
    assert_exactly_once(sandbox, tenant, organisation, 150)
    assert_nothing_stuck(organisation)
    # Each 429 carries Retry-After (1-2 s here) and the tenant waits it out: at most 3 chunks (one per worker)
    # call at a time, so a few calls per second at most; a busy loop would make hundreds.
    assert 3 <= len(refused) <= 3 * storm + 10, f"{len(refused)} refused calls in {storm:.1f} s"
    print(f"429 storm: {len(refused)} refused calls in {storm:.1f} s")
    assert_settled_page(client, batch, 150)


def test_refresh_failing_mid_batch_waits_for_a_reconnect_then_sends_the_rest_once(
    sandbox, tenant, celery, portal, settings
):
    organisation = connect_organisation(sandbox, name="Dead Grant Co", tenant_id=tenant)
    batch = make_pending_batch(organisation=organisation, invoices=FOUR_WAVES, customers=10, prefix="DG")
    admin = portal(organisation, role="admin")
    sandbox.settings(latency_ms=HALF_SECOND_CALLS)
    celery.start_workers(3)
    celery.start_beat()
    push(organisation)
    wait_until(lambda: synced(organisation) >= 50, timeout=30, interval=0.05, message="first chunk synced")
    # The access token expires and Xero refuses the refresh token (invalid_grant), as after 60 idle days.
    sandbox.settings(refresh_idle=0)
    assert sandbox.expire_tokens(tenant_id=tenant) >= 1
    connection = XeroConnection.objects.get(organisation=organisation)
    wait_until(
        lambda: XeroConnection.objects.get(pk=connection.pk).status == XeroConnection.Status.NEEDS_RECONNECT,
        timeout=20,
        message="the connection needs a reconnect",
    )
    wait_until(
        lambda: not push_chunks().filter(organisation=organisation, state=OutboundOperation.State.SENDING).exists(),
        timeout=20,
        message="no call in progress",
    )
    before = synced(organisation)
    assert before <= FOUR_WAVES - 300
    calls = OutboundAttempt.objects.filter(operation__in=push_chunks().filter(organisation=organisation)).count()
    time.sleep(3)  # three sweeper passes: nothing is called, nothing refreshed again
    assert (
        OutboundAttempt.objects.filter(operation__in=push_chunks().filter(organisation=organisation)).count() == calls
    )
    assert len(celery.log_events("xero.token.invalid_grant")) == 1
    assert not Invoice.objects.filter(organisation=organisation, sync_state=Invoice.SyncState.FAILED).exists()
    _, html = batch_page(admin, batch)
    assert "Xero needs you to reconnect" in html and "Waiting for reconnect" in html
    assert synced(organisation) == before

    # An admin reconnects through the product's own flow: Connect, Xero's consent, the callback.
    sandbox.settings(refresh_idle=60 * 86400)
    point_settings_at_sandbox(settings, sandbox, redirect_uri=sandbox.redirect_uris[0])
    from xero_sandbox.testing import complete_consent

    started = admin.post(reverse("integrations:xero_connect"))
    assert started.status_code == 302
    callback = urlsplit(complete_consent(started["Location"], tenants=[tenant]))
    assert admin.get(f"{callback.path}?{callback.query}").status_code == 302
    assert XeroConnection.objects.get(pk=connection.pk).status == XeroConnection.Status.ACTIVE
    wait_until(lambda: synced(organisation) == FOUR_WAVES, timeout=60, message="the rest synced after the reconnect")
    assert_exactly_once(sandbox, tenant, organisation, FOUR_WAVES)
    assert_nothing_stuck(organisation)
    assert_settled_page(admin, batch, FOUR_WAVES)
