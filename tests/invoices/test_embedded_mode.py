"""`make run` without Redis, on the invoices side: a push goes through the in-process runner and the in-process rate
limiter, so it never sends Xero more than 60 calls in any minute (a strict Xero double counts every call and answers
429 past the limit; the minute is scaled down with XERO_RATE_MINUTE_SECONDS so the test runs fast); and a change
sent after the push retries later with its countdown, never recursively. Xero is mocked with `responses`."""

import json
import threading
import time
import uuid

import pytest
import responses
from django.db import transaction

from coordinoter import queue
from integrations.models import XeroConnection
from integrations.outbound.models import OutboundOperation
from integrations.xero.client import XeroClient
from invoices.created_in_xero.models import XeroInvoiceChange
from invoices.models import Invoice, XeroMapping
from invoices.services import outbound
from invoices.services.outbound import invoice_change_request
from invoices.services.push import push_enqueue_for_organisation
from tests.factories import echo_invoices, make_connected_organisation, make_connection, make_pushed_invoice
from tests.invoices.conftest import API, INVOICES_URL
from tests.invoices.test_outbound import HELD, XERO_ID, xero_invoice

MINUTE = 3.0  # the scaled minute: Xero's 60 calls a minute become 60 calls in 3 s
LIMIT = 60

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("push_settings")]


class StrictXero:
    """Counts every call by the moment it arrives; past 60 in any (scaled) minute it answers 429, as Xero does."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.refused = 0
        self.lock = threading.Lock()

    def _arrive(self) -> bool:
        with self.lock:
            now = time.monotonic()
            self.times.append(now)
            if sum(1 for t in self.times if t > now - MINUTE) > LIMIT:
                self.refused += 1
                return False
            return True

    def _too_many(self):
        return 429, {"Retry-After": "1", "X-Rate-Limit-Problem": "minute"}, "{}"

    def put_invoices(self, request):
        return echo_invoices(request) if self._arrive() else self._too_many()

    def get_organisation(self, request):
        if not self._arrive():
            return self._too_many()
        return 200, {}, json.dumps({"Organisations": [{"Name": "Push Test Ltd", "OrganisationID": str(uuid.uuid4())}]})

    def busiest_minute(self) -> int:
        return max(sum(1 for t in self.times if start <= t < start + MINUTE) for start in self.times)


@pytest.fixture
def strict_xero():
    double = StrictXero()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add_callback(responses.PUT, INVOICES_URL, callback=double.put_invoices)
        rsps.add_callback(responses.GET, f"{API}/Organisation", callback=double.get_organisation)
        yield double


@pytest.fixture
def submitted(monkeypatch) -> list[tuple[str, float]]:
    """Every task handed to the in-process runner, with its countdown (the runner still runs them)."""
    seen: list[tuple[str, float]] = []
    submit = queue.runner.submit

    def spy(task, *, args=(), kwargs=None, countdown=0.0):
        seen.append((task.name, countdown))
        submit(task, args=args, kwargs=kwargs, countdown=countdown)

    monkeypatch.setattr(queue.runner, "submit", spy)
    return seen


def test_push_never_sends_more_than_sixty_calls_in_a_minute_when_embedded(
    embedded_mode, settings, org_a, strict_xero, submitted
):
    settings.XERO_RATE_MINUTE_SECONDS = MINUTE
    settings.XERO_RATE_GUARD_SECONDS = 0.2
    connection, _ = make_connected_organisation(organisation=org_a, invoices=300)  # six chunks of 50: six PUTs
    for _ in range(56):  # the tenant's minute is already busy (settings read, webhook fetches): 4 calls are left
        XeroClient(connection.pk).get("/Organisation")
    with transaction.atomic():
        push_enqueue_for_organisation(organisation_id=org_a.pk)
    deadline = time.monotonic() + 30
    while Invoice.objects.exclude(sync_state="synced").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Invoice.objects.exclude(sync_state="synced").exists()
    assert strict_xero.refused == 0
    assert strict_xero.busiest_minute() <= LIMIT
    assert XeroConnection.objects.get(pk=connection.pk).status == "active"
    # The limiter refused the 61st call before it was made, and the chunk came back later with the wait it named.
    rescheduled = [countdown for name, countdown in submitted if name == "invoices.tasks.push_chunk" and countdown]
    assert rescheduled and all(0 < countdown <= MINUTE + 0.2 for countdown in rescheduled)


def test_invoice_change_retry_is_queued_with_its_countdown_when_xero_answers_5xx_in_embedded_mode(
    embedded_mode, settings, org_a, admin_a
):
    settings.XERO_API_URL = API
    make_connection(organisation=org_a)
    XeroMapping.objects.create(organisation=org_a, revenue_account_code="200", tax_type="OUTPUT")
    invoice = make_pushed_invoice(organisation=org_a, xero_invoice_id=XERO_ID, number="INV-0001", xero_updated_at=HELD)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as xero:
        xero.get(f"{API}/Invoices/{XERO_ID}", json={"Invoices": [xero_invoice()]})
        post = xero.post(f"{API}/Invoices/{XERO_ID}", status=503, json={})
        change = invoice_change_request(
            organisation=org_a, invoice_id=invoice.pk, action="void", user=admin_a, based_on=HELD
        )
        operation = outbound.invoice_change_operation(change)
        deadline = time.monotonic() + 10  # the runner's thread sends it, not this one
        while OutboundOperation.objects.get(pk=operation.pk).sends < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)  # a recursive retry would have sent again by now
        assert post.call_count == 1
    now = queue.runner.now()
    [retry] = [item for item in queue.runner.pending() if item.task == "integrations.outbound.tasks.run_operation"]
    assert retry.args == (operation.pk,)
    # Xero's 503: the one backoff policy (base 2 s, jitter 50-100%), same key
    assert 0 < retry.due - now <= settings.XERO_RETRY_BASE_SECONDS
    assert XeroInvoiceChange.objects.get(pk=change.pk).state == "pending"
