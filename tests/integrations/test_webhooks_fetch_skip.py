"""Webhook fetches cost what they must (issue 15): an event about an invoice whose Xero version we already hold newer
than the event (a replay, a late delivery, an event a reconciliation pass overtook) is not fetched from Xero; its
outcome is `fetch_skipped`. Equal timestamps still fetch: our own pushes' echoes are fetched as before."""

import ast
import copy
import datetime as dt
import json
from pathlib import Path

import pytest
import responses
from responses import matchers

from integrations.models import WebhookEvent
from integrations.webhooks import fetch
from integrations.webhooks import process as inbox
from integrations.webhooks.parse import webhook_delivery_parse
from integrations.webhooks.record import webhook_events_record
from invoices.selectors import invoice_versions_held
from tests.factories import (
    TENANT_ID,
    make_connection,
    make_organisation,
    make_pushed_invoice,
    make_webhook_delivery,
    make_xero_event,
)

API = "https://api.xero.com/api.xro/2.0"
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "xero" / "invoice_authorised.json"
# Xero's UpdatedDateUTC carries milliseconds (/Date(1574846400250+0000)/).
HELD = dt.datetime(2026, 11, 24, 9, 0, 0, 250_000, tzinfo=dt.UTC)
INV_A = "0f0d5a46-9c4a-4f7e-8a39-2d2c4a7b1e01"
INV_B = "0f0d5a46-9c4a-4f7e-8a39-2d2c4a7b1e02"


def xero_invoice(invoice_id: str, at: dt.datetime, **changes) -> dict:
    data = copy.deepcopy(json.loads(FIXTURE.read_text())["Invoices"][0])
    data.update(InvoiceID=invoice_id, UpdatedDateUTC=f"/Date({int(at.timestamp() * 1000)}+0000)/", **changes)
    return data


@pytest.fixture(autouse=True)
def no_limiter(monkeypatch, settings):
    monkeypatch.setattr(fetch, "xero_rate_limiter", lambda: None)
    settings.WEBHOOK_FETCH_INTERVAL_SECONDS = 0


@pytest.fixture
def org(db):
    organisation = make_organisation(name="İzmir Çiçekçilik")
    make_connection(organisation=organisation)
    return organisation


def receive(*events) -> None:
    body, _ = make_webhook_delivery(events=list(events), key="k")
    webhook_events_record(events=webhook_delivery_parse(body=body))


def event(resource_id: str, at: str) -> dict:
    return make_xero_event(tenant_id=TENANT_ID, resource_id=resource_id, at=at)


def outcomes() -> list[tuple[str, str, str]]:
    return list(WebhookEvent.objects.order_by("event_date", "pk").values_list("resource_id", "state", "outcome"))


@responses.activate
def test_fetch_is_skipped_when_the_held_version_is_newer_than_the_event(org):
    make_pushed_invoice(organisation=org, xero_invoice_id=INV_A, xero_updated_at=HELD)
    receive(event(INV_A, "2026-11-24T08:55:00.000"))  # a replay of an event older than what we hold
    result = inbox.webhook_inbox_process(organisation_id=org.pk)
    assert len(responses.calls) == 0
    assert result.processed == 1
    assert outcomes() == [(INV_A, "processed", "fetch_skipped")]


@responses.activate
def test_only_the_resources_still_needed_are_fetched_when_a_round_mixes_old_and_new_events(org):
    make_pushed_invoice(organisation=org, xero_invoice_id=INV_A, xero_updated_at=HELD)
    make_pushed_invoice(organisation=org, xero_invoice_id=INV_B, xero_updated_at=HELD)
    receive(event(INV_A, "2026-11-24T08:55:00.000"), event(INV_B, "2026-11-24T09:05:00.000"))
    later = HELD + dt.timedelta(minutes=5)
    responses.get(
        f"{API}/Invoices",
        json={"Invoices": [xero_invoice(INV_B, later, Status="PAID", AmountPaid=110.0, AmountDue=0.0)]},
        match=[matchers.query_param_matcher({"IDs": INV_B, "page": "1", "unitdp": "4"})],
    )
    inbox.webhook_inbox_process(organisation_id=org.pk)
    assert len(responses.calls) == 1
    assert outcomes() == [(INV_A, "processed", "fetch_skipped"), (INV_B, "processed", "applied")]


@responses.activate
def test_the_older_event_is_skipped_and_the_newer_fetched_when_one_invoice_has_both(org):
    make_pushed_invoice(organisation=org, xero_invoice_id=INV_A, xero_updated_at=HELD)
    receive(event(INV_A, "2026-11-24T08:55:00.000"), event(INV_A, "2026-11-24T09:05:00.000"))
    later = HELD + dt.timedelta(minutes=5)
    responses.get(f"{API}/Invoices", json={"Invoices": [xero_invoice(INV_A, later, Status="VOIDED")]})
    inbox.webhook_inbox_process(organisation_id=org.pk)
    assert len(responses.calls) == 1
    assert outcomes() == [(INV_A, "processed", "fetch_skipped"), (INV_A, "processed", "applied")]


