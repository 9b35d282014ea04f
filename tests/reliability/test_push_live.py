"""The push against xero_sandbox (a subprocess) with REAL Celery worker subprocesses on Postgres and Redis.

Every test checks the same promise: each invoice of the batch is in Xero exactly once and every Coordinoter
invoice holds the InvoiceID Xero gave it. The sandbox runs 30x faster than real time (a Xero minute is 2 s,
the Idempotency-Key window 12 s), with a latency model of 1.5 s per 50-invoice call at real speed.
"""

import collections
import uuid

import pytest
from django.db import transaction

from invoices.models import Invoice, PushAttempt, PushChunk
from invoices.services.push import push_enqueue_for_organisation
from tests.support.live import CeleryProcesses, live_env, wait_until
from tests.support.xero_live import connect_organisation, make_pending_batch, sandbox_settings

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SCALE = 30
DONE = (Invoice.SyncState.SYNCED, Invoice.SyncState.WARNING)


@pytest.fixture(scope="module")
def sandbox():
    from xero_sandbox.testing import start_sandbox

    handle = start_sandbox(time_scale=SCALE, latency_ms=500, latency_per_invoice_ms=20)
    yield handle
    handle.stop()


@pytest.fixture
def tenant(sandbox):
    from xero_sandbox.testing import AU_ID

    sandbox.reset(keep_settings=False)
    return AU_ID


@pytest.fixture
def celery(settings, sandbox, transactional_db):
    processes = CeleryProcesses(env=live_env(
        settings, **sandbox_settings(sandbox), XERO_TIME_SCALE=SCALE, XERO_HTTP_TIMEOUT_SECONDS=1.5,
        PUSH_LEASE_SECONDS=4, PUSH_SWEEP_SECONDS=1, PUSH_RETRY_BASE_SECONDS=0.2, PUSH_RETRY_MAX_SECONDS=2,
        XERO_RATE_LIMIT_PREFIX=f"test:live:{uuid.uuid4().hex}"))
    yield processes
    processes.stop()


def push(organisation) -> None:
    with transaction.atomic():
        push_enqueue_for_organisation(organisation_id=organisation.pk)


def synced(organisation) -> int:
    return Invoice.objects.filter(organisation=organisation, sync_state__in=DONE).count()


def assert_exactly_once(sandbox, tenant, organisation, expected: int) -> None:
    ours = dict(Invoice.objects.filter(organisation=organisation).values_list("number", "xero_invoice_id"))
    in_xero = [i for i in sandbox.invoices(tenant) if i["InvoiceNumber"] in ours]
    counts = collections.Counter(i["InvoiceNumber"] for i in in_xero)
    duplicates = {number: n for number, n in counts.items() if n > 1}
    assert not duplicates, f"created twice in Xero: {duplicates}"
    assert len(counts) == len(ours) == expected, f"missing in Xero: {sorted(set(ours) - set(counts))[:10]}"
    assert {i["InvoiceNumber"]: i["InvoiceID"] for i in in_xero} == ours
    assert not Invoice.objects.filter(organisation=organisation).exclude(sync_state__in=DONE).exists()


def test_a_500_invoice_batch_lands_in_xero_exactly_once(sandbox, tenant, celery):
    organisation = connect_organisation(sandbox, name="Live Push Co", tenant_id=tenant)
    make_pending_batch(organisation, invoices=500, customers=10)
    celery.start_workers(3)
    push(organisation)
    wait_until(lambda: synced(organisation) == 500, timeout=45, message="500 invoices synced")
    assert_exactly_once(sandbox, tenant, organisation, 500)
    assert PushChunk.objects.filter(organisation=organisation).count() == 10
    contacts = [c for c in sandbox.contacts(tenant) if c.get("ContactNumber", "").startswith("COORD-")]
    assert len(contacts) == 10  # every customer became exactly one Xero contact
    assert not [e for e in sandbox.requests_log() if e["status"] == 429]


