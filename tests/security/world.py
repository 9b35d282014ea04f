"""Two organisations with one row of every tenant-owned model each, and the people the security suites act as.

Every name a tenant owns carries its marker (ALPHAQX / BRAVOQX), so a page that shows another tenant's rows is
found by searching its HTML for the marker. `TENANT_MODELS` is checked against the models: a new model with an
organisation key that the world does not build fails tests/security/test_tenant_crawl.py.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from decimal import Decimal

from django.apps import apps
from django.db import models
from django.utils import timezone

from integrations.audit import audit_event_record
from integrations.models import (
    IntegrationAuditEvent,
    ReconciliationState,
    WebhookEvent,
    XeroApiUsage,
    XeroConnection,
    XeroOAuthState,
    XeroPendingTenantChoice,
)
from integrations.outbound.models import OutboundAttempt, OutboundOperation
from integrations.usage import record as usage_record
from integrations.xero import tokens
from invoices.created_in_xero.models import XeroContactVersion, XeroCreatedInvoice, XeroInvoiceChange
from invoices.models import (
    CancelledInvoice,
    CreditNote,
    CreditNoteAllocation,
    CreditNoteEvent,
    Customer,
    Invoice,
    InvoiceBatch,
    InvoiceEvent,
    InvoiceLine,
    Payment,
    XeroMapping,
)
from invoices.outbound.chunks import CHUNK_KIND
from organisations.models import Invitation, Membership, Organisation, OrganisationAuditEvent, SupportRequest
from organisations.people.services import invitation_create
from tests.factories import make_connection, make_membership, make_organisation, make_token_set, make_user

ROLES = ("anonymous", "accountant", "admin", "other_admin", "support", "support_member")


@dataclass
class Tenant:
    marker: str
    organisation: Organisation
    admin: object
    accountant: object
    objects: dict[type[models.Model], models.Model] = field(default_factory=dict)
    failed_invoice: Invoice | None = None
    failed_credit_note: CreditNote | None = None
    # The push chunk (an outbound operation of kind invoice_chunk) the synced invoice went in. Not in `objects`:
    # objects[OutboundOperation] is the invoice change's operation (support retries it, tests/security/keys.py).
    chunk: OutboundOperation | None = None

    def get(self, model: type[models.Model]) -> models.Model:
        return self.objects[model]

    @property
    def batch(self) -> InvoiceBatch:
        return self.objects[InvoiceBatch]

    @property
    def invoice(self) -> Invoice:
        return self.objects[Invoice]


@dataclass
class World:
    a: Tenant
    b: Tenant
    users: dict[str, object]


def _tenant(marker: str, *, number: int) -> Tenant:
    org = make_organisation(name=f"{marker} Holdings")
    admin = make_user(email=f"admin@{marker.lower()}.test")
    accountant = make_user(email=f"accountant@{marker.lower()}.test")
    make_membership(user=admin, organisation=org, role="admin")
    membership = make_membership(user=accountant, organisation=org, role="accountant")
    tenant = Tenant(marker=marker, organisation=org, admin=admin, accountant=accountant)
    o = tenant.objects
    o[Organisation] = org
    o[Membership] = membership
    now = timezone.now()
    tenant_id = f"{number:08d}-0000-4000-8000-00000000000{number}"
    o[XeroConnection] = make_connection(
        organisation=org,
        tenant_id=tenant_id,
        tenant_name=f"{marker} Xero Ltd",
        connection_id=f"{number:08d}-1111-4000-8000-000000000000",
    )
    o[XeroMapping] = XeroMapping.objects.create(
        organisation=org,
        revenue_account_code="200",
        revenue_account_name=f"{marker} Sales",
        tax_type="OUTPUT",
        tax_name="GST on Income",
    )
    o[Invitation] = invitation_create(
        organisation=org, email=f"invitee@{marker.lower()}.test", role="accountant", invited_by=admin
    ).invitation
    o[OrganisationAuditEvent] = OrganisationAuditEvent.objects.get(organisation=org, action="invitation_sent")
    o[SupportRequest] = SupportRequest.objects.create(
        organisation=org, user=admin, subject=f"{marker} help request", message=f"{marker} cannot see invoices"
    )
    o[XeroOAuthState] = XeroOAuthState.objects.create(
        state_digest=f"{number:064d}",
        organisation=org,
        user=admin,
        session_digest="s" * 64,
        code_verifier=f"{marker}-verifier-" + "v" * 40,
        created_at=now,
        expires_at=now + dt.timedelta(minutes=10),
    )
    pending = XeroPendingTenantChoice.objects.create(
        organisation=org,
        user=admin,
        session_digest="s" * 64,
        created_at=now,
        expires_at=now + dt.timedelta(minutes=10),
        candidates=[
            {
                "id": str(uuid.uuid4()),
                "tenant_id": str(uuid.uuid4()),
                "tenant_type": "ORGANISATION",
                "tenant_name": f"{marker} Candidate Ltd",
            }
        ],
    )
    tokens.pending_tokens_save(pending=pending, token_set=make_token_set())
    o[XeroPendingTenantChoice] = pending
    o[IntegrationAuditEvent] = audit_event_record(
        organisation=org, action="connected", actor=admin, detail={"tenant_name": f"{marker} Xero Ltd"}
    )
    o[WebhookEvent] = WebhookEvent.objects.create(
        organisation=org,
        tenant_id=tenant_id,
        category="INVOICE",
        event_type="UPDATE",
        resource_id=f"{marker}-resource",
        event_date=now,
        state=WebhookEvent.State.FAILED,
        last_error=f"{marker} fetch failed",
        received_at=now,
    )
    o[ReconciliationState] = ReconciliationState.objects.create(
        organisation=org,
        drift_total=1,
        drift_recent=[
            {
                "category": "INVOICE",
                "resource_id": str(uuid.uuid4()),
                "label": f"{marker}-DRIFT",
                "outcome": "applied",
                "summary": f"{marker} paid in Xero",
                "at": now.isoformat(),
            }
        ],
    )
    customer = Customer.objects.create(
        organisation=org, name=f"{marker} Customer", email=f"c@{marker}.test", xero_contact_id=str(uuid.uuid4())
    )
    o[Customer] = customer
    batch = InvoiceBatch.objects.create(
        organisation=org, name=f"{marker} Batch", created_by=admin, eligibility=InvoiceBatch.Eligibility.ELIGIBLE
    )
    o[InvoiceBatch] = batch
    chunk = OutboundOperation.objects.create(
        organisation=org,
        tenant_id=tenant_id,
        kind=CHUNK_KIND,
        state=OutboundOperation.State.DONE,
        idempotency_key=f"{marker}-key-{uuid.uuid4().hex}",
        attempts=1,
        sends=1,
    )
    tenant.chunk = chunk
    call = OutboundAttempt.objects.create(
        operation=chunk,
        action=OutboundAttempt.Action.SEND,
        started_at=now,
        outcome=OutboundAttempt.Outcome.CONFIRMED,
        http_status=200,
        detail=f"{marker} attempt",
    )
    o.setdefault(OutboundAttempt, call)  # the chunk's call, unless another operation's was keyed first
    usage_record.xero_call_recorded(organisation_id=org.pk, status=200, min_remaining=59, day_remaining=4999, at=now)
    o[XeroApiUsage] = XeroApiUsage.objects.get(organisation=org)
    # A synced invoice in Xero (void/edit/delete apply), and a failed one (retry applies).
    invoice = Invoice.objects.create(
        organisation=org,
        batch=batch,
        customer=customer,
        number=f"{marker}-INV-1",
        reference=f"{marker} ref",
        issue_date=dt.date(2026, 11, 1),
        due_date=dt.date(2026, 11, 15),
        status="DRAFT",
        xero_status="DRAFT",
        sync_state=Invoice.SyncState.SYNCED,
        xero_invoice_id=str(uuid.uuid4()),
        xero_updated_at=now,
        subtotal=Decimal("100.00"),
        total_tax=Decimal("10.00"),
        total=Decimal("110.00"),
        amount_due=Decimal("110"),
        chunk=chunk,
    )
    o[Invoice] = invoice
    o[InvoiceLine] = InvoiceLine.objects.create(
        invoice=invoice, description=f"{marker} consulting", quantity=Decimal("1"), unit_amount=Decimal("100.00")
    )
    failed = Invoice.objects.create(
        organisation=org,
        batch=batch,
        customer=customer,
        number=f"{marker}-INV-2",
        issue_date=dt.date(2026, 11, 1),
        due_date=dt.date(2026, 11, 15),
        sync_state=Invoice.SyncState.FAILED,
        total=Decimal("55.00"),
        sync_errors=[{"Message": f"{marker} account code is not valid"}],
    )
    InvoiceLine.objects.create(invoice=failed, description=f"{marker} support", unit_amount=Decimal("50.00"))
    tenant.failed_invoice = failed
    o[InvoiceEvent] = InvoiceEvent.objects.create(
        invoice=invoice,
        organisation=org,
        source="coordinoter",
        kind="created",
        message=f"{marker} created",
        actor=admin,
    )
    o[Payment] = Payment.objects.create(
        organisation=org,
        invoice=invoice,
        xero_payment_id=str(uuid.uuid4()),
        date=dt.date(2026, 11, 20),
        amount=Decimal("10.00"),
        reference=f"{marker} payment",
    )
    # A batch created before Xero was connected (Send to Xero applies), with an invoice cancelled before it went.
    unsent = InvoiceBatch.objects.create(organisation=org, name=f"{marker} Unsent batch", created_by=admin)
    o[CancelledInvoice] = CancelledInvoice.objects.create(
        organisation=org,
        batch=unsent,
        number=f"{marker}-INV-9",
        customer_name=f"{marker} Customer",
        currency="AUD",
        total=Decimal("5.00"),
        sync_state="not_synced",
        history=[{"when": "2026-11-01 10:00:00", "message": f"{marker} created", "actor": admin.email}],
        cancelled_by=admin,
    )
    o[XeroCreatedInvoice] = XeroCreatedInvoice.objects.create(
        organisation=org,
        xero_invoice_id=str(uuid.uuid4()),
        number=f"{marker}-XC-1",
        contact_name=f"{marker} Walk-in",
        status="AUTHORISED",
        currency="AUD",
        issue_date=dt.date(2026, 11, 3),
        total=Decimal("12.00"),
        amount_due=Decimal("12.00"),
    )
    o[XeroContactVersion] = XeroContactVersion.objects.create(
        organisation=org, xero_contact_id=str(uuid.uuid4()), xero_updated_at=now
    )
    o[XeroInvoiceChange] = XeroInvoiceChange.objects.create(
        organisation=org,
        invoice=failed,
        action="void",
        state="refused",
        idempotency_key=f"{marker}-{uuid.uuid4()}",
        last_error=f"{marker} refused by Xero",
        completed_at=now,
        requested_by=admin,
    )
    # A credit note in Xero, allocated to the synced invoice (the batch page lists it).
    o[CreditNote] = CreditNote.objects.create(
        organisation=org,
        batch=batch,
        customer=customer,
        number=f"{marker}-CN-1",
        issue_date=dt.date(2026, 11, 2),
        sync_state=Invoice.SyncState.SYNCED,
        xero_credit_note_id=str(uuid.uuid4()),
        xero_status="AUTHORISED",
        total=Decimal("11.00"),
        remaining_credit=Decimal("11.00"),
    )
    o[CreditNote].lines.create(description=f"{marker} refund", unit_amount=Decimal("10.00"))
    # A credit note Xero refused, with its history: it can be fixed, resent or cancelled.
    failed_note = CreditNote.objects.create(
        organisation=org,
        batch=batch,
        customer=customer,
        number=f"{marker}-CN-2",
        issue_date=dt.date(2026, 11, 2),
        sync_state=Invoice.SyncState.FAILED,
        total=Decimal("22.00"),
        sync_errors=[f"{marker} account code is not valid"],
    )
    failed_note.lines.create(description=f"{marker} returned", unit_amount=Decimal("20.00"))
    tenant.failed_credit_note = failed_note
    o[CreditNoteEvent] = CreditNoteEvent.objects.create(
        credit_note=failed_note, organisation=org, source="system", kind="refused", message=f"{marker} refused"
    )
    o[CreditNoteAllocation] = CreditNoteAllocation.objects.create(
        organisation=org, credit_note=o[CreditNote], invoice=invoice, state="waiting", requested_by=admin
    )
    o[OutboundOperation] = OutboundOperation.objects.create(
        organisation=org,
        tenant_id=str(uuid.uuid4()),
        kind="invoice_change",
        subject_id=o[XeroInvoiceChange].pk,
        payload={"InvoiceID": str(uuid.uuid4()), "Status": "VOIDED"},
        idempotency_key=f"{marker}-op-{uuid.uuid4()}",
        state="needs_attention",
        last_error=f"{marker} could not be confirmed",
        requested_by=admin,
    )
    return tenant


def make_world() -> World:
    a = _tenant("ALPHAQX", number=1)
    b = _tenant("BRAVOQX", number=2)
    support = make_user(email="support@coordinoter.test", support=True)
    support_member = make_user(email="support-member@coordinoter.test", support=True)
    make_membership(user=support_member, organisation=a.organisation, role="accountant")
    users = {
        "anonymous": None,
        "accountant": a.accountant,
        "admin": a.admin,
        "other_admin": b.admin,
        "support": support,
        "support_member": support_member,
    }
    return World(a=a, b=b, users=users)


def tenant_models() -> list[type[models.Model]]:
    """Every model with a key to Organisation, plus the rows that hang off an invoice (its lines) and off an outbound
    operation (its calls: a push chunk's among them)."""
    found = [
        model
        for model in apps.get_models()
        if any(
            isinstance(f, models.ForeignKey) and f.related_model is Organisation for f in model._meta.concrete_fields
        )
    ]
    return [Organisation, *found, InvoiceLine, OutboundAttempt]


def snapshot(tenant: Tenant) -> dict[str, list[dict]]:
    """Every row the tenant owns, as stored: compared before and after a crawl to prove nothing changed."""
    org = tenant.organisation
    rows: dict[str, list[dict]] = {}
    for model in tenant_models():
        if model is Organisation:
            qs = Organisation.objects.filter(pk=org.pk)
        elif model is InvoiceLine:
            qs = InvoiceLine.objects.filter(invoice__organisation=org)
        elif model is OutboundAttempt:
            qs = OutboundAttempt.objects.filter(operation__organisation=org)
        else:
            qs = model.objects.filter(organisation=org)
        rows[model._meta.label] = list(qs.order_by("pk").values())
    return rows
