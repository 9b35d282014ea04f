"""Shared by the live reliability tests: one xero_sandbox per module running 30x faster than real time (a Xero
minute is 2 s, the Idempotency-Key window 12 s; 1.5 s per 50-invoice call at real speed), a fresh tenant per test,
and real Celery workers (subprocesses) configured for that time scale."""

import uuid

import pytest

from tests.support.live import CeleryProcesses, live_env
from tests.support.xero_live import sandbox_settings

SCALE = 30
# Scaled push settings, the same in the workers and in this process (the portal's notices read them too).
PUSH_SETTINGS = {
    "XERO_TIME_SCALE": SCALE,
    "XERO_HTTP_TIMEOUT_SECONDS": 1.5,
    "PUSH_LEASE_SECONDS": 4,
    "PUSH_SWEEP_SECONDS": 1,
    "XERO_RETRY_BASE_SECONDS": 0.2,
    "XERO_RETRY_MAX_SECONDS": 2,
}


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
def live_workers(settings, sandbox, transactional_db):
    """`live_workers(**env)`: a CeleryProcesses on the scaled push settings (plus `env`), stopped after the test."""
    made: list[CeleryProcesses] = []

    def make(**env) -> CeleryProcesses:
        processes = CeleryProcesses(
            env=live_env(
                settings,
                **sandbox_settings(sandbox),
                **PUSH_SETTINGS,
                XERO_RATE_LIMIT_PREFIX=f"test:live:{uuid.uuid4().hex}",
                **env,
            )
        )
        made.append(processes)
        return processes

    yield make
    for processes in made:
        processes.stop()


@pytest.fixture
def celery(live_workers):
    return live_workers()
