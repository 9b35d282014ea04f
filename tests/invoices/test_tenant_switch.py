"""A confirmed switch to another Xero organisation (issue 12, item 8): customers' ContactIDs of the old organisation
are forgotten (matched again on the next push), and each invoice keeps a link into the organisation it was created
in."""

import uuid

import pytest
import responses
from django.conf import settings
from django.urls import reverse
from django.utils.html import escape

from integrations.models import XeroConnection
from integrations.registry import connection_event_emit
from invoices.created_in_xero.models import XeroContactVersion
from invoices.models import Customer, Invoice
from invoices.services.push import push_chunk_send, push_organisation_dispatch
from tests.factories import (
    PASSWORD,
    TENANT_ID,
    TENANT_SHORT_CODE,
    echo_invoices,
    make_connected_organisation,
    make_connection,
    make_customer,
    make_pushed_invoice,
)
from tests.invoices.conftest import CONTACTS_URL, INVOICES_URL

pytestmark = pytest.mark.django_db
S = Invoice.SyncState
OLD_TENANT, NEW_TENANT = "0ld00000-0000-4000-8000-000000000001", "9e900000-0000-4000-8000-000000000002"


def login(client, user):
    assert client.login(username=user.email, password=PASSWORD)
    return client


def test_tenant_switch_forgets_every_customers_contact_id_when_confirmed(
    org_a, org_b, django_capture_on_commit_callbacks
):
    ours = [make_customer(organisation=org_a) for _ in range(3)]
    theirs = make_customer(organisation=org_b)
    Customer.objects.update(xero_contact_id=str(uuid.uuid4()))
    XeroContactVersion.objects.create(
        organisation=org_a, xero_contact_id=str(uuid.uuid4()), xero_updated_at="2026-11-01T00:00:00Z"
    )
    with django_capture_on_commit_callbacks(execute=True):
        connection_event_emit(organisation_id=org_a.pk, event="tenant_switched")
    assert {c.xero_contact_id for c in Customer.objects.filter(pk__in=[c.pk for c in ours])} == {""}
    theirs.refresh_from_db()
    assert theirs.xero_contact_id  # another organisation's customers are untouched
    assert not XeroContactVersion.objects.filter(organisation=org_a).exists()


def test_reconnect_to_the_same_organisation_keeps_contact_ids(org_a, django_capture_on_commit_callbacks):
    customer = make_customer(organisation=org_a)
    Customer.objects.filter(pk=customer.pk).update(xero_contact_id="c-1")
    with django_capture_on_commit_callbacks(execute=True):
        connection_event_emit(organisation_id=org_a.pk, event="reconnected")
    customer.refresh_from_db()
    assert customer.xero_contact_id == "c-1"


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("push_settings")
def test_new_invoice_after_a_switch_is_sent_with_the_contact_of_the_new_organisation(org_a, enqueued):
    connection, batch = make_connected_organisation(organisation=org_a, invoices=1)
    customer = batch.invoices.get().customer
    Customer.objects.filter(pk=customer.pk).update(xero_contact_id="contact-in-the-old-organisation")
    XeroConnection.objects.filter(pk=connection.pk).update(tenant_id=NEW_TENANT)
    connection_event_emit(organisation_id=org_a.pk, event="tenant_switched")  # autocommit: runs at once

    new_contact = str(uuid.uuid4())
    with responses.RequestsMock(assert_all_requests_are_fired=False) as xero:
        xero.get(
            CONTACTS_URL,
            json={
                "Contacts": [
                    {"ContactID": new_contact, "Name": customer.name, "ContactNumber": customer.contact_number}
                ]
            },
        )
        xero.add_callback(responses.PUT, INVOICES_URL, callback=echo_invoices)
        push_organisation_dispatch(organisation_id=org_a.pk)
        invoice = batch.invoices.get()
        assert invoice.chunk.payload["Invoices"][0]["Contact"] == {"ContactID": new_contact}
        push_chunk_send(chunk_id=invoice.chunk_id)
    invoice.refresh_from_db()
    assert invoice.sync_state == S.SYNCED
    assert (invoice.xero_tenant_id, invoice.xero_short_code) == (NEW_TENANT, TENANT_SHORT_CODE)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("push_settings")
