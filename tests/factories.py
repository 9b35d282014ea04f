"""Small `make_*` factories: the data a test needs, said in the test. The one place test data is made (tests and
bench); tests/support/ holds live-process helpers (sandbox, workers), not data."""

from __future__ import annotations

import base64
import datetime
import itertools
import json
import secrets
import time
import uuid
from decimal import Decimal
from typing import Any

import pyotp
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from integrations.models import XeroConnection
from integrations.xero import tokens
from integrations.xero.types import TokenSet
from invoices.models import CreditNote, Customer, Invoice, InvoiceBatch, InvoiceLine, XeroMapping
from invoices.services.batches import InvoiceInput, LineInput
from organisations.mfa.services import SESSION_VERIFIED_AT, SESSION_VERIFIED_USER, totp_device_set
from organisations.models import Membership, Organisation, TotpDevice
from organisations.roles import SUPPORT_GROUP

PASSWORD = "correct horse battery staple"
_seq = itertools.count(1)


def make_organisation(*, name: str | None = None) -> Organisation:
    return Organisation.objects.create(name=name or f"Organisation {next(_seq)}")


def make_user(*, email: str | None = None, password: str = PASSWORD, support: bool = False):
    email = email or f"user{next(_seq)}@example.test"
    user = get_user_model().objects.create_user(username=email, email=email, password=password, is_staff=support)
    if support:
        user.groups.add(Group.objects.get_or_create(name=SUPPORT_GROUP)[0])
    return user


def make_totp_device(*, user, secret: str | None = None):
    """A confirmed TOTP device for a staff user (the secret is readable back from the row, as the tests need)."""
    return totp_device_set(user=user, secret=secret or pyotp.random_base32())


def totp_code_for(user) -> str:
    """The code an authenticator app would show for the user's device now, or for the next time step when this
    one was already used (a second sign-in within 30 seconds; the server accepts one step of drift)."""
    device = TotpDevice.objects.get(user=user)
    step = int(time.time()) // 30
    if device.last_used_step is not None and device.last_used_step >= step:
        step = device.last_used_step + 1
    return pyotp.TOTP(device.secret).generate_otp(step)


def mfa_verify_client(client, user):
    """The one way tests sign staff past the second factor: a device if the user has none, and the session marked
    verified as organisations.mfa.services.mfa_session_mark does. Call after client.login / force_login."""
    if not TotpDevice.objects.filter(user=user, confirmed_at__isnull=False).exists():
        make_totp_device(user=user)
    session = client.session
    session[SESSION_VERIFIED_AT] = int(time.time())
    session[SESSION_VERIFIED_USER] = user.pk
    session.save()
    return client


def make_membership(*, user, organisation: Organisation, role: str = "admin") -> Membership:
    return Membership.objects.create(user=user, organisation=organisation, role=role)


def make_customer(*, organisation: Organisation, name: str | None = None) -> Customer:
    return Customer.objects.create(organisation=organisation, name=name or f"Customer {next(_seq)}")


def make_batch(
    *,
    organisation: Organisation,
    name: str | None = None,
    invoices: int = 1,
    eligibility: str = InvoiceBatch.Eligibility.BEFORE_CONNECTION,
    sync_state: str = Invoice.SyncState.NOT_SYNCED,
) -> InvoiceBatch:
    batch = InvoiceBatch.objects.create(
        organisation=organisation, name=name or f"Batch {next(_seq)}", eligibility=eligibility
    )
    customer = make_customer(organisation=organisation)
    for _ in range(invoices):
        n = next(_seq)
        invoice = Invoice.objects.create(
            organisation=organisation,
            batch=batch,
            customer=customer,
            number=f"INV-{n:05d}",
            issue_date=datetime.date(2026, 11, 1),
            due_date=datetime.date(2026, 11, 15),
            total=Decimal("110.00"),
            amount_due=Decimal("110.00"),
            sync_state=sync_state,
        )
        InvoiceLine.objects.create(
            invoice=invoice, description="Service", quantity=Decimal("1"), unit_amount=Decimal("100.00")
        )
    return batch


