"""Issue 12, item 10: the organisation's time zone decides today (default issue date, overdue) and every time shown
names its zone; dates and amounts are read the way the organisation's people write them (form, CSV, fix, edit)."""

import datetime as dt
from decimal import Decimal
from unittest import mock

import pytest
from django.urls import reverse

from invoices import csv_import
from invoices.models import Invoice, InvoiceBatch
from invoices.states import InvoiceStatus
from organisations.locale import locale_get
from tests.factories import chart_read_from_xero, make_batch, make_connection
from tests.invoices.test_batch_views import form_data, line, login, upload

pytestmark = pytest.mark.django_db

# 08:00 on 3 December 2026 in Sydney (AEDT, UTC+11) is 21:00 on 2 December in UTC.
SYDNEY_MORNING = dt.datetime(2026, 12, 2, 21, 0, tzinfo=dt.UTC)


def sydney(org, locale="en-AU"):
    org.time_zone, org.locale = "Australia/Sydney", locale
    org.save(update_fields=["time_zone", "locale"])
    return org


def test_default_issue_date_is_today_in_sydney_when_an_australian_organisation_opens_the_form_at_8am(
    client, admin_a, org_a
):
    sydney(org_a)
    with mock.patch("django.utils.timezone.now", return_value=SYDNEY_MORNING):
        response = login(client, admin_a).get(reverse("invoices:batch_new"))
    form = response.context["entry"].invoices.forms[0]
    assert form.initial["issue_date"] == dt.date(2026, 12, 3)
    assert form.initial["due_date"] == dt.date(2026, 12, 17)
    assert 'value="2026-12-03"' in response.content.decode()


def test_invoice_due_yesterday_in_sydney_is_overdue_when_utc_is_still_on_its_due_date(client, admin_a, org_a):
    sydney(org_a)
    batch = make_batch(organisation=org_a, invoices=2, sync_state=Invoice.SyncState.SYNCED)
    Invoice.objects.filter(batch=batch).update(xero_status="AUTHORISED", due_date=dt.date(2026, 12, 2))
    # 21:00 UTC on 2 Dec = 08:00 on 3 Dec in Sydney: due on the 2nd, so overdue there, though UTC says "today".
    with mock.patch("django.utils.timezone.now", return_value=SYDNEY_MORNING):
        invoice = Invoice.objects.select_related("organisation").filter(batch=batch).first()
        assert invoice.display_status == InvoiceStatus.OVERDUE
        page = login(client, admin_a).get(reverse("invoices:invoice_list"), {"overdue": "1"})
    assert page.context["page"].paginator.count == 2


def test_batch_page_names_the_zone_of_every_time_when_the_organisation_is_in_sydney(client, admin_a, org_a):
    sydney(org_a)
    batch = make_batch(organisation=org_a)
    InvoiceBatch.objects.filter(pk=batch.pk).update(created_at=dt.datetime(2026, 12, 2, 22, 15, tzinfo=dt.UTC))
    body = login(client, admin_a).get(reverse("invoices:batch_detail", args=[batch.pk])).content.decode()
    assert "Created 2026-12-03 09:15 AEDT" in body


def test_batch_page_says_utc_when_the_organisation_has_no_time_zone(client, admin_a, org_a):
    batch = make_batch(organisation=org_a)
    InvoiceBatch.objects.filter(pk=batch.pk).update(created_at=dt.datetime(2026, 12, 2, 22, 15, tzinfo=dt.UTC))
    body = login(client, admin_a).get(reverse("invoices:batch_detail", args=[batch.pk])).content.decode()
    assert "Created 2026-12-02 22:15 UTC" in body


# ---------------------------------------------------------------- the batch form


def _post(client, admin, **invoice):
    data = form_data({"customer_name": "Harbour View", **invoice})
    return login(client, admin).post(reverse("invoices:batch_new"), data)


def _ready(org):
    make_connection(organisation=org, base_currency="AUD")
    chart_read_from_xero(org)