def test_every_invoice_lands_once_through_timeouts_after_write_503s_429s_500s_and_drops(sandbox, tenant, celery):
    organisation = connect_organisation(sandbox, name="Faulty Push Co", tenant_id=tenant)
    make_pending_batch(organisation, invoices=500, customers=10, prefix="FT")
    path = "/api.xro/2.0/Invoices"
    sandbox.admin("POST", "/faults", {"rules": [
        {"kind": "timeout_after_write", "count": 2, "method": "PUT", "path": path, "hold": 2.5},
        {"kind": "503", "count": 3, "method": "PUT", "path": path},
        {"kind": "429", "count": 2, "method": "PUT", "path": path, "problem": "minute"},
        {"kind": "500", "count": 1, "method": "PUT", "path": path},
        {"kind": "drop_after_write", "count": 1, "method": "PUT", "path": path},
        {"kind": "503", "count": 1, "method": "POST", "path": "/api.xro/2.0/Contacts"},
    ]})
    celery.start_workers(3)
    celery.start_beat()
    push(organisation)
    wait_until(lambda: synced(organisation) == 500, timeout=60, message="500 invoices synced through faults")
    assert sandbox.faults() == []  # every injected fault fired
    assert_exactly_once(sandbox, tenant, organisation, 500)
    outcomes = collections.Counter(PushAttempt.objects.filter(organisation=organisation)
                                   .values_list("outcome", flat=True))
    # Each kind was met and recorded (a rule can also fire on a retry the sandbox answers from its key store).
    assert outcomes[PushAttempt.Outcome.TIMEOUT] and outcomes[PushAttempt.Outcome.RATE_LIMITED]
    assert outcomes[PushAttempt.Outcome.SERVER_ERROR]


def test_a_worker_killed_mid_call_loses_nothing_and_duplicates_nothing(sandbox, tenant, celery):
    organisation = connect_organisation(sandbox, name="Killed Worker Co", tenant_id=tenant)
    make_pending_batch(organisation, invoices=500, customers=10, prefix="KW")
    # 1.2 s per call at 30x: long enough to kill a worker inside one, and under the workers' 1.5 s timeout (a
    # latency equal to the timeout made the contact look-ups time out at random).
    sandbox.settings(latency_ms=36000)
    celery.start_workers(3)
    celery.start_beat()
    push(organisation)

    def sending():
        return PushChunk.objects.filter(organisation=organisation, state=PushChunk.State.SENDING,
                                        attempts__gte=1).exclude(claimed_by="").first()

    wait_until(lambda: sending() is not None, timeout=20, interval=0.02, message="a chunk mid-call")
    victim = sending()
    pid = int(victim.claimed_by.split(":")[1])
    celery.kill(pid)
    sandbox.settings(latency_ms=500)
    wait_until(lambda: synced(organisation) == 500, timeout=60, message="500 invoices synced after SIGKILL")
    assert_exactly_once(sandbox, tenant, organisation, 500)
    victim.refresh_from_db()
    assert victim.state == PushChunk.State.DONE
    assert victim.push_attempts.filter(detail__startswith="lost").exists()  # the next worker knew


def test_a_token_that_expires_mid_batch_is_refreshed_once(sandbox, tenant, celery):
    organisation = connect_organisation(sandbox, name="Expiring Token Co", tenant_id=tenant)
    make_pending_batch(organisation, invoices=500, customers=10, prefix="TX")
    sandbox.settings(latency_ms=15000)  # 0.5 s per call at 30x
    celery.start_workers(3)
    push(organisation)
    wait_until(lambda: synced(organisation) >= 50, timeout=30, interval=0.02, message="first chunk synced")
    assert synced(organisation) < 500
    assert sandbox.expire_tokens(tenant_id=tenant) >= 1
    wait_until(lambda: synced(organisation) == 500, timeout=60, message="500 invoices synced after expiry")
    assert_exactly_once(sandbox, tenant, organisation, 500)
    assert len(celery.log_events("xero.token.refreshed")) == 1
    assert any(e["status"] == 401 for e in sandbox.requests_log())  # the expiry was really hit mid-batch
