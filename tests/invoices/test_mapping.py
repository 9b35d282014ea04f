import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests
import responses
from django.conf import settings
from django.urls import reverse

from invoices.mappers import MappingRequired, invoice_to_xero_payload
from invoices.models import XeroMapping
from invoices.services.mapping import (
    MappingRejected,
    MappingUnavailable,
    mapping_choices,
    mapping_for,
    mapping_save,
    tax_rates_cached,
)
from tests.factories import PASSWORD, TENANT_ID, make_connection

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "xero"
ACCOUNTS_URL = f"{settings.XERO_API_URL}/Accounts"
TAX_RATES_URL = f"{settings.XERO_API_URL}/TaxRates"


def body(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def serve_settings(xero) -> None:
    xero.get(ACCOUNTS_URL, json=body("accounts.json"))
    xero.get(TAX_RATES_URL, json=body("tax_rates.json"))


def login(client, user):
    assert client.login(username=user.email, password=PASSWORD)
    return client


def test_only_active_revenue_accounts_and_revenue_tax_rates_are_offered_when_page_opens(client, admin_a, org_a, xero):
    connection = make_connection(organisation=org_a)
    serve_settings(xero)
    response = login(client, admin_a).get(reverse("invoices:mapping"))
    assert response.status_code == 200
    form = response.context["form"]
    assert [code for code, _ in form.fields["revenue_account_code"].choices] == ["", "200", "260"]
    assert [t for t, _ in form.fields["tax_type"].choices] == ["", "EXEMPTOUTPUT", "OUTPUT"]
    # every call carried the tenant and a bearer token, and the token never reached the page
    assert all(call.request.headers["xero-tenant-id"] == TENANT_ID for call in xero.calls)
    assert all(call.request.headers["authorization"] == f"Bearer {connection.access_token}" for call in xero.calls)
    assert connection.access_token not in response.content.decode()


def test_choices_come_from_cache_when_read_within_ten_minutes(org_a, xero):
    make_connection(organisation=org_a)
    serve_settings(xero)
    mapping_choices(organisation=org_a)
    mapping_choices(organisation=org_a)
    assert len(xero.calls) == 2  # one GET /Accounts, one GET /TaxRates
    mapping_choices(organisation=org_a, refresh=True)
    assert len(xero.calls) == 4


def test_refresh_button_reads_xero_again_when_pressed(client, admin_a, org_a, xero):
    make_connection(organisation=org_a)
    serve_settings(xero)
    login(client, admin_a).get(reverse("invoices:mapping"))
    response = client.post(reverse("invoices:mapping"), {"action": "refresh"})
    assert response.status_code == 302 and len(xero.calls) == 4


def test_cache_is_per_tenant_when_two_organisations_are_connected(org_a, org_b, xero):
    make_connection(organisation=org_a)
    make_connection(organisation=org_b, tenant_id="5a8a7d6c-2222-4c2b-9d3e-000000000002")
    serve_settings(xero)
    mapping_choices(organisation=org_a)
    mapping_choices(organisation=org_b)
    assert len(xero.calls) == 4
    assert {c.request.headers["xero-tenant-id"] for c in xero.calls} == {
        TENANT_ID,
        "5a8a7d6c-2222-4c2b-9d3e-000000000002",
    }


def test_mapping_is_saved_with_who_changed_it_when_choices_are_valid(client, admin_a, org_a, xero):
    make_connection(organisation=org_a)
    serve_settings(xero)
    response = login(client, admin_a).post(
        reverse("invoices:mapping"), {"action": "save", "revenue_account_code": "260", "tax_type": "OUTPUT"}
    )
    assert response.status_code == 302
    mapping = mapping_for(org_a)
    assert (
        mapping.revenue_account_code,
        mapping.revenue_account_name,
        mapping.tax_type,
        mapping.tax_name,
        mapping.updated_by,
    ) == ("260", "Other Revenue", "OUTPUT", "GST on Income", admin_a)
    assert tax_rates_cached(organisation=org_a)["OUTPUT"] == 10


def test_account_is_refused_when_not_an_active_revenue_account(client, admin_a, org_a, xero):
    make_connection(organisation=org_a)
    serve_settings(xero)
    for code in ("400", "210", "090", "999"):
        response = login(client, admin_a).post(
            reverse("invoices:mapping"), {"action": "save", "revenue_account_code": code, "tax_type": "OUTPUT"}
        )
        assert response.status_code == 422
    assert mapping_for(org_a) is None
    with pytest.raises(MappingRejected):
        mapping_save(organisation=org_a, user=admin_a, revenue_account_code="400", tax_type="OUTPUT")


def test_tax_rate_is_refused_when_it_cannot_apply_to_revenue(org_a, admin_a, xero):
    make_connection(organisation=org_a)
    serve_settings(xero)
    for tax_type in ("INPUT", "TAX001"):
        with pytest.raises(MappingRejected):
            mapping_save(organisation=org_a, user=admin_a, revenue_account_code="200", tax_type=tax_type)
    assert not XeroMapping.objects.exists()


def test_clear_message_and_no_call_when_xero_is_not_connected(client, admin_a, org_a, xero):
    response = login(client, admin_a).get(reverse("invoices:mapping"))
    body_text = response.content.decode()
    assert "Connect Xero first" in body_text and reverse("integrations:manage") in body_text
    assert len(xero.calls) == 0


def test_clear_message_and_no_call_when_xero_is_disconnected(org_a, xero):
    make_connection(organisation=org_a, status="disconnected")
    with pytest.raises(MappingUnavailable, match="Connect Xero first"):
        mapping_choices(organisation=org_a)
    assert len(xero.calls) == 0


def test_clear_message_when_connection_needs_reconnect(client, admin_a, org_a, xero):
    make_connection(organisation=org_a, status="needs_reconnect")
    body_text = login(client, admin_a).get(reverse("invoices:mapping")).content.decode()
    assert "Xero needs reconnecting" in body_text
    assert len(xero.calls) == 0


def test_clear_message_when_xero_cannot_be_reached(client, admin_a, org_a, xero):
    make_connection(organisation=org_a)
    xero.get(ACCOUNTS_URL, body=requests.ConnectionError("connection reset"))
    response = login(client, admin_a).get(reverse("invoices:mapping"))
    assert "couldn&#x27;t reach Xero just now" in response.content.decode()
    assert response.context["choices"] is None


def test_clear_message_when_xero_answers_503(org_a, xero):
    make_connection(organisation=org_a)
    xero.get(ACCOUNTS_URL, status=503, json={"Title": "Service Unavailable"})
    with pytest.raises(MappingUnavailable, match="couldn't reach Xero"):
        mapping_choices(organisation=org_a)


def test_clear_message_when_xero_rate_limits(org_a, xero):
    make_connection(organisation=org_a)
    xero.get(ACCOUNTS_URL, status=429, headers={"Retry-After": "17", "X-Rate-Limit-Problem": "minute"})
    with pytest.raises(MappingUnavailable, match="17 seconds"):
        mapping_choices(organisation=org_a)


def test_failed_read_is_not_cached_when_xero_was_down(org_a, xero):
    make_connection(organisation=org_a)
    xero.get(ACCOUNTS_URL, status=503)
    with pytest.raises(MappingUnavailable):
        mapping_choices(organisation=org_a)
    xero.replace(responses.GET, ACCOUNTS_URL, json=body("accounts.json"))
    xero.get(TAX_RATES_URL, json=body("tax_rates.json"))
    assert [a.code for a in mapping_choices(organisation=org_a).accounts] == ["200", "260"]


def test_saved_mapping_no_longer_offered_is_flagged_when_archived_in_xero(client, admin_a, org_a, xero):
    make_connection(organisation=org_a)
    serve_settings(xero)
    XeroMapping.objects.create(organisation=org_a, revenue_account_code="210", tax_type="OUTPUT")
    body_text = login(client, admin_a).get(reverse("invoices:mapping")).content.decode()
    assert "The account 210 is no longer an active revenue account in Xero." in body_text


def test_accountant_cannot_change_mapping_when_not_admin(client, accountant_a, org_a, xero):
    make_connection(organisation=org_a)
    login(client, accountant_a)
    assert client.get(reverse("invoices:mapping")).status_code == 403
    assert (
        client.post(reverse("invoices:mapping"), {"revenue_account_code": "200", "tax_type": "OUTPUT"}).status_code
        == 403
    )
    assert not XeroMapping.objects.exists() and len(xero.calls) == 0


def test_mapping_for_is_none_when_not_chosen_and_payload_is_blocked(org_a, org_b):
    XeroMapping.objects.create(organisation=org_b, revenue_account_code="200", tax_type="OUTPUT")
    assert mapping_for(org_a) is None  # another organisation's mapping never applies
    invoice = SimpleNamespace(
        number="INV-1",
        reference="",
        issue_date="2026-11-01",
        due_date="2026-11-15",
        currency="AUD",
        line_amount_types="Exclusive",
        status="AUTHORISED",
    )
    lines = [SimpleNamespace(description="x", quantity=1, unit_amount=1, account_code="", tax_type="")]
    with pytest.raises(MappingRequired, match="mapping settings"):
        invoice_to_xero_payload(invoice, lines, mapping=mapping_for(org_a), contact_id="c")


def test_settings_page_links_the_mapping_when_admin_opens_it(client, admin_a):
    body = login(client, admin_a).get(reverse("organisations:settings")).content.decode()
    assert reverse("invoices:mapping") in body


def test_clear_message_and_no_call_when_our_limiter_has_no_slot(org_a, xero, monkeypatch):
    from integrations.xero.ratelimit import RateLimitWait

    class Full:
        def acquire(self, *, tenant_id, priority="customer"):
            raise RateLimitWait(4.2, problem="concurrent")

    make_connection(organisation=org_a)
    monkeypatch.setattr("invoices.services.mapping.rate_limiter", lambda: Full())
    with pytest.raises(MappingUnavailable, match="Try again in 5 seconds"):
        mapping_choices(organisation=org_a)
    assert len(xero.calls) == 0


def test_changing_the_defaults_pins_them_on_lines_already_sent_to_xero(org_a, admin_a, xero):
    """A line that follows the default went to Xero with the default of the time: when the default changes, that
    line keeps the code Xero holds (else the next copy read from Xero would show it as edited there), while a line
    not yet sent follows the new default."""
    from invoices.models import Invoice, InvoiceLine
    from tests.factories import make_pushed_invoice

    make_connection(organisation=org_a)
    serve_settings(xero)
    XeroMapping.objects.create(organisation=org_a, revenue_account_code="200", tax_type="OUTPUT")
    sent = make_pushed_invoice(organisation=org_a, xero_invoice_id="0f0d5a46-9c4a-4f7e-8a39-2d2c4a7b1e01")
    waiting = make_pushed_invoice(organisation=org_a, xero_invoice_id="")
    Invoice.objects.filter(pk=waiting.pk).update(sync_state=Invoice.SyncState.PENDING)
    InvoiceLine.objects.update(account_code="", tax_type="")
    mapping_save(organisation=org_a, user=admin_a, revenue_account_code="260", tax_type="OUTPUT")
    assert list(sent.lines.values_list("account_code", "tax_type")) == [("200", "")]
    assert list(waiting.lines.values_list("account_code", "tax_type")) == [("", "")]