def make_credit_note(
    *,
    batch: InvoiceBatch,
    sync_state: str = "not_synced",
    xero_status: str = "",
    customer: Customer | None = None,
    **fields,
) -> CreditNote:
    """A credit note in the batch (for its first invoice's customer unless told), with these sync state and Xero
    status: an id in Xero once Xero has a status for it, Xero's refusal when it failed."""
    n = next(_seq)
    values: dict[str, Any] = dict(
        number=f"CN-{n:05d}",
        issue_date=datetime.date(2026, 11, 1),
        total=Decimal("11.00"),
        xero_credit_note_id=str(uuid.uuid4()) if xero_status else "",
        sync_errors=["Xero refused it."] if sync_state == Invoice.SyncState.FAILED else [],
    )
    values.update(fields)
    customer = customer or batch.invoices.order_by("pk").first().customer
    return CreditNote.objects.create(
        organisation=batch.organisation,
        batch=batch,
        customer=customer,
        sync_state=sync_state,
        xero_status=xero_status,
        **values,
    )


def make_batch_in_states(
    *,
    organisation: Organisation,
    invoices: tuple[tuple[str, str], ...],
    credit_notes: tuple[tuple[str, str], ...] = (),
    **batch_fields: Any,
) -> InvoiceBatch:
    """An eligible batch whose invoices, then credit notes, have these (sync state, Xero status). A paid invoice is
    paid in full, a paid or voided one owes nothing, and none is overdue."""
    batch = make_batch(organisation=organisation, invoices=len(invoices), eligibility="eligible", **batch_fields)
    for invoice, (sync, xero) in zip(batch.invoices.order_by("number"), invoices, strict=True):
        Invoice.objects.filter(pk=invoice.pk).update(
            sync_state=sync,
            xero_status=xero,
            xero_invoice_id=f"id-{invoice.pk}" if xero else "",
            amount_due=Decimal("0") if xero in ("PAID", "VOIDED") else Decimal("110"),
            amount_paid=Decimal("110") if xero == "PAID" else Decimal("0"),
            due_date=datetime.date(2099, 1, 1),
        )
    for sync, xero in credit_notes:
        make_credit_note(batch=batch, sync_state=sync, xero_status=xero)
    return batch


# ---------------------------------------------------------------- Xero webhooks and the two-way sync


def make_xero_event(
    *,
    tenant_id: str,
    resource_id: str | None = None,
    category: str = "INVOICE",
    event_type: str = "UPDATE",
    at: str = "2026-11-24T10:00:00.123",
) -> dict:
    """One event as Xero puts it in a webhook delivery (ids only, no resource data)."""
    resource_id = resource_id or str(uuid.uuid4())
    path = "Invoices" if category == "INVOICE" else "Contacts"
    return {
        "resourceUrl": f"https://api.xero.com/api.xro/2.0/{path}/{resource_id}",
        "resourceId": resource_id,
        "eventDateUtc": at,
        "eventType": event_type,
        "eventCategory": category,
        "tenantId": tenant_id,
        "tenantType": "ORGANISATION",
    }


def make_webhook_delivery(*, events: list[dict], key: str, sequence: int = 1) -> tuple[bytes, str]:
    """(raw body, x-xero-signature) of a delivery signed as Xero signs it."""
    from integrations.xero.signatures import webhook_signature

    body = json.dumps(
        {
            "events": events,
            "firstEventSequence": sequence if events else 0,
            "lastEventSequence": sequence + len(events) - 1 if events else 0,
            "entropy": f"ENTROPY{next(_seq)}",
        },
        separators=(",", ":"),
    ).encode()
    return body, webhook_signature(body=body, key=key)


def make_pushed_invoice(
    *,
    organisation: Organisation,
    xero_invoice_id: str,
    xero_updated_at=None,
    status: str = "AUTHORISED",
    number: str | None = None,
    customer: Customer | None = None,
    total: str = "110.00",
) -> Invoice:
    """An invoice already in Xero (synced), as the push pipeline leaves it."""
    batch = InvoiceBatch.objects.create(
        organisation=organisation, name=f"Batch {next(_seq)}", eligibility=InvoiceBatch.Eligibility.ELIGIBLE
    )
    customer = customer or make_customer(organisation=organisation)
    invoice = Invoice.objects.create(
        organisation=organisation,
        batch=batch,
        customer=customer,
        number=number or f"INV-{next(_seq):05d}",
        issue_date=datetime.date(2026, 11, 1),
        due_date=datetime.date(2026, 11, 15),
        status=status,
        xero_status=status,
        sync_state=Invoice.SyncState.SYNCED,
        xero_invoice_id=xero_invoice_id,
        xero_updated_at=xero_updated_at,
        subtotal=Decimal("100.00"),
        total_tax=Decimal("10.00"),
        total=Decimal(total),
        amount_due=Decimal(total),
    )
    InvoiceLine.objects.create(
        invoice=invoice,
        description="Service",
        quantity=Decimal("1"),
        unit_amount=Decimal("100.00"),
        account_code="200",
        tax_type="OUTPUT",
    )
    return invoice


