"""Support sees a tenant's writes to Xero that need attention, with Xero's answer, and retries them (audited)."""

import datetime as dt

import pytest
from django.urls import reverse

from integrations.models import IntegrationAuditEvent
from integrations.outbound.models import OutboundAttempt, OutboundOperation
from tests.factories import make_connection

pytestmark = pytest.mark.django_db
OTHER_ID = "11111111-2222-4333-8444-555555555555"


@pytest.fixture
def stuck(org_a):
    connection = make_connection(organisation=org_a)
    operation = OutboundOperation.objects.create(
        organisation=org_a,
        tenant_id=connection.tenant_id,
        kind="invoice_change",
        payload={"InvoiceID": "0f0d5a46-9c4a-4f7e-8a39-2d2c4a7b1e01", "Status": "VOIDED"},
        idempotency_key="coordinoter-change-stuck",
        state=OutboundOperation.State.NEEDS_ATTENTION,
        lookups=4,
        last_error="Xero's answer could not be confirmed after 4 lookups: Xero answered about invoice "
        f"{OTHER_ID}, not 0f0d5a46-9c4a-4f7e-8a39-2d2c4a7b1e01",
        last_answer={"InvoiceID": OTHER_ID, "Status": "VOIDED"},
        correlation_id="corr-777",
    )
    OutboundAttempt.objects.create(
        operation=operation, action="send", outcome="unconfirmed", http_status=200, started_at=operation.created_at
    )
    return operation


def test_support_sees_the_write_with_xeros_answer_when_it_needs_attention(login_as, support_user, stuck, org_a):
    body = login_as(support_user).get(reverse("integrations:support_organisation", args=[org_a.pk])).content.decode()
    assert "Writes to Xero needing attention" in body
    assert "Invoice edit, void or delete" in body and OTHER_ID in body and "corr-777" in body
    assert "Send: Answer did not match what was sent (200)" in body
    assert reverse("integrations:support_operation_retry", args=[org_a.pk, stuck.pk]) in body


def test_support_sees_when_the_write_stopped_with_its_time_zone_named_once(login_as, support_user, stuck, org_a):
    stuck.completed_at = dt.datetime(2026, 12, 7, 11, 30, tzinfo=dt.UTC)
    stuck.save(update_fields=["completed_at"])
    body = login_as(support_user).get(reverse("integrations:support_organisation", args=[org_a.pk])).content.decode()
    assert "2026-12-07 11:30 UTC</span>" in body and "UTC UTC" not in body


def test_support_retry_sends_it_again_and_is_audited_when_posted(
    login_as, support_user, stuck, org_a, enqueued, django_capture_on_commit_callbacks
):
    url = reverse("integrations:support_operation_retry", args=[org_a.pk, stuck.pk])
    with django_capture_on_commit_callbacks(execute=True):
        response = login_as(support_user).post(url)
    assert response.status_code == 302
    stuck.refresh_from_db()
    assert (stuck.state, stuck.lookups, stuck.idempotency_key) == ("pending", 0, "coordinoter-change-stuck")
    event = IntegrationAuditEvent.objects.get(organisation=org_a, action="xero_write_retried")
    assert (event.actor, event.actor_kind, event.outcome) == (support_user, "support", "success")
    assert enqueued.names() == ["integrations.outbound.tasks.run_operation"]


def test_retry_of_another_organisations_write_is_404(login_as, support_user, stuck, org_b):
    url = reverse("integrations:support_operation_retry", args=[org_b.pk, stuck.pk])
    assert login_as(support_user).post(url).status_code == 404
    stuck.refresh_from_db()
    assert stuck.state == "needs_attention"


def test_retry_is_forbidden_when_not_support_staff(login_as, admin_a, stuck, org_a):
    url = reverse("integrations:support_operation_retry", args=[org_a.pk, stuck.pk])
    assert login_as(admin_a).post(url).status_code == 403
