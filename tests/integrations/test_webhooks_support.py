"""Support console: the webhook inbox per tenant (received, processed, ignored, failed, lag) and drift, staff only;
its actions are audited."""

import datetime as dt

import pytest
from django.utils import timezone

from integrations.models import IntegrationAuditEvent, ReconciliationState, WebhookEvent
from tests.factories import TENANT_ID, make_connection, make_organisation, mfa_verify_client


def event(organisation, state, *, resource="r", seconds=0.4, **kw):
    now = timezone.now()
    return WebhookEvent.objects.create(
        organisation=organisation,
        tenant_id=kw.pop("tenant_id", TENANT_ID),
        category="INVOICE",
        event_type="UPDATE",
        resource_id=f"{resource}-{state}-{WebhookEvent.objects.count()}",
        event_date=now,
        state=state,
        received_at=now - dt.timedelta(seconds=5),
        processed_at=None if state == "received" else now - dt.timedelta(seconds=5 - seconds),
        **kw,
    )


@pytest.fixture
def org(db):
    organisation = make_organisation(name="Maple Florists")
    make_connection(organisation=organisation)
    for state in ("received", "processed", "processed", "ignored", "failed"):
        event(organisation, state, last_error="XeroServerError: Xero answered 500" if state == "failed" else "")
    event(None, "ignored", tenant_id="99999999-0000-4000-8000-000000000009", outcome="unknown_tenant")
    ReconciliationState.objects.create(
        organisation=organisation,
        last_success_at=timezone.now(),
        passes=3,
        drift_last=1,
        drift_total=4,
        drift_recent=[
            {
                "category": "INVOICE",
                "resource_id": "x",
                "label": "INV-0042",
                "summary": "changed in Xero: status AUTHORISED → PAID",
                "at": timezone.now().isoformat(),
            }
        ],
    )
    return organisation


def test_inbox_overview_shows_counts_lag_and_drift_when_support_opens_it(client, support_user, org):
    client.force_login(support_user)
    mfa_verify_client(client, support_user)
    response = client.get("/support/webhooks/")
    body = response.content.decode()
    assert response.status_code == 200
    row = body[body.index("Maple Florists") :]
    for figure in (
        '<td class="num">1</td>',
        '<td class="num">2</td>',
        'pill-bad">1<',
        "0.40 / 0.40 s",
        'pill-warn">1</span> / 4',
    ):
        assert figure in row, figure
    assert "Events for Xero tenants no organisation holds (kept as ignored): 1" in body


def test_tenant_inbox_lists_events_and_drift_when_support_opens_it(client, support_user, org):
    client.force_login(support_user)
    mfa_verify_client(client, support_user)
    response = client.get(f"/support/organisations/{org.pk}/webhooks/?state=failed")
    body = response.content.decode()
    assert response.status_code == 200
    assert 'id="count-failed">1<' in body and 'id="count-processed">2<' in body
    assert "XeroServerError: Xero answered 500" in body
    assert "INV-0042" in body and "status AUTHORISED → PAID" in body
    assert body.count("pill-bad") == 1  # only the failed event is listed


def window_in_progress(client, support_user, org, *, since: dt.datetime, started: dt.datetime, **fields) -> tuple:
    """The tenant's reconciliation left a window part-way (`fields`: its category and page, ...); support opens its
    page: the page, and the "Window in progress" entry."""
    ReconciliationState.objects.filter(organisation=org).update(resume_since=since, resume_started_at=started, **fields)
    client.force_login(support_user)
    mfa_verify_client(client, support_user)
    body = client.get(f"/support/organisations/{org.pk}/webhooks/").content.decode()
    return body, body[body.index('id="reconcile-window"') :].split("</dd>")[0]


def test_tenant_inbox_says_where_a_window_not_read_to_its_end_goes_on(client, support_user, org):
    _, window = window_in_progress(
        client,
        support_user,
        org,
        since=dt.datetime(2026, 11, 24, 8, 58, tzinfo=dt.UTC),
        started=dt.datetime(2026, 11, 24, 9, 0, 30, tzinfo=dt.UTC),
        resume_category="CREDITNOTE",
        resume_page=51,
    )
    assert "changes since 2026-11-24 08:58:00" in window and "read by passes since 2026-11-24 09:00:30" in window
    assert "the next pass goes on at page 51 of credit notes" in window


