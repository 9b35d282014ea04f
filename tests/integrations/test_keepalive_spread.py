"""The daily check of every connection, spread over the day: each at its own second (from its id), the fan-out
reading one window and one page at a time."""

import datetime as dt

import pytest
from django.utils import timezone

from integrations import selectors, tasks
from integrations.models import XeroConnection
from integrations.selectors import DAY_SECONDS, keepalive_offset_seconds
from tests.factories import make_connection, make_organisation

pytestmark = pytest.mark.django_db


def _connections(count: int) -> list[XeroConnection]:
    made = []
    for n in range(count):
        made.append(
            make_connection(
                organisation=make_organisation(name=f"Tenant {n}"),
                tenant_id=f"00000000-0000-4000-8000-{n:012d}",
                connection_id=f"11111111-0000-4000-8000-{n:012d}",
            )
        )
    XeroConnection.objects.update(last_verified_at=timezone.now())
    return made


def test_offsets_spread_evenly_over_the_day_when_ids_are_consecutive():
    offsets = [keepalive_offset_seconds(pk) for pk in range(1, 1441)]
    per_hour = [0] * 24
    for offset in offsets:
        per_hour[offset // 3600] += 1
    assert min(per_hour) >= 55 and max(per_hour) <= 65  # 1,440 tenants: about 60 an hour, every hour


def test_fanout_enqueues_only_the_window_due_each_at_its_own_second_when_it_runs(settings, enqueued):
    settings.XERO_KEEPALIVE_WINDOW_SECONDS = 600
    made = _connections(30)
    now = timezone.now()
    start = int((now - now.replace(hour=0, minute=0, second=0, microsecond=0)).total_seconds())
    start -= start % 600
    due_ids = {c.pk for c in made if start <= keepalive_offset_seconds(c.pk) < start + 600}
    count = tasks.xero_keepalive_fanout_task.run()
    assert count == len(due_ids) == len(enqueued)
    assert {e.args[0] for e in enqueued} == due_ids
    for e in enqueued:
        assert 0 <= e.options.get("countdown", 0) <= 600


def test_a_whole_day_of_windows_checks_every_connection_once_when_all_were_checked_yesterday(settings):
    made = _connections(40)
    midnight = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    seen: list[int] = []
    for window_start in range(0, DAY_SECONDS, 600):
        now = midnight + dt.timedelta(seconds=window_start)
        XeroConnection.objects.update(last_verified_at=now - dt.timedelta(hours=12))
        due = selectors.connection_ids_due_keepalive(now=now, window_start=window_start, window_seconds=600)
        seen += [d.connection_id for d in due]
    assert sorted(seen) == sorted(c.pk for c in made)


def test_fanout_pages_through_the_due_connections_when_more_than_a_page_is_due(settings, enqueued):
    settings.XERO_KEEPALIVE_PAGE_SIZE = 4
    made = _connections(10)
    XeroConnection.objects.update(last_verified_at=None)  # never checked: all due now
    assert tasks.xero_keepalive_fanout_task.run() == 4
    keepalives = [e for e in enqueued if e.name == "integrations.xero_connection_keepalive"]
    follow = [e for e in enqueued if e.name == "integrations.xero_keepalive_fanout"]
    assert [e.args[0] for e in keepalives] == sorted(c.pk for c in made)[:4]
    assert len(follow) == 1 and follow[0].args[0] == keepalives[-1].args[0]
    enqueued.clear()
    assert tasks.xero_keepalive_fanout_task.run(*follow[0].args) == 4
    assert tasks.xero_keepalive_fanout_task.run(sorted(c.pk for c in made)[7], follow[0].args[1]) == 2


def test_a_connection_missed_for_over_a_day_is_caught_up_when_outside_its_window(settings):
    [connection] = _connections(1)
    now = timezone.now()
    offset = keepalive_offset_seconds(connection.pk)
    window_start = (offset + DAY_SECONDS // 2) // 600 * 600 % DAY_SECONDS  # twelve hours away from its time
    due = selectors.connection_ids_due_keepalive(now=now, window_start=window_start, window_seconds=600)
    assert due == []
    XeroConnection.objects.update(last_verified_at=now - dt.timedelta(hours=25))
    due = selectors.connection_ids_due_keepalive(now=now, window_start=window_start, window_seconds=600)
    assert [d.connection_id for d in due] == [connection.pk]


def test_disconnected_connections_are_not_checked_when_the_window_comes():
    [connection] = _connections(1)
    XeroConnection.objects.update(status="disconnected", last_verified_at=None)
    assert selectors.connection_ids_due_keepalive(window_start=0, window_seconds=DAY_SECONDS) == []
    assert connection.pk


def _windows_after_its_second(connection: XeroConnection, *, into: float, count: int) -> list[tuple[dt.datetime, int]]:
    """The moments `into` seconds into each of the `count` windows after the one holding the connection's daily
    second, with each window's start (seconds after that day's midnight)."""
    midnight = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    offset = keepalive_offset_seconds(connection.pk)
    moments = []
    for n in range(1, count + 1):
        now = midnight + dt.timedelta(seconds=offset - offset % 600 + 600 * n + into)
        second_of_day = int((now - now.replace(hour=0, minute=0, second=0, microsecond=0)).total_seconds())
        moments.append((now, second_of_day - second_of_day % 600))
    return moments


@pytest.mark.parametrize(
    ("connection_id", "fanout"),
    [(900_002, 1), (900_039, 2)],  # its second 14 s and 573 s into its ten-minute window
)
def test_a_window_beat_never_fanned_out_is_caught_up_at_the_next_fanout_or_the_one_after(
    settings, connection_id, fanout
):
    """Beat's first fan-out comes one interval after it starts (a deploy, a restart): the window before it was
    never fanned out. Its connections, last checked a day ago, are checked at the next fan-out, not a day late; one
    whose second falls in the last half minute of its window is then less than a day and a minute past its check
    (the stale mark), so it goes at the fan-out after, ten minutes later."""
    [made] = _connections(1)
    XeroConnection.objects.filter(pk=made.pk).update(id=connection_id)  # its id sets its second of the day
    connection = XeroConnection.objects.get(pk=connection_id)
    fanouts = _windows_after_its_second(connection, into=30, count=2)
    now = fanouts[0][0]
    at = now.replace(hour=0, minute=0, second=0, microsecond=0) + dt.timedelta(
        seconds=keepalive_offset_seconds(connection.pk)
    )
    if at > now:  # the window after it crossed midnight
        at -= dt.timedelta(days=1)
    XeroConnection.objects.update(last_verified_at=at - dt.timedelta(days=1))
    due = [
        [
            d.connection_id
            for d in selectors.connection_ids_due_keepalive(now=when, window_start=start, window_seconds=600)
        ]
        for when, start in fanouts
    ]
    assert due.index([connection.pk]) == fanout - 1


def test_each_check_is_queued_for_its_own_second_or_later_never_before(settings):
    """The fan-out runs at a fraction of a second: a countdown rounded down would run the check before its second."""
    made = _connections(30)
    midnight = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    offset = keepalive_offset_seconds(made[0].pk)
    window_start = offset - offset % 3600
    now = midnight + dt.timedelta(seconds=window_start, microseconds=700_000)
    due = selectors.connection_ids_due_keepalive(now=now, window_start=window_start, window_seconds=3600)
    in_window = [d for d in due if window_start <= keepalive_offset_seconds(d.connection_id) < window_start + 3600]
    assert made[0].pk in {d.connection_id for d in in_window}
    for d in in_window:
        runs_at = now + dt.timedelta(seconds=d.countdown)
        assert runs_at >= midnight + dt.timedelta(seconds=keepalive_offset_seconds(d.connection_id))
