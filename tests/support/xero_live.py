"""A Coordinoter organisation connected to a running xero_sandbox tenant: what the live push tests and the push
benchmark start from (their batches come from tests/factories.py); the exactly-once check the live tests end with."""

from __future__ import annotations

import collections
import datetime as dt

import requests
from django.db import transaction
from django.utils import timezone

from integrations.models import XeroConnection
from integrations.xero import tokens
from integrations.xero.client import xero_request
from integrations.xero.types import TokenSet
from invoices.mappers import parse_xero_datetime
from invoices.models import Customer, Invoice, XeroMapping
from organisations.models import Organisation

DONE = (Invoice.SyncState.SYNCED, Invoice.SyncState.WARNING)


def sandbox_settings(sandbox) -> dict[str, str]:
    """The product settings that point at this sandbox (as environment variables)."""
    return {
        "XERO_CLIENT_ID": sandbox.client_id,
        "XERO_CLIENT_SECRET": sandbox.client_secret,
        "XERO_AUTHORIZE_URL": sandbox.authorize_endpoint,
        "XERO_TOKEN_URL": sandbox.token_endpoint,
        "XERO_REVOCATION_URL": sandbox.revocation_endpoint,
        "XERO_CONNECTIONS_URL": sandbox.connections_url,
        "XERO_API_URL": sandbox.api_url,
    }


def point_settings_at_sandbox(settings, sandbox, *, redirect_uri: str) -> None:
    """Point this process's Xero settings (pytest-django's `settings`) at the sandbox, as make run does."""
    for name, value in sandbox_settings(sandbox).items():
        setattr(settings, name, value)
    settings.XERO_REDIRECT_URI = redirect_uri


def connect_organisation(sandbox, *, name: str, tenant_id: str) -> Organisation:
    """Consent in the sandbox (over HTTP, as a person would), then store the connection through the token store;
    choose the tenant's own Sales account and GST/VAT rate as the mapping."""
    consent = sandbox.connect(tenants=[tenant_id])
    connection_info = next(c for c in consent["connections"] if c["tenantId"] == tenant_id)
    organisation = Organisation.objects.create(name=name)
    now = timezone.now()
    with transaction.atomic():
        connection = XeroConnection.objects.create(
            organisation=organisation,
            status=XeroConnection.Status.ACTIVE,
            tenant_id=tenant_id,
            tenant_name=connection_info["tenantName"],
            tenant_type="ORGANISATION",
            connection_id=connection_info["id"],
            auth_event_id=connection_info["authEventId"],
            connected_at=now - dt.timedelta(hours=1),
            status_changed_at=now,
        )
        tokens.connection_tokens_save(
            connection=connection,
            token_set=TokenSet(
                access_token=consent["access_token"],
                refresh_token=consent["refresh_token"],
                expires_at=now + dt.timedelta(seconds=int(consent["expires_in"])),
                scopes=tuple(consent.get("scope", "").split()),
            ),
        )
    revenue = next(a for a in sandbox.admin("GET", f"/tenants/{tenant_id}/accounts") if a.get("Code") == "200")
    XeroMapping.objects.create(
        organisation=organisation,
        revenue_account_code=revenue["Code"],
        revenue_account_name=revenue["Name"],
        tax_type=revenue["TaxType"],
    )
    return organisation


def push(organisation: Organisation) -> None:
    """What saving a batch does: ask a worker to push the organisation's pending invoices."""
    from invoices.services.push import push_enqueue_for_organisation

    with transaction.atomic():
        push_enqueue_for_organisation(organisation_id=organisation.pk)


def synced(organisation: Organisation) -> int:
    return Invoice.objects.filter(organisation=organisation, sync_state__in=DONE).count()


def assert_exactly_once(sandbox, tenant: str, organisation: Organisation, expected: int) -> None:
    """Every invoice of the organisation is in the sandbox's Xero exactly once, under the InvoiceID we hold, and
    none is left pending, in flight or failed."""
    ours = dict(Invoice.objects.filter(organisation=organisation).values_list("number", "xero_invoice_id"))
    in_xero = [i for i in sandbox.invoices(tenant) if i["InvoiceNumber"] in ours]
    counts = collections.Counter(i["InvoiceNumber"] for i in in_xero)
    duplicates = {number: n for number, n in counts.items() if n > 1}
    assert not duplicates, f"created twice in Xero: {duplicates}"
    assert len(counts) == len(ours) == expected, f"missing in Xero: {sorted(set(ours) - set(counts))[:10]}"
    assert {i["InvoiceNumber"]: i["InvoiceID"] for i in in_xero} == ours
    assert not Invoice.objects.filter(organisation=organisation).exclude(sync_state__in=DONE).exists()


def xero_invoice_of_ours(
    organisation: Organisation, *, number: str = "LIVE-0001", customer: str = "Harbour View"
) -> Invoice:
    """An invoice in the sandbox's Xero that Coordinoter holds as pushed (its InvoiceID and version stored)."""
    from tests.factories import make_pushed_invoice

    connection_id = organisation.xero_connection.pk
    name = f"{customer} ({number})"
    contact = xero_request(connection_id, "PUT", "/Contacts", json={"Contacts": [{"Name": name}]})
    contact_id = contact.body["Contacts"][0]["ContactID"]
    created = xero_request(
        connection_id,
        "PUT",
        "/Invoices",
        json={
            "Invoices": [
                {
                    "Type": "ACCREC",
                    "Contact": {"ContactID": contact_id},
                    "InvoiceNumber": number,
                    "Status": "AUTHORISED",
                    "Date": "2026-11-02",
                    "DueDate": "2026-11-30",
                    "LineAmountTypes": "Exclusive",
                    "LineItems": [{"Description": "Service", "Quantity": 1, "UnitAmount": 100, "AccountCode": "200"}],
                }
            ]
        },
    ).body["Invoices"][0]
    person = Customer.objects.create(organisation=organisation, name=name, xero_contact_id=contact_id)
    invoice = make_pushed_invoice(
        organisation=organisation,
        xero_invoice_id=created["InvoiceID"],
        number=number,
        xero_updated_at=parse_xero_datetime(created["UpdatedDateUTC"]),
        customer=person,
        total=str(created["Total"]),
    )
    Invoice.objects.filter(pk=invoice.pk).update(
        issue_date=dt.date(2026, 11, 2),
        due_date=dt.date(2026, 11, 30),
        amount_due=created["AmountDue"],
        total_tax=created["TotalTax"],
    )
    invoice.refresh_from_db()
    return invoice


def pay_in_xero(sandbox, tenant: str, invoice: Invoice, amount: str) -> None:
    """What a person does in Xero: record a payment on the invoice page."""
    response = requests.post(
        f"{sandbox.url}/orgs/{tenant}/invoices/{invoice.xero_invoice_id}/payment",
        data={"amount": amount, "account_code": "090"},
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code in (302, 303), response.text[:300]


def status_of(invoice: Invoice) -> str:
    return Invoice.objects.values_list("status", flat=True).get(pk=invoice.pk)