def make_pending_batch(
    *, organisation: Organisation, invoices: int, customers: int = 10, prefix: str = "LT", currency: str = "AUD"
) -> InvoiceBatch:
    """An eligible batch of pending invoices, created in bulk (live tests and benchmarks; the caller enqueues)."""
    batch = InvoiceBatch.objects.create(
        organisation=organisation, name=f"{prefix} batch", eligibility=InvoiceBatch.Eligibility.ELIGIBLE
    )
    people = [
        Customer.objects.create(
            organisation=organisation, name=f"{prefix} Customer {i:03d}", email=f"c{i}@{prefix.lower()}.example"
        )
        for i in range(customers)
    ]
    rows = Invoice.objects.bulk_create(
        [
            Invoice(
                organisation=organisation,
                batch=batch,
                customer=people[i % customers],
                number=f"{prefix}-{i:05d}",
                currency=currency,
                issue_date=datetime.date(2026, 11, 2),
                due_date=datetime.date(2026, 11, 30),
                total=Decimal("110.00"),
                amount_due=Decimal("110.00"),
                sync_state=Invoice.SyncState.PENDING,
            )
            for i in range(invoices)
        ]
    )
    InvoiceLine.objects.bulk_create(
        [
            InvoiceLine(
                invoice=invoice, description="Monthly service", quantity=Decimal("1"), unit_amount=Decimal("100.00")
            )
            for invoice in rows
        ]
    )
    return batch


def make_line_input(description: str = "Consulting", quantity: str = "1", unit: str = "100.00", **kw: Any) -> LineInput:
    """One line as the batch service takes it (a form or CSV row, parsed)."""
    return LineInput(description=description, quantity=Decimal(quantity), unit_amount=Decimal(unit), **kw)


def make_invoice_input(
    number: str = "INV-0001", customer: str = "Harbour View", lines: list[LineInput] | None = None, **kw: Any
) -> InvoiceInput:
    """One invoice as the batch service takes it."""
    values: dict[str, Any] = dict(
        customer_name=customer,
        number=number,
        issue_date=datetime.date(2026, 11, 1),
        due_date=datetime.date(2026, 11, 15),
        currency="AUD",
        lines=[make_line_input()] if lines is None else lines,
    )
    values.update(kw)
    return InvoiceInput(**values)


# ---------------------------------------------------------------- Xero connections and tokens

TENANT_ID = "70784a63-d24b-46a9-a4db-0e70a274b056"
TENANT_NAME = "Maple Florists Ltd"
TENANT_SHORT_CODE = "!mF3pq"
CONNECTION_ID = "e1eede29-f875-4a5d-8470-17f6a29a88b1"
AUTH_EVENT_ID = "d99ecdfe-391d-43d2-b834-17636ba90e8d"
XERO_USER_ID = "7f1c2d3e-aaaa-4bbb-8ccc-000000000001"


def fake_jwt(**claims: Any) -> str:
    """An unsigned JWT-shaped access token carrying the claims we read (authentication_event_id, xero_userid)."""

    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    payload = {"jti": secrets.token_hex(8), **claims}
    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(payload)}.{secrets.token_urlsafe(16)}"


def make_token_set(
    *, expires_in: int = 1800, auth_event_id: str = AUTH_EVENT_ID, xero_user_id: str = XERO_USER_ID
) -> TokenSet:
    return TokenSet(
        access_token=fake_jwt(authentication_event_id=auth_event_id, xero_userid=xero_user_id),
        refresh_token="rt-" + secrets.token_hex(16),
        expires_at=timezone.now() + datetime.timedelta(seconds=expires_in),
        scopes=("offline_access", "accounting.invoices", "accounting.contacts", "accounting.settings"),
        authentication_event_id=auth_event_id,
        xero_user_id=xero_user_id,
    )


