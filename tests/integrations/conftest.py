"""Integrations test fixtures: Xero settings pointing at the real Xero hosts (mocked with `responses`), every task
queued recorded instead of published to the broker, and logged-in clients."""

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from tests.factories import make_connection

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "xero"
TEST_KEY = Fernet.generate_key().decode()


def xero_json(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture(autouse=True)
def xero_settings(settings):
    settings.XERO_CLIENT_ID = "test-client-id"
    settings.XERO_CLIENT_SECRET = "test-client-secret"
    settings.XERO_REDIRECT_URI = "http://testserver/integrations/xero/callback/"
    settings.XERO_AUTHORIZE_URL = "https://login.xero.com/identity/connect/authorize"
    settings.XERO_TOKEN_URL = "https://identity.xero.com/connect/token"
    settings.XERO_REVOCATION_URL = "https://identity.xero.com/connect/revocation"
    settings.XERO_CONNECTIONS_URL = "https://api.xero.com/connections"
    settings.XERO_API_URL = "https://api.xero.com/api.xro/2.0"
    settings.XERO_SCOPES = settings.XERO_GRANULAR_SCOPES
    settings.XERO_USE_PKCE = True
    settings.TOKEN_ENCRYPTION_KEYS = [TEST_KEY]
    settings.SITE_URL = "http://testserver"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    # Sign-ins are not what these tests are about: a fast hasher keeps them quick.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return settings


@pytest.fixture(autouse=True)
def _tasks_recorded(enqueued):
    """Nothing in this suite reaches the broker: every task queued is recorded (`enqueued`, tests/conftest.py)."""
    return enqueued


@pytest.fixture
def connection(org_a):
    """Organisation A's Xero connection (tokens through the token store): the one most tests here call through."""
    return make_connection(organisation=org_a)
