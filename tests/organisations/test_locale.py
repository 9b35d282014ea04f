"""The organisation's zone and locale: today where it is, reading dates and numbers its way, the middleware that
shows times in its zone, and the Settings choice that wins over Xero."""

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from organisations.locale import ISO, NumberUnreadable, date_read, decimal_comma_read, locale_get, today_for
from organisations.models import OrganisationAuditEvent
from organisations.services import organisation_locale_from_xero
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def test_today_is_tomorrow_in_sydney_when_it_is_9pm_utc():
    class Org:
        time_zone = "Australia/Sydney"

    assert today_for(Org(), now=dt.datetime(2026, 12, 2, 21, 0, tzinfo=dt.UTC)) == dt.date(2026, 12, 3)
    assert today_for(None, now=dt.datetime(2026, 12, 2, 21, 0, tzinfo=dt.UTC)) == dt.date(2026, 12, 2)


@pytest.mark.parametrize(
    ("code", "text", "value", "ambiguous"),
    [
        ("en-AU", "03/12/2026", dt.date(2026, 12, 3), True),
        ("en-AU", "25/12/2026", dt.date(2026, 12, 25), False),
        ("en-US", "12/03/2026", dt.date(2026, 12, 3), True),
        ("en-US", "12/12/2026", dt.date(2026, 12, 12), False),
        ("de-DE", "03.12.2026", dt.date(2026, 12, 3), False),
        ("en-ZA", "2026/12/03", dt.date(2026, 12, 3), False),
        ("", "2026-12-03", dt.date(2026, 12, 3), False),
    ],
)
def test_date_read_takes_the_locales_format_when_typed_that_way(code, text, value, ambiguous):
    reading = date_read(text, locale_get(code))
    assert (reading.value, reading.ambiguous) == (value, ambiguous)


@pytest.mark.parametrize(("code", "text"), [("", "03/12/2026"), ("en-US", "25/12/2026"), ("en-AU", "2026-02-30")])
def test_date_read_gives_nothing_when_the_text_is_no_date_in_the_locale(code, text):
    assert date_read(text, locale_get(code)) is None


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("12,50", Decimal("12.50")),
        ("1.234,50", Decimal("1234.50")),
        ("1 234,50", Decimal("1234.50")),
        ("1\u202f234,50", Decimal("1234.50")),
        ("1.234.567", Decimal("1234567")),
        ("12.5", Decimal("12.5")),
        ("-3,25", Decimal("-3.25")),
        ("99,9950", Decimal("99.9950")),
    ],
)
def test_decimal_comma_read_parses_the_continental_forms_when_given_them(text, value):
    assert decimal_comma_read(text) == value


@pytest.mark.parametrize("text", ["1.234", "1,234.50", "12,5,0", "abc", "NaN"])
def test_decimal_comma_read_refuses_when_the_number_is_unreadable_or_ambiguous(text):
    with pytest.raises(NumberUnreadable):
        decimal_comma_read(text)


def test_iso_locale_accepts_only_iso_dates_and_points_when_nothing_was_chosen():
    assert ISO.date_formats == () and not ISO.decimal_comma


# ---------------------------------------------------------------- the middleware and Settings


def test_middleware_activates_the_organisations_zone_and_resets_it_after_the_request_when_signed_in(
    client, admin_a, org_a
):
    org_a.time_zone = "Pacific/Auckland"
    org_a.save(update_fields=["time_zone"])
    assert client.login(username=admin_a.email, password=PASSWORD)
    response = client.get(reverse("organisations:settings"))
    assert response.status_code == 200
    assert 'value="Pacific/Auckland" selected' in response.content.decode()
    assert timezone.get_current_timezone_name() == "UTC"  # not leaked to whatever this thread serves next


def test_settings_sets_zone_and_locale_and_audits_when_an_admin_chooses_them(client, admin_a, org_a):
    assert client.login(username=admin_a.email, password=PASSWORD)
    response = client.post(
        reverse("organisations:settings"), {"name": org_a.name, "time_zone": "Europe/Berlin", "locale": "de-DE"}
    )
    assert response.status_code == 302
    org_a.refresh_from_db()
    assert (org_a.time_zone, org_a.locale, org_a.locale_source) == ("Europe/Berlin", "de-DE", "settings")
    event = OrganisationAuditEvent.objects.get(organisation=org_a, action="organisation_locale_changed")
    assert event.detail == {"time_zone": "Europe/Berlin", "locale": "de-DE"}


def test_settings_refuses_an_unknown_zone_when_posted(client, admin_a, org_a):
    assert client.login(username=admin_a.email, password=PASSWORD)
    response = client.post(
        reverse("organisations:settings"), {"name": org_a.name, "time_zone": "Mars/Olympus", "locale": ""}
    )
    assert response.status_code == 422
    org_a.refresh_from_db()
    assert org_a.time_zone == ""


def test_settings_saved_unchanged_keeps_xeros_values_fillable_when_only_the_name_changes(client, admin_a, org_a):
    organisation_locale_from_xero(organisation_id=org_a.pk, time_zone="Australia/Sydney", locale="en-AU")
    assert client.login(username=admin_a.email, password=PASSWORD)
    client.post(
        reverse("organisations:settings"), {"name": "Org A Renamed", "time_zone": "Australia/Sydney", "locale": "en-AU"}
    )
    org_a.refresh_from_db()
    assert (org_a.name, org_a.locale_source) == ("Org A Renamed", "xero")


def test_xero_does_not_overwrite_the_zone_and_locale_when_an_admin_chose_them_in_settings(org_a):
    org_a.time_zone, org_a.locale, org_a.locale_source = "Europe/London", "en-GB", "settings"
    org_a.save()
    assert not organisation_locale_from_xero(organisation_id=org_a.pk, time_zone="Australia/Sydney", locale="en-AU")
    org_a.refresh_from_db()
    assert (org_a.time_zone, org_a.locale) == ("Europe/London", "en-GB")


def test_settings_is_403_when_an_accountant_posts_a_zone(client, accountant_a, org_a):
    assert client.login(username=accountant_a.email, password=PASSWORD)
    response = client.post(reverse("organisations:settings"), {"name": org_a.name, "time_zone": "Europe/Berlin"})
    assert response.status_code == 403
    org_a.refresh_from_db()
    assert org_a.time_zone == ""
