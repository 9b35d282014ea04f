"""Fixtures for the sandbox's own suite: one sandbox subprocess per session, reset before each test.

No database is used; these tests talk to the sandbox over real HTTP only.
"""

from __future__ import annotations

import pytest
import requests

from xero_sandbox.testing import DEFAULT_SCOPE, start_sandbox

REDIRECT_URI = "http://localhost:8000/integrations/xero/callback/"


@pytest.fixture(scope="session")
def sandbox():
    handle = start_sandbox(
        redirect_uris=[REDIRECT_URI, "http://127.0.0.1:8000/integrations/xero/callback/"],
        webhook_batch_ms=100,
    )
    yield handle
    handle.stop()


@pytest.fixture(autouse=True)
def _reset(request):
    if "sandbox" in request.fixturenames:
        request.getfixturevalue("sandbox").reset()
    yield


@pytest.fixture
def tokens(sandbox):
    """A token set for demo@sandbox.test connected to both organisations."""
    return sandbox.connect(DEFAULT_SCOPE)


@pytest.fixture
def au_tenant(sandbox):
    return sandbox.tenant_id("AU")


@pytest.fixture
def uk_tenant(sandbox):
    return sandbox.tenant_id("GB")


class Api:
    """A tiny Accounting API client bound to one token and tenant."""

    def __init__(self, sandbox, access_token: str, tenant_id: str):
        self.base = sandbox.api_url
        self.http = requests.Session()
        self.http.headers.update(
            {
                "Authorization": f"Bearer {access_token}",
                "xero-tenant-id": tenant_id,
                "Accept": "application/json",
            }
        )

    def get(self, path, **kwargs):
        return self.http.get(self.base + path, timeout=15, **kwargs)

    def put(self, path, json=None, **kwargs):
        return self.http.put(self.base + path, json=json, timeout=15, **kwargs)

    def post(self, path, json=None, **kwargs):
        return self.http.post(self.base + path, json=json, timeout=15, **kwargs)


@pytest.fixture
def api(sandbox, tokens, au_tenant):
    return Api(sandbox, tokens["access_token"], au_tenant)


@pytest.fixture
def uk_api(sandbox, tokens, uk_tenant):
    return Api(sandbox, tokens["access_token"], uk_tenant)
