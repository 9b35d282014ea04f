"""Issue 11, defects 2 and 7: every invoice read carries unitdp=4 (so a four-decimal unit price survives a payment
in Xero), and the reconciliation poll's If-Modified-Since is RFC 3339 as Xero's spec defines it.

Xero answers like the real one here: without `unitdp=4` it reports unit amounts rounded to two places
(https://developer.xero.com/documentation/api/accounting/invoices, "unitdp")."""

import copy
import datetime as dt
import json
import re
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import responses

from integrations.models import ReconciliationState
from integrations.services import reconciliation
from integrations.webhooks import process
from integrations.webhooks.parse import webhook_delivery_parse
from integrations.webhooks.record import webhook_events_record
from invoices.models import InvoiceEvent, InvoiceLine
from invoices.services import outbound
from tests.factories import (
    TENANT_ID,
    make_connection,
    make_organisation,
    make_pushed_invoice,
    make_webhook_delivery,
    make_xero_event,
)

pytestmark = pytest.mark.django_db

API = "https://api.xero.com/api.xro/2.0"
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "xero" / "invoice_authorised.json"
HELD = dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.UTC)
INV = "0f0d5a46-9c4a-4f7e-8a39-2d2c4a7b1e01"
UNIT = Decimal("10.1234")


@pytest.fixture(autouse=True)
def unpaced(settings):
    settings.WEBHOOK_FETCH_INTERVAL_SECONDS = 0


@pytest.fixture
def invoice(db):
    organisation = make_organisation(name="Kaffee Müller")
    make_connection(organisation=organisation)
    invoice = make_pushed_invoice(
        organisation=organisation, xero_invoice_id=INV, xero_updated_at=HELD, number="INV-0001"
    )
    InvoiceLine.objects.filter(invoice=invoice).update(quantity=Decimal("10"), unit_amount=UNIT)
    return invoice


def _xero_copy(*, minutes_later: int, unitdp: int, **changes) -> dict:
    data = copy.deepcopy(json.loads(FIXTURE.read_text())["Invoices"][0])
    at = HELD + dt.timedelta(minutes=minutes_later)
    data.update(InvoiceID=INV, UpdatedDateUTC=f"/Date({int(at.timestamp() * 1000)}+0000)/", **changes)
    line = data["LineItems"][0]
    line.update(Quantity=10.0, UnitAmount=float(UNIT if unitdp == 4 else round(UNIT, 2)), LineAmount=101.23)
    data.update(SubTotal=101.23, TotalTax=10.12, Total=111.35)
    return data


def xero_like(*, minutes_later: int = 5, **changes):
    """A GET /Invoices answer that rounds unit amounts to 2 places unless unitdp=4 was asked for, as Xero does."""

    def answer(request):
        query = dict(parse_qsl(urlsplit(request.url).query))
        unitdp = 4 if query.get("unitdp") == "4" else 2
        body = {"Invoices": [_xero_copy(minutes_later=minutes_later, unitdp=unitdp, **changes)]}
        if not re.search(r"/Invoices/[0-9a-f-]{36}", request.url):
            body["pagination"] = {"page": 1, "pageSize": 100, "pageCount": 1, "itemCount": 1}
        return 200, {}, json.dumps(body)

    return answer


def _assert_four_places_kept(invoice) -> None:
    line = InvoiceLine.objects.get(invoice=invoice)
    assert line.unit_amount == UNIT
    history = " ".join(InvoiceEvent.objects.filter(invoice=invoice).values_list("message", flat=True))
    assert "line" not in history.lower(), history


@responses.activate
def test_four_decimal_unit_price_survives_a_payment_when_the_webhook_is_processed(invoice):
    responses.add_callback(
        responses.GET,
        re.compile(f"{API}/Invoices.*"),
        callback=xero_like(Status="PAID", AmountPaid=111.35, AmountDue=0),
    )
    body, _ = make_webhook_delivery(
        events=[make_xero_event(tenant_id=TENANT_ID, resource_id=INV, at="2026-11-24T09:05:00.000")], key="k"
    )
    webhook_events_record(events=webhook_delivery_parse(body=body))
    process.webhook_inbox_process(organisation_id=invoice.organisation_id)
    invoice.refresh_from_db()
    assert invoice.status == "PAID"
    _assert_four_places_kept(invoice)


@responses.activate
def test_four_decimal_unit_price_survives_a_payment_when_reconciling(invoice):
    ReconciliationState.objects.create(organisation_id=invoice.organisation_id, last_success_at=HELD)
    responses.add_callback(
        responses.GET,
        re.compile(f"{API}/Invoices.*"),
        callback=xero_like(Status="PAID", AmountPaid=111.35, AmountDue=0),
    )
    responses.get(f"{API}/Contacts", json={"Contacts": []})
    reconciliation.reconciliation_run(organisation_id=invoice.organisation_id)
    invoice.refresh_from_db()
    assert invoice.status == "PAID"
    _assert_four_places_kept(invoice)


@responses.activate
def test_reconciliation_sends_if_modified_since_as_rfc3339_when_polling(invoice):
    ReconciliationState.objects.create(organisation_id=invoice.organisation_id, last_success_at=HELD)
    responses.get(re.compile(f"{API}/(Invoices|Contacts).*"), json={})
    reconciliation.reconciliation_run(organisation_id=invoice.organisation_id)
    sent = [call.request.headers["If-Modified-Since"] for call in responses.calls]
    # The start of the last complete pass, less the 2-minute overlap, in UTC with its offset.
    assert sent and set(sent) == {"2026-11-24T08:58:00Z"}


@responses.activate
def test_void_reads_and_writes_with_four_decimal_units_when_sent(invoice, django_user_model):
    user = django_user_model.objects.create_user(username="a", email="a@b.test", password="x")
    responses.add_callback(responses.GET, re.compile(f"{API}/Invoices/.*"), callback=xero_like(minutes_later=0))
    responses.add_callback(responses.POST, re.compile(f"{API}/Invoices/.*"), callback=xero_like(Status="VOIDED"))
    change = outbound.invoice_change_request(
        organisation=invoice.organisation, invoice_id=invoice.pk, action="void", user=user, based_on=HELD
    )
    outbound.invoice_change_send(change_id=change.pk)
    assert [c.request.method for c in responses.calls] == ["GET", "POST"]
    for call in responses.calls:
        assert dict(parse_qsl(urlsplit(call.request.url).query)).get("unitdp") == "4", call.request.url
    invoice.refresh_from_db()
    assert invoice.status == "VOIDED"
    _assert_four_places_kept(invoice)