def make_connection(
    *,
    organisation: Organisation,
    status: str = XeroConnection.Status.ACTIVE,
    tenant_id: str = TENANT_ID,
    tenant_name: str = TENANT_NAME,
    tenant_short_code: str = TENANT_SHORT_CODE,
    base_currency: str = "AUD",  # the currency make_batch and make_invoice_input use
    connection_id: str = CONNECTION_ID,
    expires_in: int = 1800,
    xero_user_id: str = XERO_USER_ID,
    token_set: TokenSet | None = None,
    refresh_issued_days_ago: int = 0,
) -> XeroConnection:
    """The organisation's Xero connection in the given status, its tokens stored through the token store (the only
    writer of token fields)."""
    now = timezone.now()
    with transaction.atomic():
        connection = XeroConnection.objects.create(
            organisation=organisation,
            status=status,
            tenant_id=tenant_id,
            tenant_name=tenant_name,
            tenant_type="ORGANISATION",
            tenant_short_code=tenant_short_code,
            base_currency=base_currency,
            connection_id=connection_id,
            auth_event_id=AUTH_EVENT_ID,
            xero_user_id=xero_user_id,
            connected_at=now - datetime.timedelta(days=3),
            status_changed_at=now - datetime.timedelta(days=3),
        )
        tokens.connection_tokens_save(
            connection=connection,
            token_set=token_set or make_token_set(expires_in=expires_in, xero_user_id=xero_user_id),
        )
        if refresh_issued_days_ago:
            XeroConnection.objects.filter(pk=connection.pk).update(
                refresh_token_issued_at=now - datetime.timedelta(days=refresh_issued_days_ago)
            )
    connection.refresh_from_db()
    return connection


def make_connected_organisation(
    *,
    organisation: Organisation,
    contact_ids: bool = True,
    invoices: int = 3,
    mapping: bool = True,
    status: str = XeroConnection.Status.ACTIVE,
) -> tuple[XeroConnection, InvoiceBatch]:
    """A connected organisation with a mapping and an eligible batch of pending invoices (one customer), as the push
    starts from."""
    connection = make_connection(organisation=organisation, status=status)
    if mapping:
        XeroMapping.objects.create(organisation=organisation, revenue_account_code="200", tax_type="OUTPUT")
    batch = make_batch(
        organisation=organisation,
        invoices=invoices,
        eligibility=InvoiceBatch.Eligibility.ELIGIBLE,
        sync_state=Invoice.SyncState.PENDING,
    )
    if contact_ids:
        for customer in {invoice.customer for invoice in batch.invoices.all()}:
            customer.xero_contact_id = str(uuid.uuid4())
            customer.save(update_fields=["xero_contact_id"])
    return connection, batch


# ---------------------------------------------------------------- Xero's answers


def token_response(
    *,
    refresh_token: str | None = None,
    auth_event_id: str = AUTH_EVENT_ID,
    xero_user_id: str = XERO_USER_ID,
    expires_in: int = 1800,
) -> dict:
    """A body like Xero's token endpoint answer."""
    return {
        "access_token": fake_jwt(authentication_event_id=auth_event_id, xero_userid=xero_user_id),
        "expires_in": expires_in,
        "token_type": "Bearer",
        "refresh_token": refresh_token or "rt-" + secrets.token_hex(16),
        "scope": "offline_access openid profile email accounting.invoices accounting.contacts accounting.settings",
    }


def echo_invoices(
    request, *, warnings: dict[str, list[str]] | None = None, errors: dict[str, list[str]] | None = None
) -> tuple[int, dict, str]:
    """Xero's answer to PUT /Invoices?summarizeErrors=false (a `responses` callback): every element echoed with its
    outcome."""
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


def chart_read_from_xero(organisation: Organisation) -> None:
    """The organisation's accounts, tax rates and currencies read once from (mocked) Xero, as the form and mapping
    page do: accounts 200 and 260 are active revenue accounts (210 is archived, 400 an expense); OUTPUT and
    EXEMPTOUTPUT apply to sales (INPUT does not, TAX001 is deleted); AUD, NZD and USD are enabled."""
    from pathlib import Path

    import responses
    from django.conf import settings

    from invoices.services.mapping import currencies_enabled, mapping_choices

    fixtures = Path(__file__).resolve().parent / "fixtures" / "xero"
    with responses.RequestsMock() as mocked:
        mocked.get(f"{settings.XERO_API_URL}/Accounts", json=json.loads((fixtures / "accounts.json").read_text()))
        mocked.get(f"{settings.XERO_API_URL}/TaxRates", json=json.loads((fixtures / "tax_rates.json").read_text()))
        mocked.get(f"{settings.XERO_API_URL}/Currencies", json=json.loads((fixtures / "currencies.json").read_text()))
        mapping_choices(organisation=organisation)
        currencies_enabled(organisation=organisation)
