"""The support console's per-organisation usage chart: calls per minute against Xero's 60 a minute, 429s marked,
webhook lag p95 per hour, summary figures and a table under it, an empty state, and nothing of another
organisation."""

import datetime as dt
import re
import uuid

import pytest
from django.utils import timezone

from integrations.models import WebhookEvent
from integrations.usage import record as usage_record
from integrations.usage.chart import XERO_MINUTE_LIMIT, usage_chart_for
from tests.factories import make_connection

pytestmark = pytest.mark.django_db


def _event(org, *, received, lag_seconds):
    WebhookEvent.objects.create(
        organisation=org,
        tenant_id=org.xero_connection.tenant_id,
        category="INVOICE",
        event_type="UPDATE",
        resource_id=str(uuid.uuid4()),
        event_date=received,
        state="processed",
        received_at=received,
        processed_at=received + dt.timedelta(seconds=lag_seconds),
    )


@pytest.fixture
def busy(org_a, org_b):
    make_connection(organisation=org_a)
    make_connection(organisation=org_b, tenant_id=str(uuid.uuid4()), connection_id=str(uuid.uuid4()))
    now = timezone.now()
    peak_at = now - dt.timedelta(hours=3, minutes=2)
    for _ in range(58):
        usage_record.xero_call_recorded(organisation_id=org_a.pk, status=200, day_remaining=4100, at=peak_at)
    for _ in range(2):
        usage_record.xero_call_recorded(organisation_id=org_a.pk, status=429, at=peak_at)
    for _ in range(12):
        usage_record.xero_call_recorded(
            organisation_id=org_a.pk, status=200, day_remaining=4088, at=now - dt.timedelta(minutes=30)
        )
    usage_record.xero_call_recorded(organisation_id=org_a.pk, status=200, at=now - dt.timedelta(hours=30))  # too old
    for _ in range(99):  # another organisation's usage never shows
        usage_record.xero_call_recorded(organisation_id=org_b.pk, status=429, at=now - dt.timedelta(minutes=5))
    for lag in (1, 2, 2, 3, 30):
        _event(org_a, received=now - dt.timedelta(hours=2), lag_seconds=lag)
    _event(org_b, received=now - dt.timedelta(hours=2), lag_seconds=500)
    return {"peak_at": peak_at}


def test_the_chart_summarises_the_organisations_day(busy, org_a):
    chart = usage_chart_for(org_a)
    assert chart.calls_total == 72
    assert chart.peak_calls == 60
    assert chart.peak_at == usage_record.minute_of(busy["peak_at"])
    assert chart.rate_limited_total == 2
    assert chart.day_remaining == 4088  # the latest Xero reported
    assert chart.lag_count == 5 and 3 <= chart.lag_p95 <= 30 and chart.lag_p50 == pytest.approx(2, abs=0.5)
    assert len(chart.marks_429) == 1
    assert chart.calls_top < chart.limit_y < chart.calls_bottom
    # The polyline spans the whole window, peaks exactly at the minute of 60 calls (y of the limit line).
    points = [tuple(map(float, p.split(","))) for p in chart.calls_points.split()]
    assert points[0][0] == chart.left and points[-1][0] <= chart.right_edge
    assert min(y for _, y in points) == chart.limit_y
    assert len(chart.lag_bars) == 1
    # The per-hour table: the peak's hour and the recent hour (3 h and 30 min ago), plus the hour of the events.
    assert sorted((h.calls, h.peak, h.rate_limited) for h in chart.hours if h.calls) == [(12, 12, 0), (60, 60, 2)]
    assert [h.lag_count for h in chart.hours if h.lag_count] == [5]
    assert chart.limit_y == pytest.approx(
        chart.calls_bottom - (chart.calls_bottom - chart.calls_top) * XERO_MINUTE_LIMIT / 80, abs=0.1
    )  # scale 0-80: the limit at 60


def test_support_sees_the_chart_with_its_figures(busy, org_a, support_user, login_as):
    response = login_as(support_user).get(f"/support/organisations/{org_a.pk}/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "Xero usage, last 24 hours" in html
    assert re.search(r'<svg class="usage-chart"[^>]*role="img"[^>]*aria-labelledby="usage-calls-svg-title', html)
    assert '<line class="limit"' in html and "Xero limit 60/min" in html
    assert '<polyline class="calls"' in html
    assert html.count('class="mark-429"') == 1 and "2 calls answered 429" in html
    assert html.count('class="lag-bar"') == 1
    figures = re.search(r'<dl class="usage-figures".*?</dl>', html, re.S).group(0)
    assert ">60 <" in figures and "4088" in figures and ">2<" in figures
    assert "<summary>Figures per hour</summary>" in html
    assert "<script" not in html.split('id="usage-heading"')[1].split("</section>")[0]
    assert "99" not in figures and "500" not in figures  # nothing of organisation B


def test_an_organisation_without_usage_shows_an_empty_state(org_b, support_user, login_as):
    html = login_as(support_user).get(f"/support/organisations/{org_b.pk}/").content.decode()
    assert 'id="usage-empty"' in html and '<svg class="usage-chart"' not in html


def test_only_support_staff_see_the_chart(busy, org_a, admin_a, login_as):
    assert login_as(admin_a).get(f"/support/organisations/{org_a.pk}/").status_code == 403
