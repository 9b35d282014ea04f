"""Shared fixtures. Tests reach nothing but loopback: unit tests mock Xero with `responses`, integration
tests talk to xero_sandbox on 127.0.0.1, and this guard fails anything else."""

import ipaddress
import socket
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.factories import PASSWORD, make_membership, make_organisation, make_user, mfa_verify_client

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


@dataclass(frozen=True)
class Enqueued:
    """One task the code queued through the gateway (coordinoter/queue.py), as Celery would carry it to a worker."""

    name: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    countdown: float = 0.0  # seconds, as the gateway passed it (after its cap)
    options: dict = field(default_factory=dict)  # anything else the gateway passed to apply_async (retry, connection)


class TaskRecorder(list[Enqueued]):
    """Every task queued during a test, in order. Nothing reaches the broker; run_all() runs them like a worker."""

    def names(self) -> list[str]:
        return [item.name for item in self]

    def named(self, name: str) -> list[Enqueued]:
        return [item for item in self if item.name == name]

    def run_all(self, limit: int = 50) -> list[Any]:
        """Run what is queued, oldest first, without waiting for countdowns (a task may queue more), until none is
        left or `limit` have run; returns their results."""
        from celery import current_app

        results = []
        while self and limit:
            item = self.pop(0)
            results.append(current_app.tasks[item.name].run(*item.args, **item.kwargs))
            limit -= 1
        return results


@pytest.fixture(scope="module")
def sandbox():
    """Our local Xero (xero_sandbox) in its own process, with its defaults, for a module's tests; modules that need it
    started otherwise (a time scale, webhook settings, other clients) define their own."""
    from xero_sandbox import testing

    handle = testing.start_sandbox()
    yield handle
    handle.stop()


@pytest.fixture
def enqueued(settings, monkeypatch) -> TaskRecorder:
    """The one recorder of queued work: the gateway runs as it does with a broker, and what it would publish
    (Task.apply_async, looked up on the class at every call) is recorded instead.

    Suites whose code queues tasks request it (tests/integrations and tests/security use it for every test). A test
    in `embedded_mode` must not also request it: that fixture sends tasks to the in-process runner instead."""
    from celery.app.task import Task

    recorder = TaskRecorder()

    def record(self, args=None, kwargs=None, **options):
        countdown = float(options.pop("countdown", 0) or 0)
        recorder.append(Enqueued(self.name, tuple(args or ()), dict(kwargs or {}), countdown, options))

    settings.TASKS_IN_PROCESS = False  # a run without REDIS_URL would otherwise hand tasks to the in-process runner
    monkeypatch.setattr(Task, "apply_async", record)
    return recorder


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


@pytest.fixture
def login_as(client):
    """Sign a user in with their password; staff are also past the second factor (tests.factories.mfa_verify_client),
    the one way tests do it."""

    def sign_in(user):
        assert client.login(username=user.email, password=PASSWORD)
        if user.is_staff:
            mfa_verify_client(client, user)
        return client

    return sign_in
