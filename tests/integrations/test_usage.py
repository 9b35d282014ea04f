"""Xero usage per organisation and minute: every call through the front door is counted (429s, failures, the
remaining quotas Xero reported), failed refreshes too, old minutes are pruned, and counting never breaks a call."""

import datetime as dt

import pytest
import requests
import responses
from django.db import transaction
from django.utils import timezone

from integrations.models import XeroApiUsage
from integrations.tasks import xero_housekeeping_task
from integrations.usage import record as usage_record
from integrations.xero.client import XeroClient
from integrations.xero.exceptions import XeroRateLimited, XeroServerError, XeroTimeout
from integrations.xero.tokens import access_token_get

pytestmark = pytest.mark.django_db

API = "https://api.xero.com/api.xro/2.0"
TOKEN_URL = "https://identity.xero.com/connect/token"


def _rows(org):
    return list(XeroApiUsage.objects.filter(organisation=org).order_by("minute"))


@responses.activate
def test_every_call_is_counted_with_429s_failures_and_the_last_remaining_quotas(connection, org_a, org_b):
    responses.get(
        f"{API}/Organisation",
        json={"Organisations": [{}]},
        headers={"X-MinLimit-Remaining": "58", "X-DayLimit-Remaining": "4990"},
    )
    responses.get(
        f"{API}/Organisation",
        json={"Organisations": [{}]},
        headers={"X-MinLimit-Remaining": "57", "X-DayLimit-Remaining": "4989"},
    )
    responses.get(
        f"{API}/Invoices", status=429, json={}, headers={"Retry-After": "12", "X-Rate-Limit-Problem": "minute"}
    )
    responses.get(f"{API}/Contacts", status=503, json={})
    responses.get(f"{API}/Accounts", body=requests.ReadTimeout("slow"))
    client = XeroClient(connection.pk)
    client.organisation()
    client.organisation()
    with pytest.raises(XeroServerError):
        client.get("/Contacts")
    with pytest.raises(XeroTimeout):
        client.get("/Accounts")
    with pytest.raises(XeroRateLimited):  # last: the client's limiter then holds the tenant for Retry-After
        client.get("/Invoices")

    rows = _rows(org_a)  # one row a minute: usually one, two if the test straddled a minute's end
    assert [sum(getattr(r, f) for r in rows) for f in ("calls", "rate_limited", "failed", "refresh_failures")] == [
        5,
        1,
        2,
        0,
    ]
    last = [r for r in rows if r.day_remaining is not None][-1]
    assert (last.min_remaining, last.day_remaining) == (57, 4989)  # calls without the headers keep the last seen
    assert all(r.minute.second == 0 and r.minute.microsecond == 0 for r in rows)
    assert _rows(org_b) == []  # scoped to the organisation that made the calls


def test_calls_are_bucketed_by_minute_and_pruned_after_two_days(org_a):
    now = timezone.now()
    old = now - dt.timedelta(days=2, minutes=5)
    usage_record.xero_call_recorded(organisation_id=org_a.pk, status=200, min_remaining=59, day_remaining=4999, at=old)
    usage_record.xero_call_recorded(organisation_id=org_a.pk, status=200, at=now - dt.timedelta(minutes=3))
    usage_record.xero_call_recorded(organisation_id=org_a.pk, status=429, at=now)
    usage_record.xero_call_recorded(organisation_id=org_a.pk, status=200, at=now)
    assert [(r.calls, r.rate_limited) for r in _rows(org_a)] == [(1, 0), (1, 0), (2, 1)]

    result = xero_housekeeping_task.run()

    assert result["usage_minutes_deleted"] == 1
    assert [r.calls for r in _rows(org_a)] == [1, 2]


@responses.activate
def test_a_failed_refresh_is_counted(connection, org_a):
    responses.post(TOKEN_URL, status=503, json={})
    with pytest.raises(Exception):  # noqa: B017 - the token store's own error types are tested elsewhere
        access_token_get(connection_id=connection.pk, force_refresh=True)
    responses.replace(responses.POST, TOKEN_URL, status=400, json={"error": "invalid_grant"})
    with pytest.raises(Exception):  # noqa: B017
        access_token_get(connection_id=connection.pk, force_refresh=True)
    assert sum(r.refresh_failures for r in _rows(org_a)) == 2
    assert sum(r.calls for r in _rows(org_a)) == 0


@responses.activate
def test_counting_never_breaks_a_call(connection, org_a, monkeypatch):
    responses.get(f"{API}/Organisation", json={"Organisations": [{"Name": "Maple"}]})

    monkeypatch.setattr(usage_record, "_UPSERT", usage_record._UPSERT.replace(usage_record._TABLE, "no_such_table"))
    assert XeroClient(connection.pk).organisation()["Name"] == "Maple"
    assert _rows(org_a) == []
    # And the caller's transaction is still usable afterwards (the failure stayed inside a savepoint).
    with transaction.atomic():
        usage_record.xero_call_recorded(organisation_id=org_a.pk, status=200)
        assert XeroApiUsage.objects.count() == 0
    monkeypatch.undo()
    usage_record.xero_call_recorded(organisation_id=org_a.pk, status=200)
    assert XeroApiUsage.objects.filter(organisation=org_a).count() == 1


@pytest.mark.django_db(transaction=True)
def test_counting_never_breaks_a_call_when_postgresql_closed_our_connection(org_a, caplog):
    from django.db import connection as db

    db.ensure_connection()
    db.connection.close()  # as a PostgreSQL restart leaves it: Django then raises InterfaceError, not DatabaseError
    usage_record.xero_call_recorded(organisation_id=org_a.pk, status=200)  # must not raise
    assert any(getattr(r, "event", "") == "xero.usage.not_recorded" for r in caplog.records)
    db.close()


def _synchronous_commit(db) -> str:
    with db.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_a_count_made_outside_a_transaction_does_not_wait_for_the_disk(org_a):
    """Every worker counts every call on the same minute's row. Committed synchronously, each count held that row
    locked through a WAL flush while the others queued on it: about 10 ms after every answer from Xero on a 2-vCPU
    machine, in the push's critical path (docs/benchmarks.md). A count is operational data that may be lost (the
    module says so), so its own commit does not wait for the disk: for that statement alone."""
    from django.db import connection as db
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(db) as queries:
        usage_record.xero_call_recorded(organisation_id=org_a.pk, status=200)
        usage_record.xero_call_recorded(organisation_id=org_a.pk, status=200)

    assert [q["sql"].split(";")[0] for q in queries] == ["SET LOCAL synchronous_commit TO OFF"] * 2
    assert XeroApiUsage.objects.get(organisation=org_a).calls == 2
    assert _synchronous_commit(db) == "on"  # nothing else of this connection's is committed that way
    with transaction.atomic():  # inside a caller's transaction (the connect flow), that transaction is left as it is
        usage_record.xero_call_recorded(organisation_id=org_a.pk, status=200)
        assert _synchronous_commit(db) == "on"
    assert XeroApiUsage.objects.get(organisation=org_a).calls == 3
