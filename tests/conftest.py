"""Shared fixtures. Tests reach nothing but loopback: unit tests mock Xero with `responses`, integration
tests talk to xero_sandbox on 127.0.0.1, and this guard fails anything else."""

import ipaddress
import socket

import pytest

from tests.factories import make_membership, make_organisation, make_user

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _allowed(address) -> bool:
    if not isinstance(address, tuple):
        return True  # unix sockets
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _guarded_connect(self, address):
    if not _allowed(address):
        raise RuntimeError(f"Test tried to reach the network at {address!r}: mock it with `responses`.")
    return _real_connect(self, address)


def _guarded_connect_ex(self, address):
    if not _allowed(address):
        raise RuntimeError(f"Test tried to reach the network at {address!r}: mock it with `responses`.")
    return _real_connect_ex(self, address)


@pytest.fixture(autouse=True, scope="session")
def _no_network():
    socket.socket.connect = _guarded_connect
    socket.socket.connect_ex = _guarded_connect_ex
    yield
    socket.socket.connect = _real_connect
    socket.socket.connect_ex = _real_connect_ex


@pytest.fixture(autouse=True, scope="session")
def _test_database_dropped_at_the_end(django_db_setup, django_db_blocker):
    """Drop the run's test database even if a worker subprocess or live-server thread still holds a connection at
    the end (Django then only warns and leaves the database behind, one more per run on a shared server)."""
    yield
    from django.db import connection

    connection.close()  # ours may be stale: the fault suite restarts PostgreSQL
    if not connection.settings_dict["NAME"].startswith("test_"):
        return  # a run of database-free tests only: no test database was made
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture(autouse=True)
def _in_process_runner_ended():
    """A test that ran in embedded mode leaves the in-process runner's thread (its stand-in for workers and beat)
    behind; end it and drop what it holds, so it never runs a task or a beat job during another test."""
    yield
    from coordinoter.queue import runner_stop

    runner_stop()


@pytest.fixture
def embedded_mode(settings, monkeypatch):
    """`make run` without Redis: tasks go to the in-process runner and the rate limiter is the in-process one.

    Publishing to a broker would be a bug here, so Task.apply_async fails the test (it also undoes the recorders
    some suites install, which would otherwise hide a task that skipped the gateway)."""
    from celery.app.task import Task

    from integrations.xero.ratelimit import rate_limiter

    def published(self, *args, **kwargs):
        raise AssertionError(f"{self.name} was published to a broker in embedded mode")

    settings.REDIS_URL = ""
    settings.TASKS_IN_PROCESS = True
    monkeypatch.setattr(Task, "apply_async", published)
    rate_limiter.cache_clear()  # rebuilt on the in-process Redis, under this test's prefix
    yield settings
    rate_limiter.cache_clear()


@pytest.fixture(autouse=True)
def _clear_cache():
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture(autouse=True)
def _own_rate_limiter_keys(settings):
    """Each test counts its Xero calls under its own Redis prefix: a 429 in one test never slows the next.

    (Sandbox tenant ids are fixed, so without this every test that talks to Koala Coffee Roasters would share
    one minute window.)"""
    import uuid

    from integrations.xero.ratelimit import in_process_redis_server, rate_limiter

    prefix = f"test:rl:{uuid.uuid4().hex}"
    redis_url = settings.REDIS_URL  # read now: a test may point REDIS_URL at a dead port
    settings.XERO_RATE_LIMIT_PREFIX = prefix
    rate_limiter.cache_clear()  # the process's limiter is built once from settings; rebuild it with this prefix
    yield
    rate_limiter.cache_clear()
    in_process_redis_server.cache_clear()  # embedded-mode tests: the next one starts on an empty in-process Redis
    if redis_url:
        import redis

        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(f"{prefix}:*"))
        if keys:
            client.delete(*keys)


@pytest.fixture
def org_a(db):
    return make_organisation(name="Org A")


@pytest.fixture
def org_b(db):
    return make_organisation(name="Org B")


@pytest.fixture
def admin_a(org_a):
    user = make_user(email="admin@a.test")
    make_membership(user=user, organisation=org_a, role="admin")
    return user


@pytest.fixture
def accountant_a(org_a):
    user = make_user(email="accountant@a.test")
    make_membership(user=user, organisation=org_a, role="accountant")
    return user


@pytest.fixture
def admin_b(org_b):
    user = make_user(email="admin@b.test")
    make_membership(user=user, organisation=org_b, role="admin")
    return user


@pytest.fixture
def support_user(db):
    return make_user(email="support@coordinoter.test", support=True)