@responses.activate
@pytest.mark.parametrize(
    ("held", "event_at"),
    [
        (HELD, "2026-11-24T09:00:00.250"),  # equal: our own push's echo is fetched
        (HELD, "2026-11-24T09:00:00.249"),  # 1 ms older: within the margin
        (HELD, "2026-11-24T09:00:01.000"),  # newer
        (HELD.replace(microsecond=0), "2026-11-24T08:59:59.500"),  # whole-second held: 0.5 s is within 1 s
    ],
)
def test_the_event_is_fetched_when_it_is_not_older_than_the_held_version_by_more_than_the_margin(org, held, event_at):
    make_pushed_invoice(organisation=org, xero_invoice_id=INV_A, xero_updated_at=held)
    receive(event(INV_A, event_at))
    responses.get(f"{API}/Invoices", json={"Invoices": [xero_invoice(INV_A, held)]})
    inbox.webhook_inbox_process(organisation_id=org.pk)
    assert len(responses.calls) == 1
    assert outcomes()[0][2] != "fetch_skipped"


@pytest.mark.parametrize(
    ("held", "event_date", "needed"),
    [
        (None, dt.datetime(2026, 11, 24, 9, tzinfo=dt.UTC), True),  # not held at any version
        (HELD, HELD, True),  # equal timestamps still fetch
        (HELD, HELD - dt.timedelta(milliseconds=1), True),  # 1 ms is not more than 1 ms
        (HELD, HELD - dt.timedelta(milliseconds=2), False),
        (HELD, HELD + dt.timedelta(milliseconds=1), True),
        # Either side with whole seconds only: the margin is 1 s.
        (HELD, dt.datetime(2026, 11, 24, 9, 0, 0, tzinfo=dt.UTC), True),  # held .250 vs whole-second event
        (HELD, dt.datetime(2026, 11, 24, 8, 59, 59, tzinfo=dt.UTC), False),  # 1.25 s older
        (HELD.replace(microsecond=0), dt.datetime(2026, 11, 24, 8, 59, 59, 500_000, tzinfo=dt.UTC), True),
        (HELD.replace(microsecond=0), dt.datetime(2026, 11, 24, 8, 59, 59, tzinfo=dt.UTC), True),  # exactly 1 s
        (HELD.replace(microsecond=0), dt.datetime(2026, 11, 24, 8, 59, 58, 900_000, tzinfo=dt.UTC), False),
    ],
)
def test_fetch_needed_decides_by_the_margin_of_the_coarser_timestamp(held, event_date, needed):
    assert fetch.fetch_needed(event_date=event_date, held=held) is needed


@responses.activate
def test_another_organisations_newer_copy_never_skips_the_fetch_when_it_holds_the_same_invoice_id(org):
    other = make_organisation(name="Ωmega Ltd")
    make_pushed_invoice(organisation=other, xero_invoice_id=INV_A, xero_updated_at=HELD)
    receive(event(INV_A, "2026-11-24T08:55:00.000"))
    responses.get(f"{API}/Invoices", json={"Invoices": [xero_invoice(INV_A, HELD)]})
    inbox.webhook_inbox_process(organisation_id=org.pk)
    assert len(responses.calls) == 1
    assert outcomes()[0][2] != "fetch_skipped"


@responses.activate
def test_everything_is_fetched_when_no_versions_selector_is_configured(org, settings):
    settings.XERO_RESOURCE_VERSIONS = {}
    make_pushed_invoice(organisation=org, xero_invoice_id=INV_A, xero_updated_at=HELD)
    receive(event(INV_A, "2026-11-24T08:55:00.000"))
    responses.get(f"{API}/Invoices", json={"Invoices": [xero_invoice(INV_A, HELD)]})
    inbox.webhook_inbox_process(organisation_id=org.pk)
    assert len(responses.calls) == 1
    assert outcomes()[0][2] == "unchanged"


def test_invoice_versions_held_reads_only_the_organisations_own_invoices_with_a_version(org):
    other = make_organisation(name="Ωmega Ltd")
    make_pushed_invoice(organisation=org, xero_invoice_id=INV_A, xero_updated_at=HELD)
    make_pushed_invoice(organisation=org, xero_invoice_id=INV_B, xero_updated_at=None)
    make_pushed_invoice(organisation=other, xero_invoice_id=INV_B, xero_updated_at=HELD)
    held = invoice_versions_held(organisation_id=org.pk, resource_ids=[INV_A, INV_B, "not-ours"])
    assert held == {INV_A: HELD}


def test_the_webhooks_package_never_imports_invoices():
    package = Path(fetch.__file__).resolve().parent
    offenders = {}
    for path in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            bad = [n for n in names if n == "invoices" or n.startswith("invoices.")]
            if bad:
                offenders[path.name] = bad
    assert offenders == {}, "integrations reaches invoices through settings (XERO_RESOURCE_APPLIERS/VERSIONS)"
