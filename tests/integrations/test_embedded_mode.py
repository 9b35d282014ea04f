"""`make run` without Redis: a retry is queued on the in-process runner with its countdown, never run inside the
request or the task that asked for it (eager Celery used to recurse: one Disconnect click while Xero was unreachable
made 98 DELETE attempts and 99 audit rows). Xero is mocked with `responses`."""

import re
import time

import pytest
import requests
import responses
from django.urls import reverse

from coordinoter import queue
from integrations.models import IntegrationAuditEvent, XeroConnection
from integrations.webhook_tasks import reconcile_organisation
from tests.factories import make_connection

pytestmark = pytest.mark.django_db(transaction=True)  # on-commit callbacks run as in production

DELETE_CONNECTION = re.compile(r"https://api\.xero\.com/connections/.+")


def held(name: str) -> list[tuple[float, tuple, dict]]:
    """What the runner holds for this task: (seconds until due, args, kwargs)."""
    now = queue.runner.now()
    return [(item.due - now, item.args, item.kwargs) for item in queue.runner.pending() if item.task == name]


@responses.activate
def test_disconnect_answers_at_once_with_one_attempt_when_xero_is_unreachable_in_embedded_mode(
    embedded_mode, login_as, admin_a, org_a
):
    connection = make_connection(organisation=org_a)
    delete = responses.delete(DELETE_CONNECTION, body=requests.ConnectionError("Xero is unreachable"))
    started = time.monotonic()
    response = login_as(admin_a).post(reverse("integrations:xero_disconnect"), follow=True)
    assert time.monotonic() - started < 0.5
    assert "finishes removing the connection in Xero shortly" in response.content.decode()
    assert delete.call_count == 1  # one attempt in the request, no recursion
    failures = IntegrationAuditEvent.objects.filter(organisation=org_a, outcome="failure")
    assert list(failures.values_list("action", flat=True)) == ["disconnect_step_delete_connection"]
    connection.refresh_from_db()
    assert (connection.status, connection.disconnect_step) == ("disconnected", "delete_connection")
    [(due_in, args, _)] = held("integrations.xero_connection_disconnect")
    assert args == (connection.pk,)
    assert 119 < due_in <= 120  # the disconnect backoff: 60 s x 2^attempts


@responses.activate
def test_disconnect_attempts_are_spaced_by_the_backoff_when_xero_stays_unreachable_in_embedded_mode(
    embedded_mode, org_a, admin_a
):
    from integrations.services import xero_connection_disconnect
    from integrations.tasks import xero_connection_disconnect_task

    connection = make_connection(organisation=org_a)
    delete = responses.delete(DELETE_CONNECTION, body=requests.ConnectionError("Xero is unreachable"))
    xero_connection_disconnect(organisation=org_a, actor=admin_a)
    waits = []
    for _ in range(4):  # the runner's thread would run each when due; run them here, as it would, one by one
        [(due_in, args, _)] = held("integrations.xero_connection_disconnect")
        waits.append(round(due_in))
        queue.runner.stop()
        xero_connection_disconnect_task.apply(args=args)
    assert waits == [120, 240, 480, 600]  # doubling, capped by the gateway's longest countdown
    assert delete.call_count == 5
    assert XeroConnection.objects.get(pk=connection.pk).disconnect_attempts == 5
    assert IntegrationAuditEvent.objects.filter(organisation=org_a, outcome="failure").count() == 5


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
