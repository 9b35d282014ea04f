"""Fixtures of the invoices suite: Xero's real hosts for the push tests (mocked with `responses`)."""

import pytest
import responses
from cryptography.fernet import Fernet

API = "https://api.xero.com/api.xro/2.0"
INVOICES_URL = f"{API}/Invoices"
CONTACTS_URL = f"{API}/Contacts"
TEST_KEY = Fernet.generate_key().decode()


@pytest.fixture
def push_settings(settings):
    """Real Xero hosts (mocked with `responses`) and a short retry base. Each test's limiter already counts under a
    Redis prefix of its own (tests/conftest.py)."""
    settings.XERO_CLIENT_ID = "test-client-id"
    settings.XERO_CLIENT_SECRET = "test-client-secret"
    settings.XERO_TOKEN_URL = "https://identity.xero.com/connect/token"
    settings.XERO_CONNECTIONS_URL = "https://api.xero.com/connections"
    settings.XERO_API_URL = API
    settings.TOKEN_ENCRYPTION_KEYS = [TEST_KEY]
    settings.XERO_RETRY_BASE_SECONDS = 2.0
    return settings


@pytest.fixture
def xero():
    """Xero's HTTP, mocked: a test registers the answers it needs; an unregistered request fails."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        yield mocked
