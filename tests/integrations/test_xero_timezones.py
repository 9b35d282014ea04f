"""Xero's organisation time zones (its own names) as IANA zones, and the connect flow filling the organisation's
zone and locale from GET /Organisation unless an admin chose them in Settings."""

import re
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import responses

from integrations.models import XeroConnection
from integrations.xero.timezones import COUNTRY_ZONES, XERO_TIMEZONES, xero_locale, xero_time_zone
from tests.factories import token_response
from tests.integrations.conftest import xero_json
from tests.integrations.test_connect import CONNECTIONS_URL, ORGANISATION_URL, TOKEN_URL, follow_callback, start

SPEC = Path(__file__).resolve().parents[3] / "shared" / "xero-openapi" / "xero_accounting.yaml"


def spec_time_zones() -> list[str]:
    lines = SPEC.read_text().splitlines()
    start_at = lines.index("    TimeZone:")
    names = []
    for text in lines[start_at + 1 :]:
        match = re.match(r"^        - (\S+)$", text)
        if match:
            names.append(match.group(1).strip('"'))
        elif names:
            break
    return names


def test_every_xero_time_zone_of_the_spec_maps_to_a_real_iana_zone_when_read_from_the_enum():
    names = spec_time_zones()
    assert len(names) > 100
    assert sorted(set(names) - set(XERO_TIMEZONES)) == []
    for zone in {*XERO_TIMEZONES.values(), *COUNTRY_ZONES.values()}:
        ZoneInfo(zone)


@pytest.mark.parametrize(
    ("xero", "country", "zone"),
    [
        ("AUSEASTERNSTANDARDTIME", "AU", "Australia/Sydney"),
        ("EAUSTRALIASTANDARDTIME", "AU", "Australia/Brisbane"),
        ("WAUSTRALIASTANDARDTIME", "AU", "Australia/Perth"),
        ("CENAUSTRALIASTANDARDTIME", "AU", "Australia/Adelaide"),
        ("TASMANIASTANDARDTIME", "AU", "Australia/Hobart"),
        ("NEWZEALANDSTANDARDTIME", "NZ", "Pacific/Auckland"),
        ("GMTSTANDARDTIME", "GB", "Europe/London"),
        ("EASTERNSTANDARDTIME", "US", "America/New_York"),
        ("PACIFICSTANDARDTIME", "US", "America/Los_Angeles"),
        ("CENTRALSTANDARDTIME", "US", "America/Chicago"),
        ("MOUNTAINSTANDARDTIME", "US", "America/Denver"),
        ("CANADACENTRALSTANDARDTIME", "CA", "America/Regina"),
        ("SOUTHAFRICASTANDARDTIME", "ZA", "Africa/Johannesburg"),
        ("SINGAPORESTANDARDTIME", "SG", "Asia/Singapore"),
        ("INDIASTANDARDTIME", "IN", "Asia/Kolkata"),
        ("", "NZ", "Pacific/Auckland"),
        ("SOMEFUTURESTANDARDTIME", "CA", "America/Toronto"),
        ("", "", ""),
    ],
)
def test_xero_time_zone_is_the_iana_zone_or_the_countrys_when_xero_names_one(xero, country, zone):
    assert xero_time_zone(timezone_name=xero, country_code=country) == zone


def test_xero_locale_follows_the_country_when_known():
    assert [xero_locale(country_code=c) for c in ("AU", "NZ", "GB", "US", "ZA", "XX")] == [
        "en-AU",
        "en-NZ",
        "en-GB",
        "en-US",
        "en-ZA",
        "",
    ]


def _connect(client, organisation_body):
    params = start(client)
    responses.post(TOKEN_URL, json=token_response())
    responses.get(CONNECTIONS_URL, json=xero_json("connections_one.json"))
    responses.get(ORGANISATION_URL, json=organisation_body)
    return follow_callback(client, code="the-code", state=params["state"])


@pytest.mark.django_db
@responses.activate
def test_connect_fills_the_zone_and_locale_from_xeros_organisation_when_none_was_chosen(login_as, admin_a, org_a):
    _connect(login_as(admin_a), xero_json("organisation_au.json"))
    assert XeroConnection.objects.get(organisation=org_a).status == "active"
    org_a.refresh_from_db()
    assert (org_a.time_zone, org_a.locale, org_a.locale_source) == ("Australia/Sydney", "en-AU", "xero")


@pytest.mark.django_db
@responses.activate
def test_connect_keeps_the_zone_and_locale_when_an_admin_chose_them_in_settings(login_as, admin_a, org_a):
    org_a.time_zone, org_a.locale, org_a.locale_source = "Europe/London", "en-GB", "settings"
    org_a.save()
    _connect(login_as(admin_a), xero_json("organisation_au.json"))
    org_a.refresh_from_db()
    assert (org_a.time_zone, org_a.locale) == ("Europe/London", "en-GB")


@pytest.mark.django_db
@responses.activate
def test_connect_takes_the_countrys_zone_when_xero_gives_no_timezone(login_as, admin_a, org_a):
    _connect(login_as(admin_a), xero_json("organisation.json"))  # NZ, no Timezone
    org_a.refresh_from_db()
    assert (org_a.time_zone, org_a.locale) == ("Pacific/Auckland", "en-NZ")
