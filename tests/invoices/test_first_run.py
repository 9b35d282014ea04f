"""The dashboard's first run: the setup checklist until it is done, then the admins' health card; the next step
offered on Manage Integrations after connecting."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from integrations.models import XeroApiUsage
from invoices.models import Invoice, InvoiceBatch, XeroMapping
from tests.factories import make_batch, make_connection

pytestmark = pytest.mark.django_db


def _mapping(organisation):
    XeroMapping.objects.create(organisation=organisation, revenue_account_code="200", tax_type="OUTPUT")


def _dashboard(client) -> str:
    return client.get(reverse("invoices:dashboard")).content.decode()


def test_checklist_shows_connect_as_the_next_step_when_nothing_is_set_up(login_as, admin_a, org_a):
    body = _dashboard(login_as(admin_a))
    assert 'id="setup-checklist"' in body and "0 of 3 done" in body
    assert 'class="next" id="step-connect"' in body
    assert reverse("integrations:manage") in body and 'id="health-card"' not in body


def test_checklist_moves_to_the_mapping_when_xero_is_connected(login_as, admin_a, org_a):
    make_connection(organisation=org_a)
    body = _dashboard(login_as(admin_a))
    assert "1 of 3 done" in body and 'class="done" id="step-connect"' in body
    assert 'class="next" id="step-mapping"' in body and "Connected to Maple Florists Ltd." in body


def test_accountant_sees_the_checklist_without_buttons_when_setup_is_unfinished(login_as, accountant_a, org_a):
    body = _dashboard(login_as(accountant_a))
    assert 'id="setup-checklist"' in body and "An admin of Org A does this step." in body
    assert "Connect to Xero</a>" not in body


def test_health_card_replaces_the_checklist_for_admins_when_setup_is_done(login_as, admin_a, accountant_a, org_a):
    connection = make_connection(organisation=org_a)
    _mapping(org_a)
    batch = make_batch(organisation=org_a, invoices=3)
    InvoiceBatch.objects.filter(pk=batch.pk).update(eligibility="eligible")
    first, second, third = batch.invoices.order_by("pk")
    Invoice.objects.filter(pk=first.pk).update(sync_state="failed")
    Invoice.objects.filter(pk=second.pk).update(sync_state="needs_attention")
    Invoice.objects.filter(pk=third.pk).update(sync_state="synced", xero_status="AUTHORISED")
    now = timezone.now().replace(second=0, microsecond=0)
    for minutes_ago, calls, remaining in ((30, 40, 4960), (5, 12, 4921)):
        XeroApiUsage.objects.create(
            organisation=org_a,
            minute=now - dt.timedelta(minutes=minutes_ago),
            calls=calls,
            day_remaining=remaining,
            updated_at=now,
        )
    XeroApiUsage.objects.create(organisation=org_a, minute=now - dt.timedelta(hours=25), calls=999, updated_at=now)
    connection.last_synced_at = now
    connection.save(update_fields=["last_synced_at"])

    body = _dashboard(login_as(admin_a))
    assert 'id="setup-checklist"' not in body and 'id="health-card"' in body
    assert "Connected</span>" in body and "Maple Florists Ltd" in body
    assert ">1 invoice</a>" in body  # one needs attention, one failed: each its own figure
    assert "52 <span" in body and "of 5000 a day" in body and "Xero said 4921 left" in body

    client = login_as(accountant_a)
    body = _dashboard(client)
    assert 'id="health-card"' not in body and 'id="setup-checklist"' not in body


def test_manage_integrations_offers_the_mapping_as_the_next_step_when_just_connected(login_as, admin_a, org_a):
    make_connection(organisation=org_a)
    client = login_as(admin_a)
    body = client.get(reverse("integrations:manage")).content.decode()
    assert "Next step: choose the revenue account and tax rate" in body and reverse("invoices:mapping") in body
    _mapping(org_a)
    assert "Next step" not in client.get(reverse("integrations:manage")).content.decode()


def test_manage_integrations_offers_no_next_step_when_not_connected(login_as, admin_a, org_a):
    assert "Next step" not in login_as(admin_a).get(reverse("integrations:manage")).content.decode()
