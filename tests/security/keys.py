"""How to fill every keyed URL pattern with one tenant's objects (the tenant crawl and the role matrix)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from integrations.models import XeroPendingTenantChoice
from integrations.outbound.models import OutboundOperation
from invoices.models import CancelledInvoice, CreditNoteAllocation
from organisations.models import Invitation, Membership, SupportRequest
from tests.security.routes import Route
from tests.security.world import Tenant


def _org(t: Tenant) -> dict:
    return {"pk": t.organisation.pk}


def _signup_choice(t: Tenant) -> dict:
    """A sign-up with Xero's open choice: owned by a user (the tenant's admin), not by an organisation."""
    choice = XeroPendingTenantChoice.objects.filter(user=t.admin, organisation__isnull=True).first()
    if choice is None:
        now = timezone.now()
        choice = XeroPendingTenantChoice.objects.create(
            organisation=None,
            user=t.admin,
            session_digest="s" * 64,
            created_at=now,
            expires_at=now + dt.timedelta(minutes=10),
            candidates=[
                {
                    "id": str(uuid.uuid4()),
                    "tenant_id": str(uuid.uuid4()),
                    "tenant_type": "ORGANISATION",
                    "tenant_name": f"{t.marker} Sign-up Candidate Ltd",
                }
            ],
        )
    return {"pk": choice.pk}


# How to fill each keyed product URL with a tenant's objects.
FILL: dict[str, Callable[[Tenant], dict]] = {
    "password_reset_confirm": lambda t: {
        "uidb64": urlsafe_base64_encode(force_bytes(t.admin.pk)),
        "token": "set-password",
    },
    "integrations:xero_choose": lambda t: {"pk": t.get(XeroPendingTenantChoice).pk},
    "xero_signin:choose": _signup_choice,
    "integrations:support_organisation": _org,
    "integrations:support_xero_disconnect": _org,
    "integrations:support_xero_refresh": _org,
    "integrations:support_xero_request_reconnect": _org,
    "integrations:support_request_resolve": lambda t: {"pk": t.get(SupportRequest).pk},
    "integrations:support_operation_retry": lambda t: {
        "pk": t.organisation.pk,
        "operation_id": t.get(OutboundOperation).pk,
    },
    "integrations:support_request": lambda t: {"pk": t.get(SupportRequest).pk},
    "organisations:people_role": lambda t: {"pk": t.get(Membership).pk},
    "organisations:people_remove": lambda t: {"pk": t.get(Membership).pk},
    "organisations:people_invitation_revoke": lambda t: {"pk": t.get(Invitation).pk},
    # Only the token's hash is stored: the crawl cannot know a real token, and a made-up one is not found (404).
    "organisations:invitation": lambda t: {"token": f"{t.marker}-not-a-token-0000000000"},
    "invoices_support:batches": lambda t: {"org": t.organisation.pk},
    "invoices_support:batch": lambda t: {"org": t.organisation.pk, "pk": t.batch.pk},
    "invoices_support:invoice": lambda t: {"org": t.organisation.pk, "pk": t.batch.pk, "invoice_pk": t.invoice.pk},
    "invoices:batch_detail": lambda t: {"pk": t.batch.pk},
    "invoices:batch_progress": lambda t: {"pk": t.batch.pk},
    "invoices:batch_retry": lambda t: {"pk": t.batch.pk},
    "invoices:invoice_retry": lambda t: {"pk": t.batch.pk, "invoice_pk": t.failed_invoice.pk},
    "invoices:invoice_fix": lambda t: {"pk": t.failed_invoice.pk},
    "invoices:invoice_cancel": lambda t: {"pk": t.failed_invoice.pk},
    "invoices:invoice_resend": lambda t: {"pk": t.failed_invoice.pk},
    "invoices:credit_note_fix": lambda t: {"pk": t.failed_credit_note.pk},
    "invoices:credit_note_cancel": lambda t: {"pk": t.failed_credit_note.pk},
    "invoices:credit_note_resend": lambda t: {"pk": t.failed_credit_note.pk},
    "invoices:credit_note_allocation_retry": lambda t: {"pk": t.get(CreditNoteAllocation).pk},
    "invoices:credit_note_allocation_remove": lambda t: {"pk": t.get(CreditNoteAllocation).pk},
    "invoices:batch_send": lambda t: {"pk": t.get(CancelledInvoice).batch_id},
    "webhooks:support_organisation_inbox": _org,
    "webhooks:support_retry_failed": _org,
    "webhooks:support_reconcile": _org,
    "invoices_xero:invoice_void": lambda t: {"pk": t.invoice.pk},
    "invoices_xero:invoice_delete": lambda t: {"pk": t.invoice.pk},
    "invoices_xero:invoice_edit": lambda t: {"pk": t.invoice.pk},
}


def _admin_object(model, tenant: Tenant):
    if model is get_user_model():
        return tenant.admin
    if model is Group:
        return Group.objects.get(name="Support")
    return tenant.objects[model]


def admin_fill(route: Route, tenant: Tenant) -> dict:
    """Django admin URLs: each model's object pages with the tenant's row of that model."""
    values: dict = {}
    if "app_label" in route.kwargs:
        values["app_label"] = "invoices"
    if "url" in route.kwargs:
        values["url"] = f"invoices/invoice/{tenant.invoice.pk}/"
    if route.name == "admin:view_on_site":
        return {
            "content_type_id": ContentType.objects.get_for_model(type(tenant.invoice)).pk,
            "object_id": tenant.invoice.pk,
        }
    if {"object_id", "id"} & set(route.kwargs):
        parts = route.route.split("/")
        model = next(m for m in admin.site._registry if (m._meta.app_label, m._meta.model_name) == tuple(parts[1:3]))
        key = "object_id" if "object_id" in route.kwargs else "id"
        values[key] = _admin_object(model, tenant).pk
    return values


def fill(route: Route, tenant: Tenant) -> dict:
    if route.is_admin:
        return admin_fill(route, tenant)
    return FILL[route.name](tenant)