def test_push_records_the_organisation_an_invoice_was_created_in_when_it_lands(org_a, enqueued):
    _, batch = make_connected_organisation(organisation=org_a, invoices=2)
    with responses.RequestsMock() as xero:
        xero.add_callback(responses.PUT, INVOICES_URL, callback=echo_invoices)
        push_organisation_dispatch(organisation_id=org_a.pk)
        push_chunk_send(chunk_id=batch.invoices.first().chunk_id)
    assert set(batch.invoices.values_list("xero_tenant_id", "xero_short_code")) == {(TENANT_ID, TENANT_SHORT_CODE)}


def test_old_invoice_link_opens_the_organisation_it_was_created_in_after_a_switch(client, accountant_a, org_a):
    make_connection(organisation=org_a, tenant_id=NEW_TENANT, tenant_short_code="!NEW1")
    old = make_pushed_invoice(organisation=org_a, xero_invoice_id=str(uuid.uuid4()))
    Invoice.objects.filter(pk=old.pk).update(xero_tenant_id=OLD_TENANT, xero_short_code="!OLD1")
    new = make_pushed_invoice(organisation=org_a, xero_invoice_id=str(uuid.uuid4()))
    Invoice.objects.filter(pk=new.pk).update(xero_tenant_id=NEW_TENANT, xero_short_code="!NEW1", batch=old.batch)
    page = login(client, accountant_a).get(reverse("invoices:batch_detail", args=[old.batch_id])).content.decode()

    def link(**kw):
        return escape(settings.XERO_INVOICE_DEEP_LINK.format(**kw))

    assert link(short_code="%21OLD1", invoice_id=old.xero_invoice_id) in page
    assert link(short_code="%21NEW1", invoice_id=new.xero_invoice_id) in page
    assert link(short_code="%21NEW1", invoice_id=old.xero_invoice_id) not in page


def test_old_invoice_has_no_link_when_its_organisations_short_code_is_unknown(client, accountant_a, org_a):
    make_connection(organisation=org_a, tenant_id=NEW_TENANT, tenant_short_code="!NEW1")
    old = make_pushed_invoice(organisation=org_a, xero_invoice_id=str(uuid.uuid4()))
    Invoice.objects.filter(pk=old.pk).update(xero_tenant_id=OLD_TENANT, xero_short_code="")
    page = login(client, accountant_a).get(reverse("invoices:batch_detail", args=[old.batch_id])).content.decode()
    assert "Open in Xero" not in page  # better no link than one into the wrong books
    assert "%21NEW1" not in page


def test_migration_fills_the_tenant_of_invoices_already_in_xero(org_a):
    from importlib import import_module

    from django.apps import apps

    make_connection(organisation=org_a, tenant_id=OLD_TENANT, tenant_short_code="!OLD1")
    invoice = make_pushed_invoice(organisation=org_a, xero_invoice_id=str(uuid.uuid4()))
    module = import_module("invoices.migrations.0009_fix_resend_payments_tenant")
    module.invoices_keep_their_organisation(apps, None)
    invoice.refresh_from_db()
    assert (invoice.xero_tenant_id, invoice.xero_short_code) == (OLD_TENANT, "!OLD1")


def test_void_or_edit_of_an_invoice_of_the_old_organisation_is_refused_after_a_switch(org_a):
    from invoices.services.outbound import invoice_change_refusal

    make_connection(organisation=org_a, tenant_id=NEW_TENANT, tenant_short_code="!NEW1")
    old = make_pushed_invoice(organisation=org_a, xero_invoice_id=str(uuid.uuid4()))
    Invoice.objects.filter(pk=old.pk).update(xero_tenant_id=OLD_TENANT, xero_short_code="!OLD1")
    old.refresh_from_db()
    assert "another Xero organisation" in invoice_change_refusal(invoice=old, action="void")
    Invoice.objects.filter(pk=old.pk).update(xero_tenant_id=NEW_TENANT)
    old.refresh_from_db()
    assert invoice_change_refusal(invoice=old, action="void") is None
