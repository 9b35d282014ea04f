"""The support console's app-wide usage (issue 15): every organisation's calls a minute by class against Xero's
app-wide limit and the background cap, for support staff only, in a fixed number of queries."""

import datetime as dt

import pytest
from django.utils import timezone

from integrations.usage import record as usage_record
from integrations.usage.chart import app_usage_chart
from tests.factories import make_organisation, mfa_verify_client

pytestmark = pytest.mark.django_db

URL = "/support/xero-usage/"


@pytest.fixture
def calls():
    now = timezone.now()
    first, second = make_organisation(name="Ærø Bakery"), make_organisation(name="東京 Trading")
    at = now - dt.timedelta(minutes=3)
    for organisation, priority, count in (
        (first, "customer", 30),
        (second, "customer", 12),
        (first, "webhook", 4),
        (second, "reconcile", 6),
        (second, "health", 1),
    ):
        for _ in range(count):
            usage_record.xero_call_recorded(organisation_id=organisation.pk, status=200, priority=priority, at=at)
    usage_record.xero_call_recorded(
        organisation_id=first.pk, status=200, priority="reconcile", at=now - dt.timedelta(hours=2)
    )
    return now


def test_app_chart_sums_every_organisation_by_class_when_several_call(calls):
    chart = app_usage_chart(now=calls)
    assert chart.totals == {"customer": 42, "webhook": 4, "reconcile": 7, "health": 1}
    assert (chart.peak_calls, chart.peak_background) == (53, 11)
    assert (chart.limit, chart.background_cap) == (10000, 2000)
    assert [(h.calls, h.background, h.peak) for h in chart.hours][-1] == (53, 11, 53)
    assert chart.all_points and chart.background_points


def test_support_sees_the_app_usage_page_and_others_do_not_when_they_open_it(client, calls, support_user, admin_a):
    client.force_login(support_user)
    mfa_verify_client(client, support_user)
    body = client.get(URL).content.decode()
    assert 'id="app-usage-figures"' in body and "background cap 2000/min" in body
    assert 'id="app-usage-reconcile">7<' in body
    client.force_login(admin_a)
    assert client.get(URL).status_code == 403


def test_app_usage_page_costs_a_fixed_number_of_queries_when_organisations_grow(
    client, calls, support_user, django_assert_max_num_queries
):
    client.force_login(support_user)
    mfa_verify_client(client, support_user)
    for i in range(20):
        usage_record.xero_call_recorded(organisation_id=make_organisation(name=f"More {i}").pk, status=200)
    with django_assert_max_num_queries(8):
        assert client.get(URL).status_code == 200
