"""Helpers for the batch and mapping tests: a Xero connection row in a given state, and input builders."""

import datetime as dt
from decimal import Decimal

from django.utils import timezone

from invoices.services.batches import InvoiceInput, LineInput

TENANT_ID = "5a8a7d6c-1111-4c2b-9d3e-000000000001"
SHORT_CODE = "!Tq2Lx"


def connect_xero(
    organisation,
    *,
    status: str = "active",
    short_code: str = SHORT_CODE,
    tenant_id: str = TENANT_ID,
    tenant_name: str = "Demo Company (AU)",
    base_currency: str = "AUD",
):
    """The connection row integrations keeps for the organisation, in the given status, with usable tokens."""
    from integrations.models import XeroConnection

    now = timezone.now()
    return XeroConnection.objects.create(
        organisation=organisation,
        status=status,
        tenant_id=tenant_id,
        tenant_name=tenant_name,
        tenant_short_code=short_code,
        base_currency=base_currency,
        connection_id="c0ffee00-0000-4000-8000-00000000c001",
        access_token="test-access-token",
        refresh_token="test-refresh-token",
        access_token_expires_at=now + dt.timedelta(minutes=30),
        refresh_token_issued_at=now,
        connected_at=now - dt.timedelta(days=1),
        scopes="accounting.invoices accounting.contacts accounting.settings",
    )


def line(description: str = "Consulting", quantity: str = "1", unit: str = "100.00", **kw) -> LineInput:
    return LineInput(description=description, quantity=Decimal(quantity), unit_amount=Decimal(unit), **kw)


def invoice_input(number: str = "INV-0001", customer: str = "Harbour View", lines=None, **kw) -> InvoiceInput:
    values = dict(
        customer_name=customer,
        number=number,
        issue_date=dt.date(2026, 11, 1),
        due_date=dt.date(2026, 11, 15),
        currency="AUD",
        lines=[line()] if lines is None else lines,
    )
    values.update(kw)
    return InvoiceInput(**values)


def chart_read_from_xero(organisation) -> None:
    """The organisation's accounts and tax rates read once from (mocked) Xero, as the form and mapping page do:
    accounts 200 and 260 are active revenue accounts (210 is archived, 400 an expense); OUTPUT and EXEMPTOUTPUT
    apply to sales (INPUT does not, TAX001 is deleted)."""
    import json
    from pathlib import Path

    import responses
    from django.conf import settings

    from invoices.services.mapping import mapping_choices

    fixtures = Path(__file__).resolve().parents[1] / "fixtures" / "xero"
    with responses.RequestsMock() as mocked:
        mocked.get(f"{settings.XERO_API_URL}/Accounts", json=json.loads((fixtures / "accounts.json").read_text()))
        mocked.get(f"{settings.XERO_API_URL}/TaxRates", json=json.loads((fixtures / "tax_rates.json").read_text()))
        mapping_choices(organisation=organisation)
