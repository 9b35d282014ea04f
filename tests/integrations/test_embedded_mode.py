"""`make run` without Redis: a retry is queued on the in-process runner with its countdown, never run inside the
request or the task that asked for it (eager Celery used to recurse: one Disconnect click while Xero was unreachable
made 98 DELETE attempts and 99 audit rows). Xero is mocked with `responses`."""

import re
import time

import pytest
import requests
import responses
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from coordinoter import queue
from integrations.models import IntegrationAuditEvent, OutboundOperation
from integrations.webhooks.tasks import reconcile_organisation
from tests.factories import make_connection

pytestmark = pytest.mark.django_db(transaction=True)  # on-commit callbacks run as in production

DELETE_CONNECTION = re.compile(r"https://api\.xero\.com/connections/.+")


def held(name: str) -> list[tuple[float, tuple, dict]]:
    """What the runner holds for this task: (seconds until due, args, kwargs)."""
    now = queue.runner.now()
    return [(item.due - now, item.args, item.kwargs) for item in queue.runner.pending() if item.task == name]


def only_operation(org) -> OutboundOperation:
    return OutboundOperation.objects.get(organisation=org, kind="disconnect_delete_connection")


@responses.activate
def test_disconnect_answers_at_once_with_one_attempt_when_xero_is_unreachable_in_embedded_mode(
    embedded_mode, login_as, admin_a, org_a
):
    connection = make_connection(organisation=org_a)
    delete = responses.delete(DELETE_CONNECTION, body=requests.ConnectionError("Xero is unreachable"))
    client = login_as(admin_a)
    client.get(reverse("integrations:manage"))  # warm: the first request's URLconf import is not what is timed
    started = time.monotonic()
    response = client.post(reverse("integrations:xero_disconnect"), follow=True)
    assert time.monotonic() - started < 0.5
    assert "finishes removing the connection in Xero shortly" in response.content.decode()
    assert delete.call_count == 1  # one attempt in the request, no recursion
    operation = only_operation(org_a)
    assert list(operation.outbound_attempts.values_list("action", "outcome")) == [("send", "unknown")]
    connection.refresh_from_db()
    assert (connection.status, connection.disconnect_step) == ("disconnected", "delete_connection")
    [(due_in, args, _)] = held("integrations.outbound.tasks.run_operation")
    assert args == (operation.pk,)
    assert 0 < due_in <= settings.XERO_RETRY_BASE_SECONDS  # the engine's backoff for a first retry


@responses.activate
def test_disconnect_attempts_are_spaced_by_the_backoff_when_xero_stays_unreachable_in_embedded_mode(
    embedded_mode, org_a, admin_a
):
    from integrations.outbound.tasks import run_operation
    from integrations.services import xero_connection_disconnect

    connection = make_connection(organisation=org_a)
    delete = responses.delete(DELETE_CONNECTION, body=requests.ConnectionError("Xero is unreachable"))
    xero_connection_disconnect(organisation=org_a, actor=admin_a)
    operation = only_operation(org_a)
    waits = []
    while held("integrations.outbound.tasks.run_operation"):
        # The runner's thread would run each when due; run them here, as it would, one by one.
        [(due_in, args, _)] = held("integrations.outbound.tasks.run_operation")
        waits.append(due_in)
        queue.runner.stop()
        OutboundOperation.objects.filter(pk=operation.pk).update(next_attempt_at=timezone.now())  # due now
        run_operation.apply(args=args)
    sends = settings.OUTBOUND_MAX_SENDS
    assert len(waits) == sends - 1 and delete.call_count == sends
    base = settings.XERO_RETRY_BASE_SECONDS
    for attempt, wait in enumerate(waits, 1):  # doubling, each a random 50-100% of base x 2^(attempt-1)
        ceiling = min(settings.XERO_RETRY_MAX_SECONDS, base * 2 ** (attempt - 1))
        assert ceiling / 2 - 0.1 <= wait <= ceiling, (attempt, waits)
    # Bounded: after the last try it stops in needs_attention, shown to support, and nothing is queued any more.
    operation.refresh_from_db()
    assert operation.state == "needs_attention" and operation.outbound_attempts.count() == sends
    connection.refresh_from_db()
    assert (connection.status, connection.disconnect_step) == ("disconnected", "delete_connection")
    assert "needs attention" in connection.last_error
    failures = IntegrationAuditEvent.objects.filter(organisation=org_a, outcome="failure")
    assert list(failures.values_list("action", flat=True)) == ["disconnect_step_delete_connection"]


@responses.activate
def test_reconciliation_retry_is_queued_with_its_countdown_when_rate_limited_in_embedded_mode(embedded_mode, org_a):
    make_connection(organisation=org_a)
    xero = responses.get(
        "https://api.xero.com/api.xro/2.0/Invoices",
        status=429,
        headers={"Retry-After": "42", "X-Rate-Limit-Problem": "minute"},
    )
    started = time.monotonic()
    reconcile_organisation.apply(kwargs={"organisation_id": org_a.pk})
    assert time.monotonic() - started < 1
    assert xero.call_count == 1
    [(due_in, _, kwargs)] = held("integrations.webhook_tasks.reconcile_organisation")
    assert kwargs == {"organisation_id": org_a.pk}
    assert 41 < due_in <= 42