def test_tenant_inbox_shows_no_window_in_progress_when_the_last_pass_read_to_its_end(client, support_user, org):
    client.force_login(support_user)
    mfa_verify_client(client, support_user)
    assert "reconcile-window" not in client.get(f"/support/organisations/{org.pk}/webhooks/").content.decode()


def test_inbox_pages_are_refused_when_user_is_not_support(client, admin_a, org):
    client.force_login(admin_a)
    assert client.get("/support/webhooks/").status_code == 403
    assert client.get(f"/support/organisations/{org.pk}/webhooks/").status_code == 403
    assert client.post(f"/support/organisations/{org.pk}/webhooks/retry-failed/").status_code == 403


def test_failed_events_are_queued_again_and_audited_when_support_retries(
    client, support_user, org, enqueued, django_capture_on_commit_callbacks
):
    client.force_login(support_user)
    mfa_verify_client(client, support_user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/support/organisations/{org.pk}/webhooks/retry-failed/")
    assert response.status_code == 302
    assert not WebhookEvent.objects.filter(organisation=org, state="failed").exists()
    assert [e.kwargs for e in enqueued] == [{"organisation_id": org.pk}]
    audit = IntegrationAuditEvent.objects.get(organisation=org, action="xero_webhooks_retry_failed")
    assert (audit.actor, audit.actor_kind, audit.detail) == (support_user, "support", {"events": 1})


def test_reconciliation_is_queued_and_audited_when_support_asks(client, support_user, org, enqueued):
    client.force_login(support_user)
    mfa_verify_client(client, support_user)
    client.post(f"/support/organisations/{org.pk}/webhooks/reconcile/")
    assert enqueued.names() == ["integrations.webhook_tasks.reconcile_organisation"]
    assert IntegrationAuditEvent.objects.filter(organisation=org, action="xero_reconcile_requested").exists()


def test_unknown_organisation_404s_when_support_opens_its_inbox(client, support_user, db):
    client.force_login(support_user)
    mfa_verify_client(client, support_user)
    assert client.get("/support/organisations/999999/webhooks/").status_code == 404


def test_console_links_to_webhook_inbox_when_support_opens_it(client, support_user, db):
    client.force_login(support_user)
    mfa_verify_client(client, support_user)
    assert b'href="/support/webhooks/"' in client.get("/support/").content


def test_fetches_skipped_are_shown_when_events_were_older_than_the_held_version(client, support_user, org):
    for _ in range(3):
        event(org, "processed", outcome="fetch_skipped")
    client.force_login(support_user)
    mfa_verify_client(client, support_user)
    overview = client.get("/support/webhooks/").content.decode()
    assert "Fetches skipped" in overview
    assert '<td class="num fetch-skipped">3</td>' in overview[overview.index("Maple Florists") :]
    page = client.get(f"/support/organisations/{org.pk}/webhooks/").content.decode()
    assert 'id="count-fetch-skipped">3<' in page and 'id="count-processed">5<' in page


def test_a_window_in_progress_is_shown_in_utc_and_says_so_for_a_tenant_east_of_utc(client, support_user, org):
    """Support's pages show every tenant's times in UTC, named: a window of a tenant in Auckland (UTC+13 in November)
    that began at 00:58 on the 25th there reads "2026-11-24 11:58:00 UTC", never the bare hour of either zone."""
    org.time_zone = "Pacific/Auckland"
    org.save(update_fields=["time_zone"])
    body, window = window_in_progress(
        client,
        support_user,
        org,
        since=dt.datetime(2026, 11, 24, 11, 58, tzinfo=dt.UTC),
        started=dt.datetime(2026, 11, 24, 12, 0, 30, tzinfo=dt.UTC),
        last_success_at=dt.datetime(2026, 11, 24, 8, 50, tzinfo=dt.UTC),
        resume_category="INVOICE",
        resume_page=3,
    )
    assert "the next pass goes on at page 3 of invoices" in window
    shown = [part.split(",")[0].split(";")[0].strip() for part in window.split("since ")[1:]]
    assert shown == ["2026-11-24 11:58:00 UTC", "2026-11-24 12:00:30 UTC"]
    assert "2026-11-24 08:50:00 UTC" in body  # caught up to