@pytest.mark.parametrize(
    ("locale", "typed", "expected"),
    [
        ("en-AU", "25/12/2026", dt.date(2026, 12, 25)),
        ("en-GB", "25/12/2026", dt.date(2026, 12, 25)),
        ("en-US", "12/25/2026", dt.date(2026, 12, 25)),
        ("de-DE", "03.12.2026", dt.date(2026, 12, 3)),
        ("nl-NL", "03-12-2026", dt.date(2026, 12, 3)),
        ("de-DE", "2026-12-03", dt.date(2026, 12, 3)),
    ],
)
def test_form_reads_the_locales_date_format_when_the_organisation_writes_dates_that_way(
    client, admin_a, org_a, locale, typed, expected
):
    _ready(sydney(org_a, locale))
    response = _post(client, admin_a, issue_date=typed, due_date="2026-12-31", lines=[line()])
    assert response.status_code == 302, response.context["entry"].invoices.forms[0].errors
    assert Invoice.objects.get(organisation=org_a).issue_date == expected


def test_form_refuses_a_day_first_date_when_the_organisation_has_no_locale(client, admin_a, org_a):
    _ready(org_a)
    response = _post(client, admin_a, issue_date="25/12/2026", due_date="2026-12-31", lines=[line()])
    assert response.status_code == 422
    assert response.context["entry"].invoices.forms[0].errors["issue_date"] == ["Use the form YYYY-MM-DD."]


def test_form_shows_an_ambiguous_date_back_in_iso_for_confirmation_when_day_and_month_could_swap(
    client, admin_a, org_a
):
    _ready(sydney(org_a, "en-AU"))
    response = _post(client, admin_a, issue_date="03/04/2026", due_date="2026-12-31", lines=[line()])
    assert response.status_code == 422 and not Invoice.objects.exists()
    form = response.context["entry"].invoices.forms[0]
    assert form.errors["issue_date"] == ["Read as 2026-04-03 (3 April 2026): check it and save again."]
    assert 'value="2026-04-03"' in response.content.decode()
    # Confirmed: the ISO date shown back goes through.
    response = _post(client, admin_a, issue_date="2026-04-03", due_date="2026-12-31", lines=[line()])
    assert response.status_code == 302
    assert Invoice.objects.get(organisation=org_a).issue_date == dt.date(2026, 4, 3)


def test_form_reads_an_ambiguous_date_month_first_when_the_organisation_is_american(client, admin_a, org_a):
    _ready(sydney(org_a, "en-US"))
    response = _post(client, admin_a, issue_date="03/04/2026", due_date="2026-12-31", lines=[line()])
    form = response.context["entry"].invoices.forms[0]
    assert form.errors["issue_date"] == ["Read as 2026-03-04 (4 March 2026): check it and save again."]


def test_form_reads_decimal_commas_when_the_organisation_writes_german(client, admin_a, org_a):
    _ready(sydney(org_a, "de-DE"))
    response = _post(
        client,
        admin_a,
        lines=[line(quantity="1,5", unit_amount="12,50"), line("Kit", quantity="1", unit_amount="1.234,50")],
    )
    assert response.status_code == 302, [f.errors for f in response.context["entry"].lines[0].forms]
    lines = Invoice.objects.get(organisation=org_a).lines.order_by("position", "pk")
    assert [(x.quantity, x.unit_amount) for x in lines] == [
        (Decimal("1.5"), Decimal("12.50")),
        (Decimal("1"), Decimal("1234.50")),
    ]


def test_form_refuses_a_lone_thousands_group_when_the_locale_uses_decimal_commas(client, admin_a, org_a):
    _ready(sydney(org_a, "de-DE"))
    response = _post(client, admin_a, lines=[line(unit_amount="1.234")])
    assert response.status_code == 422
    error = response.context["entry"].lines[0].forms[0].errors["unit_amount"][0]
    assert "could be 1234 or 1,234" in error


def test_form_keeps_refusing_decimal_commas_when_the_organisation_writes_australian(client, admin_a, org_a):
    _ready(sydney(org_a, "en-AU"))
    response = _post(client, admin_a, lines=[line(unit_amount="12,50")])
    assert response.status_code == 422
    assert response.context["entry"].lines[0].forms[0].errors["unit_amount"] == [
        "Enter a number, with a point as the decimal separator (12.50, not 12,50)."
    ]


def test_form_shows_text_amount_fields_and_the_date_hint_when_the_locale_uses_decimal_commas(client, admin_a, org_a):
    sydney(org_a, "de-DE")
    body = login(client, admin_a).get(reverse("invoices:batch_new")).content.decode()
    assert 'placeholder="DD.MM.YYYY"' in body
    assert 'type="number"' not in body


