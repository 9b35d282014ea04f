"""Reconciliation that costs what it must (issue 15): each tenant polled at its own time once per cadence, sooner on
a sign that webhooks missed something (a gap in the sequence, a failed delivery, activity without webhooks); the
fan-out pages through the tenants due."""

import datetime as dt

import pytest
import responses
from django.utils import timezone

from integrations.models import ReconciliationState, WebhookEvent, XeroConnection
from integrations.services import reconcile_cadence as cadence
from integrations.services import reconciliation
from integrations.webhooks import fetch, process
from integrations.webhooks.tasks import reconcile_all, sweep_webhook_inbox
from tests.factories import TENANT_ID, make_connection, make_organisation, make_webhook_delivery, make_xero_event

pytestmark = pytest.mark.django_db

API = "https://api.xero.com/api.xro/2.0"
KEY = "test-webhook-key-current"
DAY = 86400


@pytest.fixture(autouse=True)
def cadence_settings(settings, monkeypatch):
    settings.XERO_RECONCILE_QUIET_SECONDS = DAY
    settings.XERO_RECONCILE_SOON_SECONDS = 300
    settings.XERO_RECONCILE_ACTIVITY_GRACE_SECONDS = 600
    settings.XERO_RECONCILE_EVERY_SECONDS = 60
    settings.XERO_RECONCILE_PAGE_SIZE = 500
    settings.WEBHOOK_GAP_GRACE_SECONDS = 120
    settings.XERO_WEBHOOK_KEY = KEY
    settings.XERO_WEBHOOK_KEY_PREVIOUS = ""
    monkeypatch.setattr(fetch, "xero_rate_limiter", lambda: None)
    return settings


def _tenants(count: int) -> list[int]:
    made = []
    for n in range(count):
        organisation = make_organisation(name=f"Tenant {n} Ωmega")
        make_connection(
            organisation=organisation,
            tenant_id=f"00000000-0000-4000-8000-{n:012d}",
            connection_id=f"11111111-0000-4000-8000-{n:012d}",
        )
        made.append(organisation.pk)
    return made


def _due_now(organisation_ids: list[int], *, at=None) -> None:
    cadence.reconcile_states_ensure()
    ReconciliationState.objects.filter(organisation_id__in=organisation_ids).update(
        next_due_at=(at or timezone.now()) - dt.timedelta(seconds=1)
    )


def _due_later(organisation_ids: list[int]) -> None:
    """Each tenant's phase time falls anywhere in the day, so one may be due within the "soon" window already, and a
    sign of lost events rightly leaves it alone. Tests of bringing passes forward start from passes hours away."""
    cadence.reconcile_states_ensure()
    ReconciliationState.objects.filter(organisation_id__in=organisation_ids).update(
        next_due_at=timezone.now() + dt.timedelta(hours=6)
    )


def _post(client, body: bytes, signature: str):
    return client.post(
        "/integrations/xero/webhooks/", data=body, content_type="application/json", HTTP_X_XERO_SIGNATURE=signature
    )


# ---------------------------------------------------------------- the cadence


def test_next_pass_is_at_the_tenants_own_time_within_a_day_when_a_pass_succeeds():
    start = dt.datetime(2026, 12, 3, 10, 0, tzinfo=dt.UTC)
    for organisation_id in (1, 2, 777, 10_000):
        due = cadence.reconcile_next_due(organisation_id=organisation_id, after=start)
        assert start < due <= start + dt.timedelta(days=1)
        again = cadence.reconcile_next_due(organisation_id=organisation_id, after=due)
        assert again == due + dt.timedelta(days=1)  # on its phase, exactly one cadence apart


def test_next_pass_returns_to_the_tenants_phase_when_a_pass_ran_early():
    phase_time = cadence.reconcile_next_due(organisation_id=42, after=dt.datetime(2026, 12, 3, tzinfo=dt.UTC))
    early = phase_time - dt.timedelta(hours=5)  # a gap made it run five hours before its time
    due = cadence.reconcile_next_due(organisation_id=42, after=early)
    assert due == phase_time  # 5 hours later, not a day: the tenant is back at its own time of day


