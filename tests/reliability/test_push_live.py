"""The push against xero_sandbox (a subprocess) with REAL Celery worker subprocesses on Postgres and Redis.

Every test checks the same promise: each invoice of the batch is in Xero exactly once and every Coordinoter
invoice holds the InvoiceID Xero gave it. The sandbox and worker fixtures (30x time scale) are in conftest.py.
"""

import collections

import pytest

from integrations.outbound.models import OutboundAttempt, OutboundOperation
from invoices.services.push.common import chunks
from tests.factories import make_pending_batch
from tests.support.live import wait_until
from tests.support.xero_live import (
    assert_exactly_once,
    connect_organisation,
    push,
    synced,
)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_a_500_invoice_batch_lands_in_xero_exactly_once(sandbox, tenant, celery):
    organisation = connect_organisation(sandbox, name="Live Push Co", tenant_id=tenant)
    make_pending_batch(organisation=organisation, invoices=500, customers=10)
    celery.start_workers(3)
    push(organisation)
    wait_until(lambda: synced(organisation) == 500, timeout=45, message="500 invoices synced")
    assert_exactly_once(sandbox, tenant, organisation, 500)
    assert chunks().filter(organisation=organisation).count() == 10
    contacts = [c for c in sandbox.contacts(tenant) if c.get("ContactNumber", "").startswith("COORD-")]
    assert len(contacts) == 10  # every customer became exactly one Xero contact
    assert not [e for e in sandbox.requests_log() if e["status"] == 429]


def test_every_invoice_lands_once_through_timeouts_after_write_503s_429s_500s_and_drops(sandbox, tenant, celery):
    organisation = connect_organisation(sandbox, name="Faulty Push Co", tenant_id=tenant)
    make_pending_batch(organisation=organisation, invoices=500, customers=10, prefix="FT")
    path = "/api.xro/2.0/Invoices"
    sandbox.admin(
        "POST",
        "/faults",
        {
            "rules": [
                {"kind": "timeout_after_write", "count": 2, "method": "PUT", "path": path, "hold": 2.5},
                {"kind": "503", "count": 3, "method": "PUT", "path": path},
                {"kind": "429", "count": 2, "method": "PUT", "path": path, "problem": "minute"},
                {"kind": "500", "count": 1, "method": "PUT", "path": path},
                {"kind": "drop_after_write", "count": 1, "method": "PUT", "path": path},
                {"kind": "503", "count": 1, "method": "POST", "path": "/api.xro/2.0/Contacts"},
            ]
        },
    )
    celery.start_workers(3)
    celery.start_beat()
    push(organisation)
    wait_until(lambda: synced(organisation) == 500, timeout=60, message="500 invoices synced through faults")
    assert sandbox.faults() == []  # every injected fault fired
    assert_exactly_once(sandbox, tenant, organisation, 500)
    outcomes = collections.Counter(
        OutboundAttempt.objects.filter(operation__in=chunks().filter(organisation=organisation)).values_list(
            "outcome", "http_status"
        )
    )
    # Each kind was met and recorded (a rule can also fire on a retry the sandbox answers from its key store): a
    # timeout (unknown, no status), a rate-limit wait (Xero's 429, or our limiter's own refusal after it), a 5xx.
    OUT = OutboundAttempt.Outcome
    assert outcomes[(OUT.UNKNOWN, None)]
    assert sum(n for (outcome, status), n in outcomes.items() if outcome == OUT.RETRY and status in (429, None))
    assert sum(n for (_, status), n in outcomes.items() if status and status >= 500)


def test_a_worker_killed_mid_call_loses_nothing_and_duplicates_nothing(sandbox, tenant, celery):
    organisation = connect_organisation(sandbox, name="Killed Worker Co", tenant_id=tenant)
    make_pending_batch(organisation=organisation, invoices=500, customers=10, prefix="KW")
    # 1.2 s per call at 30x: long enough to kill a worker inside one, and under the workers' 1.5 s timeout (a
    # latency equal to the timeout made the contact look-ups time out at random).
    sandbox.settings(latency_ms=36000)
    celery.start_workers(3)
    celery.start_beat()
    push(organisation)

    def sending():
        return (
            chunks()
            .filter(organisation=organisation, state=OutboundOperation.State.SENDING, attempts__gte=1)
            .exclude(leased_by="")
            .first()
        )

    wait_until(lambda: sending() is not None, timeout=20, interval=0.02, message="a chunk mid-call")
    victim = sending()
    pid = int(victim.leased_by.split(":")[1])
    celery.kill(pid)
    sandbox.settings(latency_ms=500)
    wait_until(lambda: synced(organisation) == 500, timeout=60, message="500 invoices synced after SIGKILL")
    assert_exactly_once(sandbox, tenant, organisation, 500)
    victim.refresh_from_db()
    assert victim.state == OutboundOperation.State.DONE
    assert victim.outbound_attempts.filter(detail__startswith="lost").exists()  # the next worker knew


def test_a_token_that_expires_mid_batch_is_refreshed_once(sandbox, tenant, celery):
    organisation = connect_organisation(sandbox, name="Expiring Token Co", tenant_id=tenant)
    make_pending_batch(organisation=organisation, invoices=500, customers=10, prefix="TX")
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
