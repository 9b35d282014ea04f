"""Support's read-only view of a tenant's batches and invoices: every look recorded in the tenant's audit trail."""

import pytest
from django.urls import reverse

from invoices.models import Invoice
from organisations.audit import audit_trail
from organisations.models import OrganisationAuditEvent
from tests.factories import make_batch

pytestmark = pytest.mark.django_db


@pytest.fixture
def batch(org_a):
    batch = make_batch(organisation=org_a, name="Novembre – Café Müller", invoices=2, eligibility="eligible")
    Invoice.objects.filter(batch=batch).update(sync_state="failed", sync_errors=["Contact is archived"])
    return batch


def test_support_opens_a_tenants_invoice_read_only_and_the_trail_shows_it(login_as, support_user, org_a, batch):
    invoice = batch.invoices.order_by("number").first()
    client = login_as(support_user)
    body = client.get(reverse("invoices_support:invoice", args=[org_a.pk, batch.pk, invoice.pk])).content.decode()
    assert f"Invoice {invoice.number}" in body and "Contact is archived" in body and "Read-only." in body
    assert "retry" not in body.lower().replace("retrying", "")  # no action on the tenant's invoice
    forms = body.count('method="post"')
    assert forms == 1  # only the top bar's sign-out: support staff get no help-panel form either
    [entry] = audit_trail(org_a)[:1]
    assert entry.text == f"Support looked at invoice {invoice.number} in batch “Novembre – Café Müller”"
    assert entry.who == "support@coordinoter.test (Coordinoter support)"


def test_support_finds_an_invoice_by_number_and_every_page_is_recorded_when_browsing(
    login_as, support_user, org_a, batch
):
    invoice = batch.invoices.order_by("number").first()
    client = login_as(support_user)
    body = client.get(reverse("invoices_support:batches", args=[org_a.pk]), {"q": invoice.number}).content.decode()
    assert reverse("invoices_support:invoice", args=[org_a.pk, batch.pk, invoice.pk]) in body
    client.get(reverse("invoices_support:batch", args=[org_a.pk, batch.pk]))
    actions = list(OrganisationAuditEvent.objects.filter(organisation=org_a).values_list("action", "actor_kind"))
    assert actions == [("support_viewed_batch", "support"), ("support_viewed_batches", "support")]


def test_another_organisations_batch_or_invoice_is_404_when_paired_with_this_organisation(
    login_as, support_user, org_a, org_b, batch
):
    theirs = make_batch(organisation=org_b, invoices=1)
    client = login_as(support_user)
    assert client.get(reverse("invoices_support:batch", args=[org_a.pk, theirs.pk])).status_code == 404
    invoice = theirs.invoices.get()
    assert client.get(reverse("invoices_support:invoice", args=[org_a.pk, batch.pk, invoice.pk])).status_code == 404
    assert not OrganisationAuditEvent.objects.filter(organisation=org_b).exists()


def test_customers_cannot_open_supports_views_when_they_are_admins(login_as, admin_a, org_a, batch):
    response = login_as(admin_a).get(reverse("invoices_support:batches", args=[org_a.pk]))
    assert response.status_code == 403
    assert not OrganisationAuditEvent.objects.exists()
