"""Reconciliation against xero_sandbox over real HTTP: a window paged by InvoiceID with If-Modified-Since fixed, cut
short by the page cap and gone on with by the next passes, reads every invoice once even though one it had read is
paid in Xero between passes; the next window reads that payment."""

import datetime as dt

import pytest
import requests
from django.utils import timezone

from integrations.models import ReconciliationState
from integrations.services import reconciliation
from integrations.webhooks import fetch
from integrations.xero.client import xero_request
from integrations.xero.types import NoRateLimit
from invoices.created_in_xero.models import XeroCreatedInvoice
from tests.support.xero_live import connect_organisation, sandbox_settings

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

INVOICES = 250


@pytest.fixture
def xero(sandbox, settings):
    sandbox.reset(keep_settings=True)
    for name, value in sandbox_settings(sandbox).items():
        setattr(settings, name, value)
    return sandbox


def created_in_xero(organisation, count: int) -> list[dict]:
    """`count` sales invoices someone raises in Xero itself (not ours), 50 a call."""
    connection_id = organisation.xero_connection.pk
    contact = xero_request(connection_id, "PUT", "/Contacts", json={"Contacts": [{"Name": "Ōtautahi Florists"}]})
    contact_id = contact.body["Contacts"][0]["ContactID"]
    created: list[dict] = []
    for start in range(0, count, 50):
        invoices = [
            {
                "Type": "ACCREC",
                "Contact": {"ContactID": contact_id},
                "InvoiceNumber": f"REC-{n:04d}",
                "Status": "AUTHORISED",
                "Date": "2026-11-02",
                "DueDate": "2026-11-30",
                "LineItems": [{"Description": "Bouquet", "Quantity": 1, "UnitAmount": 100, "AccountCode": "200"}],
            }
            for n in range(start, min(start + 50, count))
        ]
        created += xero_request(connection_id, "PUT", "/Invoices", json={"Invoices": invoices}).body["Invoices"]
    return created


def test_a_window_read_over_passes_reads_every_invoice_when_one_is_paid_in_xero_between_passes(xero, monkeypatch):
    from xero_sandbox.testing import AU_ID

    monkeypatch.setattr(reconciliation, "RECONCILE_MAX_PAGES", 1)
    monkeypatch.setattr(fetch, "xero_rate_limiter", NoRateLimit)  # background waits behind the PUTs just made
    organisation = connect_organisation(xero, name="Reconcile Florists", tenant_id=AU_ID)
    ReconciliationState.objects.create(
        organisation=organisation, last_success_at=timezone.now() - dt.timedelta(minutes=1)
    )
    created = created_in_xero(organisation, INVOICES)
    first_by_id = min(created, key=lambda i: i["InvoiceID"].lower())

    reconciliation.reconciliation_run(organisation_id=organisation.pk)
    state = ReconciliationState.objects.get(organisation=organisation)
    assert (state.resume_category, state.resume_page) == ("INVOICE", 2), state.last_error
    read = XeroCreatedInvoice.objects.filter(organisation=organisation)
    assert read.filter(number=first_by_id["InvoiceNumber"]).exists()  # page 1 is the first ids, not the first changes

    paid = requests.post(  # paid in Xero after page 1 was read: ordered by UpdatedDateUTC it would move to the end
        f"{xero.url}/orgs/{AU_ID}/invoices/{first_by_id['InvoiceID']}/payment",
        data={"amount": str(first_by_id["Total"]), "account_code": "090"},
        allow_redirects=False,
        timeout=10,
    )
    assert paid.status_code in (302, 303), paid.text[:300]
    reached = []
    for _ in range(3):  # invoices' pages 2 and 3, then the contacts' page
        reconciliation.reconciliation_run(organisation_id=organisation.pk)
        state.refresh_from_db()
        reached.append(f"{state.resume_category} {state.resume_page}" if state.resume_since else "done")
    assert reached == ["INVOICE 3", "CONTACT 1", "done"], state.last_error
    assert state.passes == 1
    assert {i["InvoiceNumber"] for i in created} <= set(read.values_list("number", flat=True))

    for _ in range(3):  # the next window: the same invoices again (created within its overlap), the payment too
        reconciliation.reconciliation_run(organisation_id=organisation.pk)
    assert read.get(number=first_by_id["InvoiceNumber"]).status == "PAID"
