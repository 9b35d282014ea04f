"""Shared helpers for the push tests: a connected organisation with a mapping, Xero answers built from the
request (like Xero echoes each element back), and a per-test limiter prefix in the real Redis."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.db import transaction
from django.utils import timezone

from integrations.models import XeroConnection
from integrations.xero import tokens
from integrations.xero.ratelimit import rate_limiter
from integrations.xero.types import TokenSet
from invoices.models import InvoiceBatch, XeroMapping
from tests.factories import make_batch

API = "https://api.xero.com/api.xro/2.0"
TEST_KEY = Fernet.generate_key().decode()
TENANT_ID = "4c0ffee5-7e57-4d2a-9c1b-5a3d00000001"
INVOICES_URL = f"{API}/Invoices"
CONTACTS_URL = f"{API}/Contacts"


@pytest.fixture(name="push_settings")
def push_settings_fixture(settings):
    """Real Xero hosts (mocked with `responses`), a limiter keyed under a prefix of its own."""
    settings.XERO_CLIENT_ID = "test-client-id"
    settings.XERO_CLIENT_SECRET = "test-client-secret"
    settings.XERO_TOKEN_URL = "https://identity.xero.com/connect/token"
    settings.XERO_CONNECTIONS_URL = "https://api.xero.com/connections"
    settings.XERO_API_URL = API
    settings.TOKEN_ENCRYPTION_KEYS = [TEST_KEY]
    settings.XERO_RATE_LIMIT_PREFIX = f"test:push:{uuid.uuid4().hex}"
    settings.XERO_RETRY_BASE_SECONDS = 2.0
    rate_limiter.cache_clear()
    yield settings
    limiter = rate_limiter()
    if hasattr(limiter, "redis"):
        keys = list(limiter.redis.scan_iter(f"{settings.XERO_RATE_LIMIT_PREFIX}:*"))
        if keys:
            limiter.redis.delete(*keys)
    rate_limiter.cache_clear()


def make_connection(
    *, organisation, status: str = "active", tenant_id: str = TENANT_ID, expires_in: int = 1800
) -> XeroConnection:
    """A connection row whose tokens go in through the token store (the only writer of token fields)."""
    now = timezone.now()
    with transaction.atomic():
        connection = XeroConnection.objects.create(
            organisation=organisation,
            status=status,
            tenant_id=tenant_id,
            tenant_name="Push Test Ltd",
            tenant_type="ORGANISATION",
            tenant_short_code="!pUsh1",
            base_currency="AUD",
            connection_id=str(uuid.uuid4()),
            connected_at=now - dt.timedelta(days=1),
            status_changed_at=now,
        )
        tokens.connection_tokens_save(
            connection=connection,
            token_set=TokenSet(
                access_token=f"at-{uuid.uuid4().hex}",
                refresh_token=f"rt-{uuid.uuid4().hex}",
                expires_at=now + dt.timedelta(seconds=expires_in),
                scopes=("offline_access", "accounting.invoices"),
            ),
        )
    connection.refresh_from_db()
    return connection


def connected_organisation(
    organisation, *, contact_ids: bool = True, invoices: int = 3, mapping: bool = True, status: str = "active"
):
    """A connected organisation with a mapping and an eligible batch of pending invoices (one customer)."""
    connection = make_connection(organisation=organisation, status=status)
    if mapping:
        XeroMapping.objects.create(organisation=organisation, revenue_account_code="200", tax_type="OUTPUT")
    batch = make_batch(
        organisation=organisation,
        invoices=invoices,
        eligibility=InvoiceBatch.Eligibility.ELIGIBLE,
        sync_state="pending",
    )
    if contact_ids:
        for customer in {invoice.customer for invoice in batch.invoices.all()}:
            customer.xero_contact_id = str(uuid.uuid4())
            customer.save(update_fields=["xero_contact_id"])
    return connection, batch


def echo_invoices(
    request, *, warnings: dict[str, list[str]] | None = None, errors: dict[str, list[str]] | None = None
) -> tuple[int, dict, str]:
    """Xero's answer to PUT /Invoices?summarizeErrors=false: every element echoed with its outcome."""
    warnings, errors = warnings or {}, errors or {}
    elements = []
    for item in json.loads(request.body)["Invoices"]:
        number = item["InvoiceNumber"]
        element: dict[str, Any] = {**item, "ValidationErrors": []}
        if number in errors:
            element.update(
                InvoiceID="00000000-0000-0000-0000-000000000000",
                HasErrors=True,
                StatusAttributeString="ERROR",
                ValidationErrors=[{"Message": m} for m in errors[number]],
            )
        else:
            element.update(
                InvoiceID=str(uuid.uuid5(uuid.NAMESPACE_URL, number)),
                SubTotal=100.0,
                TotalTax=10.0,
                Total=110.0,
                AmountDue=110.0,
                AmountPaid=0.0,
                AmountCredited=0.0,
                UpdatedDateUTC="/Date(1764000000000+0000)/",
                StatusAttributeString="WARNING" if number in warnings else "OK",
            )
            if number in warnings:
                element["Warnings"] = [{"Message": m} for m in warnings[number]]
        elements.append(element)
    headers = {
        "Xero-Correlation-Id": str(uuid.uuid4()),
        "X-MinLimit-Remaining": "59",
        "X-DayLimit-Remaining": "4999",
        "X-AppMinLimit-Remaining": "9999",
    }
    return 200, headers, json.dumps({"Id": str(uuid.uuid4()), "Status": "OK", "Invoices": elements})