def test_phases_spread_tenants_evenly_over_the_day_when_ids_are_consecutive():
    per_hour = [0] * 24
    for organisation_id in range(1, 2401):
        per_hour[int(cadence.phase_seconds(organisation_id)) // 3600] += 1
    assert min(per_hour) >= 90 and max(per_hour) <= 110  # 2,400 tenants: about 100 an hour, every hour


@responses.activate
def test_a_successful_pass_schedules_the_next_within_the_cadence_when_it_was_due():
    [organisation_id] = _tenants(1)
    _due_now([organisation_id])
    responses.get(f"{API}/Invoices", json={"Invoices": []})
    responses.get(f"{API}/Contacts", json={"Contacts": []})
    before = timezone.now()
    reconciliation.reconciliation_run(organisation_id=organisation_id)
    state = ReconciliationState.objects.get(organisation_id=organisation_id)
    assert before < state.next_due_at <= before + dt.timedelta(days=1, seconds=1)
    assert state.due_reason == "cadence"


@responses.activate
def test_a_failed_pass_is_due_soon_again_when_xero_answers_5xx():
    [organisation_id] = _tenants(1)
    _due_now([organisation_id])
    assert cadence.reconcile_due_claim() == [organisation_id]  # the fan-out's claim holds it past the interval
    responses.get(f"{API}/Invoices", status=503, json={})
    reconciliation.reconciliation_run(organisation_id=organisation_id)
    state = ReconciliationState.objects.get(organisation_id=organisation_id)
    assert state.next_due_at <= timezone.now() + dt.timedelta(seconds=300)
    assert state.due_reason == "retry"


def test_a_new_connection_gets_its_phase_time_not_an_immediate_poll_when_first_seen():
    [organisation_id] = _tenants(1)
    assert reconcile_all.run() == 0
    state = ReconciliationState.objects.get(organisation_id=organisation_id)
    assert timezone.now() < state.next_due_at <= timezone.now() + dt.timedelta(days=1)
    assert state.due_reason == "new"


# ---------------------------------------------------------------- the fan-out


def test_fan_out_pages_through_the_due_tenants_when_more_than_a_page_is_due(settings, enqueued):
    settings.XERO_RECONCILE_PAGE_SIZE = 4
    organisation_ids = _tenants(10)
    _due_now(organisation_ids)
    assert reconcile_all.run() == 4
    assert reconcile_all.run() == 4
    assert reconcile_all.run() == 2
    assert reconcile_all.run() == 0  # claimed tenants are not queued twice while their passes wait
    queued = [e.kwargs["organisation_id"] for e in enqueued]
    assert sorted(queued) == sorted(organisation_ids)


def test_fan_out_spreads_a_page_over_the_beat_interval_when_it_queues_it(enqueued):
    organisation_ids = _tenants(6)
    _due_now(organisation_ids)
    reconcile_all.run()
    countdowns = sorted(e.countdown for e in enqueued)
    assert countdowns[0] == 0 and countdowns[-1] == pytest.approx(50.0)  # 6 passes, 10 s apart over 60 s


def test_fan_out_skips_tenants_not_due_and_tenants_not_connected_when_beat_fires(enqueued):
    due, later, gone = _tenants(3)
    _due_now([due, gone])
    XeroConnection.objects.filter(organisation_id=gone).update(status="disconnected")
    assert reconcile_all.run() == 1
    assert [e.kwargs for e in enqueued] == [{"organisation_id": due}]


def test_every_tenant_is_reconciled_within_its_cadence_when_a_day_of_fan_outs_runs(settings):
    settings.XERO_RECONCILE_PAGE_SIZE = 50
    organisation_ids = _tenants(30)
    start = timezone.now()
    cadence.reconcile_states_ensure(now=start)
    seen: dict[int, dt.datetime] = {}
    for minute in range(0, 24 * 60 + 1, 10):  # a fan-out every 10 minutes for a day
        now = start + dt.timedelta(minutes=minute)
        for organisation_id in cadence.reconcile_due_claim(now=now):
            seen.setdefault(organisation_id, now)
            cadence.reconcile_pass_scheduled(organisation_id=organisation_id, started=now, ok=True)
    assert sorted(seen) == sorted(organisation_ids)
    assert all(at <= start + dt.timedelta(days=1, minutes=10) for at in seen.values())


# ---------------------------------------------------------------- signs that webhooks missed something


def test_a_gap_in_the_sequence_makes_every_tenant_due_soon_when_no_late_delivery_fills_it(client, settings):
    organisation_ids = _tenants(3)
    _due_later(organisation_ids)
    for first in (1, 4):  # 1-2, then 4-5: sequence 3 never came
        events = [make_xero_event(tenant_id=TENANT_ID, resource_id=f"r{first + i}") for i in range(2)]
        body, signature = make_webhook_delivery(events=events, key=KEY, sequence=first)
        assert _post(client, body, signature).status_code == 200
    settings.WEBHOOK_GAP_GRACE_SECONDS = 0
    sweep_webhook_inbox.run()
    soon = timezone.now() + dt.timedelta(seconds=300)
    states = ReconciliationState.objects.filter(organisation_id__in=organisation_ids)
    assert all(s.next_due_at <= soon and s.due_reason == "gap" for s in states)
    assert cadence.webhook_gaps_overdue() == 0  # reported once


def test_a_tenant_due_sooner_keeps_its_time_when_a_gap_brings_every_tenant_forward():
    later, sooner = _tenants(2)
    _due_later([later])
    in_a_minute = timezone.now() + dt.timedelta(seconds=60)
    ReconciliationState.objects.filter(organisation_id=sooner).update(next_due_at=in_a_minute, due_reason="new")
    assert cadence.reconcile_soon(reason=cadence.Reason.GAP) == 1
    kept = ReconciliationState.objects.get(organisation_id=sooner)
    assert (kept.next_due_at, kept.due_reason) == (in_a_minute, "new")
    assert ReconciliationState.objects.get(organisation_id=later).due_reason == "gap"


def test_a_late_delivery_closes_the_gap_when_it_arrives_within_the_grace(client, settings):
    organisation_ids = _tenants(2)
    _due_later(organisation_ids)
    for first in (1, 4, 3):  # 3 arrives late (a retry, or out of order)
        body, signature = make_webhook_delivery(
            events=[make_xero_event(tenant_id=TENANT_ID, resource_id=f"r{first}")], key=KEY, sequence=first
        )
        _post(client, body, signature)
    settings.WEBHOOK_GAP_GRACE_SECONDS = 0
    assert cadence.webhook_gaps_overdue() == 1  # 2 is still missing; 3 closed its part of the gap
    cadence.webhook_sequence_seen(first=2, last=2)
    cadence.webhook_sequence_seen(first=6, last=7)  # 5 missing now
    cadence.webhook_sequence_seen(first=5, last=5)
    assert cadence.webhook_gaps_overdue() == 0
    assert ReconciliationState.objects.filter(organisation_id__in=organisation_ids, due_reason="gap").count() == 2


def test_intent_to_receive_checks_open_no_gap_when_their_sequence_is_zero(client, settings):
    _tenants(1)
    body, signature = make_webhook_delivery(events=[], key=KEY)
    _post(client, body, signature)
    cadence.webhook_sequence_seen(first=10, last=12)
    body, signature = make_webhook_delivery(events=[], key=KEY)
    _post(client, body, signature)
    settings.WEBHOOK_GAP_GRACE_SECONDS = 0
    assert cadence.webhook_gaps_overdue() == 0


def test_a_failed_delivery_makes_its_tenant_due_soon_when_its_events_fail_for_good():
    failing, quiet = _tenants(2)
    _due_later([failing])
    event = WebhookEvent.objects.create(
        organisation_id=failing,
        tenant_id=TENANT_ID,
        category="INVOICE",
        event_type="UPDATE",
        resource_id="r1",
        event_date=timezone.now(),
        received_at=timezone.now(),
        attempts=process.TRANSIENT_MAX_ATTEMPTS - 1,
    )
    process._events_defer(events=[event], error="Xero answered 503", total=process.ProcessResult())
    state = ReconciliationState.objects.get(organisation_id=failing)
    assert state.due_reason == "failed_delivery"
    assert state.next_due_at <= timezone.now() + dt.timedelta(seconds=300)
    assert ReconciliationState.objects.get(organisation_id=quiet).due_reason == "new"


def test_activity_without_webhooks_makes_the_tenant_due_when_the_grace_has_passed(enqueued):
    pushed, pushed_with_webhooks, idle = _tenants(3)
    cadence.reconcile_states_ensure()
    now = timezone.now()
    XeroConnection.objects.filter(organisation_id__in=[pushed, pushed_with_webhooks]).update(
        last_synced_at=now - dt.timedelta(minutes=15)
    )
    ReconciliationState.objects.filter(organisation_id=pushed_with_webhooks).update(
        inbox_fetched_at=now - dt.timedelta(minutes=14)
    )
    assert reconcile_all.run() == 1
    assert [e.kwargs["organisation_id"] for e in enqueued] == [pushed]
    assert ReconciliationState.objects.get(organisation_id=pushed).due_reason == "activity"


def test_recent_activity_waits_for_its_webhooks_when_the_grace_has_not_passed(enqueued):
    [pushed] = _tenants(1)
    cadence.reconcile_states_ensure()
    XeroConnection.objects.filter(organisation_id=pushed).update(last_synced_at=timezone.now())
    assert reconcile_all.run() == 0