# ---------------------------------------------------------------- CSV


HEADER = "invoice_number,customer_name,issue_date,due_date,currency,description,quantity,unit_amount\n"


def test_csv_reads_the_locales_dates_and_decimal_commas_when_the_organisation_writes_german():
    raw = (
        "invoice_number;customer_name;issue_date;due_date;currency;description;quantity;unit_amount\n"
        "INV-1;Müller GmbH;03.12.2026;17.12.2026;EUR;Beratung;1,5;1.234,50\n"
    ).encode()
    parsed = csv_import.parse_batch_csv(raw, locale=locale_get("de-DE"))
    assert parsed.ok, parsed.errors
    invoice = parsed.invoices[0]
    assert (invoice.issue_date, invoice.due_date) == (dt.date(2026, 12, 3), dt.date(2026, 12, 17))
    assert (invoice.lines[0].quantity, invoice.lines[0].unit_amount) == (Decimal("1.5"), Decimal("1234.50"))


def test_csv_keeps_refusing_a_decimal_comma_when_the_organisation_writes_australian():
    raw = (HEADER + 'INV-1,Harbour View,25/12/2026,31/12/2026,AUD,Care,1,"12,50"\n').encode()
    parsed = csv_import.parse_batch_csv(raw, locale=locale_get("en-AU"))
    assert [(e.column, e.message[:30]) for e in parsed.errors] == [("unit_amount", "“12,50”: use a point as the de")]


def test_csv_reads_day_first_dates_when_the_organisation_writes_australian():
    raw = (HEADER + "INV-1,Harbour View,03/12/2026,17/12/2026,AUD,Care,1,12.50\n").encode()
    parsed = csv_import.parse_batch_csv(raw, locale=locale_get("en-AU"))
    assert parsed.ok and parsed.invoices[0].issue_date == dt.date(2026, 12, 3)


def test_csv_refuses_day_first_dates_when_the_organisation_has_no_locale():
    raw = (HEADER + "INV-1,Harbour View,03/12/2026,2026-12-17,AUD,Care,1,12.50\n").encode()
    parsed = csv_import.parse_batch_csv(raw)
    assert [(e.column, e.message) for e in parsed.errors] == [
        ("issue_date", "“03/12/2026” is not a date in the form YYYY-MM-DD.")
    ]


def test_csv_empty_issue_date_is_today_in_sydney_when_uploaded_at_8am_there(client, admin_a, org_a):
    _ready(sydney(org_a))
    raw = (HEADER + "INV-1,Harbour View,,2026-12-17,AUD,Care,1,12.50\n").encode()
    with mock.patch("django.utils.timezone.now", return_value=SYDNEY_MORNING):
        response = upload(login(client, admin_a), "batch.csv", content=raw)
    assert response.status_code == 302
    assert Invoice.objects.get(organisation=org_a).issue_date == dt.date(2026, 12, 3)


# ---------------------------------------------------------------- fix page


def test_fix_page_reads_the_locales_date_and_decimal_comma_when_the_organisation_writes_german(client, admin_a, org_a):
    _ready(sydney(org_a, "de-DE"))
    batch = make_batch(organisation=org_a, eligibility="eligible", sync_state=Invoice.SyncState.FAILED)
    invoice = batch.invoices.get()
    page = login(client, admin_a).get(reverse("invoices:invoice_fix", args=[invoice.pk]))
    assert 'value="100,00"' in page.content.decode()  # shown the way it is typed back
    response = client.post(
        reverse("invoices:invoice_fix", args=[invoice.pk]),
        {
            "customer_name": invoice.customer.name,
            "reference": "",
            "issue_date": "03.12.2026",
            "due_date": "17.12.2026",
            "lines-TOTAL_FORMS": "1",
            "lines-INITIAL_FORMS": "0",
            "lines-0-description": "Service",
            "lines-0-quantity": "1",
            "lines-0-unit_amount": "99,95",
            "lines-0-account_code": "",
            "lines-0-tax_type": "",
        },
    )
    assert response.status_code == 302, response.context["form"].errors
    invoice.refresh_from_db()
    assert (invoice.issue_date, invoice.lines.get().unit_amount) == (dt.date(2026, 12, 3), Decimal("99.95"))
