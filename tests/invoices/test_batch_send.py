"""Send to Xero for a batch that was not synced (issue 12, item 9): admins only, a review page of what would be created
(count, customers, totals, every line the Xero chart would refuse), then its invoices become pending and go through
the push. The help article's automatic rule stays: nothing goes by itself."""

from decimal import Decimal

import pytest
from django.urls import reverse

from invoices.models import Invoice, InvoiceBatch, InvoiceLine, XeroMapping
from invoices.services.batch_send import BatchSendRefused, batch_send_review, batch_send_to_xero
from invoices.services.push import push_organisation_dispatch
from tests.factories import PASSWORD, chart_read_from_xero, make_batch, make_connection, make_customer

pytestmark = pytest.mark.django_db
S = Invoice.SyncState


def login(client, user):
    assert client.login(username=user.email, password=PASSWORD)
    return client


@pytest.fixture
def ready(org_a):
    """Connected, chart read, mapping chosen: a not-synced batch can be sent."""
    make_connection(organisation=org_a, tenant_name="Koala Coffee Roasters (AU)")
    chart_read_from_xero(org_a)
    XeroMapping.objects.create(organisation=org_a, revenue_account_code="200", tax_type="OUTPUT")
    return org_a


def unsent_batch(org, *, invoices=3, eligibility=InvoiceBatch.Eligibility.BEFORE_CONNECTION) -> InvoiceBatch:
    batch = make_batch(organisation=org, name="Before we connected", invoices=invoices, eligibility=eligibility)
    other = make_customer(organisation=org, name="Ölfabrik GmbH")
    Invoice.objects.filter(pk=batch.invoices.order_by("pk").last().pk).update(customer=other, total=Decimal("55.50"))
    return batch


def test_review_page_shows_count_customers_and_totals_when_an_admin_opens_it(client, admin_a, ready):
    batch = unsent_batch(ready)
    page = login(client, admin_a).get(reverse("invoices:batch_send", args=[batch.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-review="count">3<' in html and "Koala Coffee Roasters (AU)" in html
    assert "Ölfabrik GmbH" in html and "AUD 275.50" in html  # 110 + 110 + 55.50
    assert "Send 3 invoices to Xero" in html
    assert Invoice.objects.filter(batch=batch, sync_state=S.NOT_SYNCED).count() == 3  # a GET sends nothing


def test_review_lists_every_line_the_xero_chart_would_refuse_and_sending_is_refused(client, admin_a, ready):
    batch = unsent_batch(ready)
    first = batch.invoices.order_by("pk").first()
    InvoiceLine.objects.filter(invoice=first).update(account_code="999", tax_type="NOPE")
    review = batch_send_review(organisation=ready, batch=batch)
    assert not review.can_send
    assert {(p.number, p.line) for p in review.problems} == {(first.number, 1)}
    assert any("Account 999" in p.message for p in review.problems)
    assert any("Tax rate NOPE" in p.message for p in review.problems)
    html = login(client, admin_a).get(reverse("invoices:batch_send", args=[batch.pk])).content.decode()
    assert reverse("invoices:invoice_fix", args=[first.pk]) in html and "Send 3 invoices" not in html
    with pytest.raises(BatchSendRefused):
        batch_send_to_xero(organisation=ready, batch_id=batch.pk, user=admin_a)
    assert not Invoice.objects.filter(batch=batch).exclude(sync_state=S.NOT_SYNCED).exists()


def test_confirming_makes_the_invoices_pending_and_enqueues_the_push_when_an_admin_sends(
    client, admin_a, ready, enqueued, django_capture_on_commit_callbacks
):
    batch = unsent_batch(ready, eligibility=InvoiceBatch.Eligibility.WHILE_DISCONNECTED)
    with django_capture_on_commit_callbacks(execute=True):
        response = login(client, admin_a).post(reverse("invoices:batch_send", args=[batch.pk]))
    assert response.status_code == 302
    batch.refresh_from_db()
    assert batch.eligibility == InvoiceBatch.Eligibility.ELIGIBLE
    assert batch.eligibility_at_creation == InvoiceBatch.Eligibility.WHILE_DISCONNECTED
    assert batch.sent_to_xero_by == admin_a and batch.sent_to_xero_at is not None
    assert set(batch.invoices.values_list("sync_state", flat=True)) == {S.PENDING}
    assert [item.args for item in enqueued.named("invoices.tasks.push_organisation")] == [(ready.pk,)]
    for invoice in batch.invoices.all():
        event = invoice.events.get(kind="sent_to_xero")
        assert event.actor == admin_a and "created while Xero was disconnected" in event.message
    page = client.get(reverse("invoices:batch_detail", args=[batch.pk])).content.decode()
    assert f"Sent to Xero on purpose by {admin_a.email}" in page
    # Sending twice is refused, and the review page sends people back.
    with pytest.raises(BatchSendRefused):
        batch_send_to_xero(organisation=ready, batch_id=batch.pk, user=admin_a)
    assert client.get(reverse("invoices:batch_send", args=[batch.pk])).status_code == 302


def test_send_is_forbidden_when_the_person_is_an_accountant(client, accountant_a, ready):
    batch = unsent_batch(ready)
    login(client, accountant_a)
    assert client.get(reverse("invoices:batch_send", args=[batch.pk])).status_code == 403
    assert client.post(reverse("invoices:batch_send", args=[batch.pk])).status_code == 403
    assert not Invoice.objects.filter(batch=batch).exclude(sync_state=S.NOT_SYNCED).exists()
    page = client.get(reverse("invoices:batch_detail", args=[batch.pk])).content.decode()
    assert reverse("invoices:batch_send", args=[batch.pk]) not in page


def test_send_404s_when_the_batch_is_another_organisations(client, admin_b, ready):
    batch = unsent_batch(ready)
    login(client, admin_b)
    assert client.get(reverse("invoices:batch_send", args=[batch.pk])).status_code == 404
    assert client.post(reverse("invoices:batch_send", args=[batch.pk])).status_code == 404


@pytest.mark.parametrize("status", ["none", "needs_reconnect", "disconnected"])
def test_send_is_refused_when_xero_is_not_connected(admin_a, org_a, status):
    if status != "none":
        make_connection(organisation=org_a, status=status)
    XeroMapping.objects.create(organisation=org_a, revenue_account_code="200", tax_type="OUTPUT")
    batch = unsent_batch(org_a)
    review = batch_send_review(organisation=org_a, batch=batch)
    assert review.blocker and not review.can_send
    with pytest.raises(BatchSendRefused):
        batch_send_to_xero(organisation=org_a, batch_id=batch.pk, user=admin_a)


def test_send_is_refused_when_there_is_no_xero_mapping(admin_a, org_a):
    make_connection(organisation=org_a)
    batch = unsent_batch(org_a)
    assert "mapping" in batch_send_review(organisation=org_a, batch=batch).blocker


def test_batch_page_offers_send_to_admins_when_the_batch_was_not_synced(client, admin_a, ready):
    batch = unsent_batch(ready)
    page = login(client, admin_a).get(reverse("invoices:batch_detail", args=[batch.pk])).content.decode()
    assert "Not synced to Xero." in page  # the help article's promise still reads the same
    assert reverse("invoices:batch_send", args=[batch.pk]) in page


def test_not_synced_batch_still_never_goes_by_itself_when_xero_is_connected_later(ready, enqueued):
    batch = unsent_batch(ready)
    push_organisation_dispatch(organisation_id=ready.pk)
    assert set(batch.invoices.values_list("sync_state", flat=True)) == {S.NOT_SYNCED}
