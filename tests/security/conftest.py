"""Fixtures of the security suite: the two-tenant world, a client per role, and Xero mocked at the HTTP edge.

Nothing reaches the broker (every task queued is recorded), and every request a suite makes runs inside a savepoint
that is rolled back (`isolated`), so one test can drive hundreds of requests, state-changing POSTs included,
against one world.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator

import pytest
import responses
from django.db import transaction
from django.test import Client

from integrations.xero.ratelimit import rate_limiter
from tests.factories import mfa_verify_client, token_response
from tests.integrations.conftest import TEST_KEY, xero_json
from tests.security.world import World, make_world

API = "https://api.xero.com/api.xro/2.0"


@pytest.fixture(autouse=True)
def security_settings(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # sign-ins are not timed here
    settings.XERO_CLIENT_ID = "security-client-id"
    settings.XERO_CLIENT_SECRET = "security-client-secret"
    settings.XERO_REDIRECT_URI = "http://testserver/integrations/xero/callback/"
    settings.XERO_AUTHORIZE_URL = "https://login.xero.com/identity/connect/authorize"
    settings.XERO_TOKEN_URL = "https://identity.xero.com/connect/token"
    settings.XERO_REVOCATION_URL = "https://identity.xero.com/connect/revocation"
    settings.XERO_CONNECTIONS_URL = "https://api.xero.com/connections"
    settings.XERO_API_URL = API
    settings.XERO_WEBHOOK_KEY = "security-webhook-key"
    settings.TOKEN_ENCRYPTION_KEYS = [TEST_KEY]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.XERO_RATE_LIMIT_PREFIX = f"test:security:{uuid.uuid4().hex}"
    rate_limiter.cache_clear()
    yield settings
    limiter = rate_limiter()
    if hasattr(limiter, "redis"):
        keys = list(limiter.redis.scan_iter(f"{settings.XERO_RATE_LIMIT_PREFIX}:*"))
        if keys:
            limiter.redis.delete(*keys)
    rate_limiter.cache_clear()


@pytest.fixture(autouse=True)
def _tasks_recorded(enqueued):
    """Tasks the code queued are recorded (`enqueued`, tests/conftest.py): nothing reaches the broker the other
    sessions' workers read."""
    return enqueued


@pytest.fixture
def xero_mock() -> Iterator[responses.RequestsMock]:
    """Xero's answers for whatever a page may ask (accounts and tax rates for the mapping, a disconnect)."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(f"{API}/Accounts", json=xero_json("accounts.json"))
        mock.get(f"{API}/TaxRates", json=xero_json("tax_rates.json"))
        mock.get(f"{API}/Organisation", json=xero_json("organisation.json"))
        mock.get("https://api.xero.com/connections", json=xero_json("connections_one.json"))
        mock.delete(re.compile(r"https://api\.xero\.com/connections/.*"), status=204)
        mock.post("https://identity.xero.com/connect/revocation", status=200)
        mock.post("https://identity.xero.com/connect/token", json=token_response())
        yield mock


@pytest.fixture
def world(db, xero_mock) -> World:
    return make_world()


def client_for(world: World, role: str, **client_options) -> Client:
    client = Client(**client_options)
    user = world.users[role]
    if user is not None:
        client.force_login(user)
        if user.is_staff:
            mfa_verify_client(client, user)
    return client


@pytest.fixture
def clients(world) -> dict[str, Client]:
    return {role: client_for(world, role) for role in world.users}


def isolated(call: Callable[[], object]):
    """Run one request inside a savepoint that is rolled back: what it wrote (rows, sessions) is undone."""
    with transaction.atomic():
        result = call()
        transaction.set_rollback(True)
    return result
