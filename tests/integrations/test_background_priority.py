"""Each background service names its class to the limiter (issue 15): webhook fetches, reconciliation and connection
checks are counted apart, and a health check that the limiter holds back comes back later instead of failing."""

import pytest
import responses

from integrations.services import connection as connection_services
from integrations.services import reconciliation
from integrations.usage.models import XeroApiUsage
from integrations.webhooks import parse, process, record
from integrations.xero.ratelimit import rate_limiter
from tests.factories import TENANT_ID, make_connection, make_webhook_delivery, make_xero_event
from tests.integrations.conftest import xero_json

pytestmark = pytest.mark.django_db

API = "https://api.xero.com/api.xro/2.0"
CONNECTIONS_URL = "https://api.xero.com/connections"


@pytest.fixture
def connection(org_a, settings):
    settings.WEBHOOK_FETCH_INTERVAL_SECONDS = 0
    return make_connection(organisation=org_a)


def _usage(connection):
    row = XeroApiUsage.objects.get(organisation_id=connection.organisation_id)
    return {
        "calls": row.calls,
        "webhook": row.webhook_calls,
        "reconcile": row.reconcile_calls,
        "health": row.health_calls,
    }


@responses.activate
def test_a_connection_check_waits_and_queues_itself_again_when_the_background_share_is_used(
    connection, settings, enqueued
):
    settings.XERO_BACKGROUND_SHARE = 0.0  # no room for background at all
    rate_limiter.cache_clear()
    assert connection_services.xero_connection_verify(connection_id=connection.pk) == "rate_limited"
    assert len(responses.calls) == 0  # refused before reaching Xero
    [again] = enqueued
    assert again.name == "integrations.xero_connection_verify"
    assert again.args == (connection.pk,) and again.countdown >= 1


@responses.activate
def test_a_connection_check_is_counted_as_health_when_it_reaches_xero(connection):
    responses.get(CONNECTIONS_URL, json=xero_json("connections_several.json"))
    assert connection_services.xero_connection_verify(connection_id=connection.pk) == "connected"
    assert _usage(connection) == {"calls": 1, "webhook": 0, "reconcile": 0, "health": 1}
    assert rate_limiter().app_usage()["health"] == 1


@responses.activate
def test_webhook_fetches_are_counted_as_webhook_class_when_events_are_processed(connection):
    body, _ = make_webhook_delivery(events=[make_xero_event(tenant_id=TENANT_ID, resource_id="r-1")], key="k")
    record.webhook_events_record(events=parse.webhook_delivery_parse(body=body))
    responses.get(f"{API}/Invoices", json={"Invoices": []})
    process.webhook_inbox_process(organisation_id=connection.organisation_id)
    assert _usage(connection) == {"calls": 1, "webhook": 1, "reconcile": 0, "health": 0}
    assert rate_limiter().app_usage()["webhook"] == 1


@responses.activate
def test_reconciliation_polls_are_counted_as_reconcile_class_when_a_pass_runs(connection):
    responses.get(f"{API}/Invoices", json={"Invoices": []})
    responses.get(f"{API}/Contacts", json={"Contacts": []})
    reconciliation.reconciliation_run(organisation_id=connection.organisation_id)
    assert _usage(connection) == {"calls": 2, "webhook": 0, "reconcile": 2, "health": 0}
    assert rate_limiter().app_usage() == {"customer": 0, "webhook": 0, "reconcile": 2, "health": 0}
