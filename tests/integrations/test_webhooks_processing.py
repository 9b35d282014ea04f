"""Processing the inbox: fetch from Xero (mocked with `responses`), apply if newer, per tenant in event-time order,
harmless to run twice; out-of-order and duplicate deliveries leave the newest state; reconciliation repairs what a
webhook missed and counts it as drift."""

import copy
import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import responses
from django.utils import timezone
from responses import matchers

from integrations.models import ReconciliationState, WebhookEvent, XeroConnection
from integrations.services import reconciliation
from integrations.webhooks import fetch, record, sweep
from integrations.webhooks import process as inbox
from integrations.webhooks.parse import webhook_delivery_parse
from integrations.webhooks.record import webhook_events_record
from integrations.webhooks.tasks import process_webhook_inbox, reconcile_organisation
from invoices.created_in_xero.models import XeroCreatedInvoice
from invoices.models import Customer, Invoice, InvoiceEvent
from tests.factories import (
    TENANT_ID,
    make_connection,
    make_organisation,
    make_pushed_invoice,
    make_webhook_delivery,
    make_xero_event,
    token_response,
)

API = "https://api.xero.com/api.xro/2.0"
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "xero" / "invoice_authorised.json"
HELD = dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.UTC)
INV_A = "0f0d5a46-9c4a-4f7e-8a39-2d2c4a7b1e01"
INV_B = "0f0d5a46-9c4a-4f7e-8a39-2d2c4a7b1e02"


def xero_invoice(invoice_id: str = INV_A, *, minutes_later: int = 0, **changes) -> dict:
    data = copy.deepcopy(json.loads(FIXTURE.read_text())["Invoices"][0])
    at = HELD + dt.timedelta(minutes=minutes_later)
    data.update(InvoiceID=invoice_id, UpdatedDateUTC=f"/Date({int(at.timestamp() * 1000)}+0000)/")
    data.update(changes)
    return data


def invoices_body(*invoices) -> dict:
    return {"Status": "OK", "Invoices": list(invoices)}


@pytest.fixture(autouse=True)
def no_limiter(monkeypatch, settings):
    monkeypatch.setattr(fetch, "xero_rate_limiter", lambda: None)
    settings.WEBHOOK_FETCH_INTERVAL_SECONDS = 0  # pacing has its own tests below


@pytest.fixture
def org(db):
    organisation = make_organisation(name="Maple Florists")
    make_connection(organisation=organisation)
    return organisation


@pytest.fixture
def invoice(org):
    return make_pushed_invoice(organisation=org, xero_invoice_id=INV_A, xero_updated_at=HELD, number="INV-0001")


def receive(*events):
    body, _ = make_webhook_delivery(events=list(events), key="k")
    return webhook_events_record(events=webhook_delivery_parse(body=body))


def event(resource_id=INV_A, at="2026-11-24T09:05:00.000", **kw):
    return make_xero_event(tenant_id=TENANT_ID, resource_id=resource_id, at=at, **kw)


@responses.activate
def test_payment_in_xero_is_applied_when_event_processed(invoice):
    receive(event())
    responses.get(
        f"{API}/Invoices",
        json=invoices_body(xero_invoice(minutes_later=5, Status="PAID", AmountPaid=110.0, AmountDue=0.0)),
        match=[matchers.query_param_matcher({"IDs": INV_A, "page": "1", "unitdp": "4"})],
    )
    result = inbox.webhook_inbox_process(organisation_id=invoice.organisation_id)
    invoice.refresh_from_db()
    assert (result.processed, invoice.status, invoice.amount_paid) == (1, "PAID", Decimal("110.00"))
    stored = WebhookEvent.objects.get()
    assert (stored.state, stored.outcome, stored.attempts) == ("processed", "applied", 1)
    assert stored.processed_at is not None
    assert InvoiceEvent.objects.get(invoice=invoice).message.startswith("changed in Xero: status AUTHORISED → PAID")


@responses.activate
def test_many_events_are_fetched_in_one_call_in_event_time_order_when_received_out_of_order(org, invoice):
    make_pushed_invoice(organisation=org, xero_invoice_id=INV_B, xero_updated_at=HELD, number="INV-0002")
    receive(
        event(INV_B, at="2026-11-24T09:07:00.000"),
        event(INV_A, at="2026-11-24T09:06:00.000"),
        event(INV_A, at="2026-11-24T09:08:00.000"),
    )
    responses.get(
        f"{API}/Invoices",
        json=invoices_body(
            xero_invoice(INV_A, minutes_later=8, Status="PAID", AmountPaid=110.0, AmountDue=0.0),
            xero_invoice(INV_B, minutes_later=7, Status="VOIDED"),
        ),
        match=[matchers.query_param_matcher({"IDs": f"{INV_A},{INV_B}", "page": "1", "unitdp": "4"})],
    )
    result = inbox.webhook_inbox_process(organisation_id=org.pk)
    assert len(responses.calls) == 1
    assert result.processed == 3
    assert set(WebhookEvent.objects.values_list("state", flat=True)) == {"processed"}


def cannot_apply(monkeypatch, invoice_id: str) -> None:
    """Applying this invoice fails (as a value our tables cannot hold would); the others apply as they do."""
    from invoices.services.apply import invoices as appliers

    real = appliers.invoice_apply_from_xero

    def apply(*, data, **kwargs):
        if data["InvoiceID"] == invoice_id:
            raise ValueError("numeric field overflow")
        return real(data=data, **kwargs)

    monkeypatch.setattr(appliers, "invoice_apply_from_xero", apply)


@responses.activate
def test_one_resource_that_cannot_be_applied_fails_only_its_own_events(org, invoice, monkeypatch):
    """A bug or a value our tables cannot hold in one invoice must not hold back the others fetched with it."""
    make_pushed_invoice(organisation=org, xero_invoice_id=INV_B, xero_updated_at=HELD, number="INV-0002")
    receive(event(INV_B, at="2026-11-24T09:04:00.000"), event(INV_A))
    cannot_apply(monkeypatch, INV_B)
    paid = xero_invoice(minutes_later=5, Status="PAID", AmountPaid=110.0, AmountDue=0.0)
    responses.get(f"{API}/Invoices", json=invoices_body(xero_invoice(INV_B, minutes_later=5, Status="PAID"), paid))
    inbox.webhook_inbox_process(organisation_id=org.pk)
    invoice.refresh_from_db()
    assert invoice.status == "PAID"
    states = dict(WebhookEvent.objects.values_list("resource_id", "state"))
    assert states == {INV_A: "processed", INV_B: "failed"}
    assert "numeric field overflow" in WebhookEvent.objects.get(resource_id=INV_B).last_error


@responses.activate
def test_newest_state_is_kept_when_deliveries_are_duplicated_and_out_of_order(invoice):
    # Xero's later delivery (paid) overtakes the earlier one (part-paid), and both come twice.
    newer = event(at="2026-11-24T09:10:00.000")
    older = event(at="2026-11-24T09:05:00.000")
    receive(newer)
    receive(newer)
    responses.get(
        f"{API}/Invoices",
        json=invoices_body(xero_invoice(minutes_later=10, Status="PAID", AmountPaid=110.0, AmountDue=0.0)),
    )
    process_webhook_inbox.run(organisation_id=invoice.organisation_id)
    receive(older)
    receive(older)
    # The late event is older than the version we now hold: it is not fetched (issue 15); were it fetched, Xero's
    # lagging copy (part-paid) would be stale all the same. Either way the newer state stays.
    calls = len(responses.calls)
    responses.replace(
        responses.GET,
        f"{API}/Invoices",
        json=invoices_body(xero_invoice(minutes_later=5, AmountPaid=50.0, AmountDue=60.0)),
    )
    process_webhook_inbox.run(organisation_id=invoice.organisation_id)
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid, invoice.amount_due) == ("PAID", Decimal("110.00"), Decimal("0.00"))
    assert invoice.xero_updated_at == HELD + dt.timedelta(minutes=10)
    assert WebhookEvent.objects.count() == 2
    assert list(WebhookEvent.objects.order_by("event_date").values_list("outcome", flat=True)) == [
        "fetch_skipped",
        "applied",
    ]
    assert len(responses.calls) == calls
    assert InvoiceEvent.objects.filter(invoice=invoice).count() == 1


@responses.activate
def test_running_twice_is_harmless_when_events_already_processed(invoice):
    receive(event())
    responses.get(f"{API}/Invoices", json=invoices_body(xero_invoice(minutes_later=5, Status="VOIDED")))
    first = inbox.webhook_inbox_process(organisation_id=invoice.organisation_id)
    second = inbox.webhook_inbox_process(organisation_id=invoice.organisation_id)
    assert (first.processed, second.processed) == (1, 0)
    assert len(responses.calls) == 1
    assert InvoiceEvent.objects.filter(invoice=invoice).count() == 1


@responses.activate
def test_second_worker_returns_at_once_when_tenant_inbox_is_claimed(invoice):
    receive(event())
    ReconciliationState.objects.update_or_create(
        organisation_id=invoice.organisation_id,
        defaults={"inbox_claimed_until": timezone.now() + dt.timedelta(seconds=60), "inbox_claimed_by": "other-worker"},
    )
    result = inbox.webhook_inbox_process(organisation_id=invoice.organisation_id)
    assert result.busy
    assert len(responses.calls) == 0
    assert WebhookEvent.objects.get().state == "received"


@responses.activate
def test_expired_claim_is_taken_over_when_worker_died(invoice):
    receive(event())
    ReconciliationState.objects.update_or_create(
        organisation_id=invoice.organisation_id,
        defaults={"inbox_claimed_until": timezone.now() - dt.timedelta(seconds=1), "inbox_claimed_by": "dead-worker"},
    )
    responses.get(f"{API}/Invoices", json=invoices_body(xero_invoice(minutes_later=5, Status="VOIDED")))
    assert inbox.webhook_inbox_process(organisation_id=invoice.organisation_id).processed == 1


@responses.activate
def test_events_wait_when_connection_needs_reconnect(db):
    organisation = make_organisation()
    make_connection(organisation=organisation, status="needs_reconnect")
    receive(event())
    result = inbox.webhook_inbox_process(organisation_id=organisation.pk)
    assert result.waiting_for_connection
    assert WebhookEvent.objects.get().state == "received"
    assert len(responses.calls) == 0


@responses.activate
def test_events_are_deferred_with_backoff_when_xero_answers_5xx(invoice):
    receive(event())
    responses.get(f"{API}/Invoices", status=503, json={"Title": "Service Unavailable"})
    result = inbox.webhook_inbox_process(organisation_id=invoice.organisation_id)
    stored = WebhookEvent.objects.get()
    assert (stored.state, stored.attempts) == ("received", 1)
    assert stored.next_attempt_at > timezone.now()
    assert 15 <= result.retry_after <= 30  # the one backoff (errors.backoff_seconds), from 30 s
    # Not due yet: nothing is fetched again until then.
    assert inbox.webhook_inbox_process(organisation_id=invoice.organisation_id).processed == 0
    assert len(responses.calls) == 1


@responses.activate
def test_event_fails_visibly_when_xero_keeps_failing(invoice):
    receive(event())
    WebhookEvent.objects.update(attempts=inbox.TRANSIENT_MAX_ATTEMPTS - 1)
    responses.get(f"{API}/Invoices", status=500, json={})
    inbox.webhook_inbox_process(organisation_id=invoice.organisation_id)
    stored = WebhookEvent.objects.get()
    assert (stored.state, stored.outcome) == ("failed", "fetch_failed")
    assert "500" in stored.last_error


@responses.activate
@pytest.mark.parametrize(
    ("status", "body", "headers"),
    [
        (403, {"Title": "Forbidden", "Detail": "You do not have permission to access this resource"}, {}),
        (401, {"Title": "Unauthorized", "Detail": "AuthorizationUnsuccessful"}, {}),
        (403, {"Title": "Forbidden"}, {"WWW-Authenticate": 'Bearer error="insufficient_scope"'}),
        # The tenant refused: a check of Xero's connections is queued, and may find it still connected.
        (403, {"Title": "Forbidden", "Detail": "AuthenticationUnsuccessful"}, {}),
    ],
)
def test_events_are_deferred_with_backoff_then_fail_when_xero_refuses_the_connection_but_it_stays_connected(
    invoice, status, body, headers
):
    """Refused for a reason other than a disconnected tenant or a dead grant (a permission, a scope, a token a refresh
    did not cure): the connection stays connected, so nothing else would ever stop the fetch. The events back off
    like a 5xx, and fail visibly (the tenant reconciled soon) when it does not clear."""
    receive(event())
    responses.get(f"{API}/Invoices", status=status, json=body, headers=headers)
    responses.post("https://identity.xero.com/connect/token", json=token_response())
    result = inbox.webhook_inbox_process(organisation_id=invoice.organisation_id)
    stored = WebhookEvent.objects.get()
    assert (stored.state, stored.attempts) == ("received", 1) and stored.next_attempt_at > timezone.now()
    assert 15 <= result.retry_after <= 30 and stored.last_error.startswith("Xero")  # the one backoff, from 30 s
    assert inbox.webhook_inbox_process(organisation_id=invoice.organisation_id).processed == 0  # not due yet
    WebhookEvent.objects.update(attempts=inbox.TRANSIENT_MAX_ATTEMPTS - 1, next_attempt_at=None)
    inbox.webhook_inbox_process(organisation_id=invoice.organisation_id)
    assert WebhookEvent.objects.get().state == "failed"
    assert XeroConnection.objects.get(organisation_id=invoice.organisation_id).is_usable


@responses.activate
def test_task_reschedules_itself_when_xero_rate_limits(invoice, enqueued):
    receive(event())
    enqueued.clear()
    responses.get(f"{API}/Invoices", status=429, headers={"Retry-After": "17", "X-Rate-Limit-Problem": "minute"})
    process_webhook_inbox.run(organisation_id=invoice.organisation_id)
    assert WebhookEvent.objects.get().state == "received"
    assert [(e.name, e.kwargs, e.countdown) for e in enqueued] == [
        ("integrations.webhook_tasks.process_webhook_inbox", {"organisation_id": invoice.organisation_id}, 17)
    ]


@responses.activate
def test_event_is_ignored_when_xero_does_not_return_the_resource(invoice):
    receive(event("99999999-0000-4000-8000-000000000009"))
    responses.get(f"{API}/Invoices", json=invoices_body())
    inbox.webhook_inbox_process(organisation_id=invoice.organisation_id)
    assert WebhookEvent.objects.get().outcome == "not_found"


@responses.activate
def test_invoice_created_directly_in_xero_is_listed_when_create_event_processed(org):
    receive(event("aaaaaaaa-0000-4000-8000-00000000000a", event_type="CREATE"))
    responses.get(
        f"{API}/Invoices",
        json=invoices_body(xero_invoice("aaaaaaaa-0000-4000-8000-00000000000a", InvoiceNumber="INV-7777")),
    )
    inbox.webhook_inbox_process(organisation_id=org.pk)
    assert XeroCreatedInvoice.objects.get(organisation=org).number == "INV-7777"
    assert WebhookEvent.objects.get().outcome == "created_in_xero"


@responses.activate
def test_customer_is_updated_when_contact_event_processed(org):
    customer = Customer.objects.create(
        organisation=org, name="Harbour View", xero_contact_id="9b3c1a2d-0000-4000-8000-00000000c0c1"
    )
    receive(event(customer.xero_contact_id, category="CONTACT"))
    responses.get(
        f"{API}/Contacts",
        json={
            "Contacts": [
                {
                    "ContactID": customer.xero_contact_id,
                    "Name": "Harbour View Pty Ltd",
                    "EmailAddress": "ap@harbour.test",
                    "UpdatedDateUTC": "/Date(1795510800000+0000)/",
                }
            ]
        },
        match=[matchers.query_param_matcher({"IDs": customer.xero_contact_id, "page": "1", "includeArchived": "true"})],
    )
    inbox.webhook_inbox_process(organisation_id=org.pk)
    customer.refresh_from_db()
    assert (customer.name, customer.email) == ("Harbour View Pty Ltd", "ap@harbour.test")


@responses.activate
def test_only_own_tenant_is_touched_when_two_organisations_receive_events(invoice):
    other = make_organisation()
    make_connection(
        organisation=other,
        tenant_id="22222222-0000-4000-8000-000000000002",
        connection_id="c2222222-0000-4000-8000-000000000002",
    )
    receive(event(), make_xero_event(tenant_id="22222222-0000-4000-8000-000000000002", resource_id=INV_B))
    responses.get(f"{API}/Invoices", json=invoices_body(xero_invoice(minutes_later=5, Status="VOIDED")))
    inbox.webhook_inbox_process(organisation_id=invoice.organisation_id)
    assert WebhookEvent.objects.get(organisation=other).state == "received"
    assert len(responses.calls) == 1
    assert responses.calls[0].request.headers["xero-tenant-id"] == TENANT_ID


@responses.activate
def test_fetches_are_paced_per_tenant_when_events_keep_arriving(invoice, settings, enqueued):
    settings.WEBHOOK_FETCH_INTERVAL_SECONDS = 2
    responses.get(f"{API}/Invoices", json=invoices_body(xero_invoice(minutes_later=5, Status="VOIDED")))
    receive(event(at="2026-11-24T09:05:00.000"))
    assert inbox.webhook_inbox_process(organisation_id=invoice.organisation_id).processed == 1
    receive(event(at="2026-11-24T09:05:01.000"))
    receive(event(at="2026-11-24T09:05:02.000"))
    enqueued.clear()
    # Within 2 s of the last fetch: no call; one run is scheduled for when the interval is over.
    process_webhook_inbox.run(organisation_id=invoice.organisation_id)
    process_webhook_inbox.run(organisation_id=invoice.organisation_id)
    assert len(responses.calls) == 1
    assert len(enqueued) == 1 and 0 < enqueued[0].countdown <= 2
    # When it is due, both waiting events share one fetch.
    ReconciliationState.objects.update(inbox_fetched_at=timezone.now() - dt.timedelta(seconds=3))
    assert inbox.webhook_inbox_process(organisation_id=invoice.organisation_id).processed == 2
    assert len(responses.calls) == 2


def test_sweeper_enqueues_tenants_when_events_wait_unclaimed(invoice, enqueued):
    receive(event())
    enqueued.clear()
    WebhookEvent.objects.update(received_at=timezone.now() - dt.timedelta(minutes=5))
    assert sweep.webhook_inbox_sweep() == [invoice.organisation_id]
    assert [e.kwargs for e in enqueued] == [{"organisation_id": invoice.organisation_id}]


def test_sweeper_leaves_fresh_events_to_their_own_task_when_just_received(invoice, enqueued):
    receive(event())
    enqueued.clear()
    assert sweep.webhook_inbox_sweep() == []


# ---------------------------------------------------------------- reconciliation


@responses.activate
def test_missed_webhook_is_repaired_and_counted_as_drift_when_reconciling(invoice):
    state = ReconciliationState.objects.create(
        organisation_id=invoice.organisation_id, last_success_at=HELD - dt.timedelta(minutes=5)
    )
    responses.get(
        f"{API}/Invoices",
        json={
            "Invoices": [xero_invoice(minutes_later=6, Status="PAID", AmountPaid=110.0, AmountDue=0.0)],
            "pagination": {"page": 1, "pageSize": 100, "pageCount": 1, "itemCount": 1},
        },
        match=[
            matchers.query_param_matcher({"page": "1", "order": "InvoiceID ASC", "unitdp": "4"}),
            matchers.header_matcher({"If-Modified-Since": "2026-11-24T08:53:00Z"}),
        ],
    )
    responses.get(f"{API}/Contacts", json={"Contacts": []})
    result = reconcile_organisation.run(organisation_id=invoice.organisation_id)
    invoice.refresh_from_db()
    state.refresh_from_db()
    assert result is None
    assert invoice.status == "PAID"
    assert (state.drift_last, state.drift_total, state.passes, state.checked_last) == (1, 1, 1, 1)
    assert state.drift_recent[0]["label"] == "INV-0001"
    assert "status AUTHORISED → PAID" in state.drift_recent[0]["summary"]
    assert state.last_success_at > HELD
    assert state.reconcile_claimed_until is None
    assert "changed in Xero" in InvoiceEvent.objects.get(invoice=invoice).message


class ChangingXeroInvoices:
    """GET /Invoices as Xero answers a reconciliation poll: what changed after If-Modified-Since, in the `order` asked
    (by InvoiceID, or by UpdatedDateUTC: oldest change first), 100 a page; `between` runs after each answer (someone
    editing in Xero while the pass pages through)."""

    def __init__(self, invoices: list[dict], between=None):
        self.invoices, self.between, self.asked = invoices, between, []

    def __call__(self, request):
        since = request.headers.get("If-Modified-Since")
        query = dict(parse_qsl(urlsplit(request.url).query))
        page = int(query.get("page", "1"))
        self.asked.append((since, page))
        after = dt.datetime.fromisoformat(since.replace("Z", "+00:00")) if since else None
        by_id = query.get("order", "").split(" ")[0].lower() == "invoiceid"
        changed = sorted(
            (i for i in self.invoices if after is None or _updated(i) > after),
            key=(lambda i: i["InvoiceID"].lower()) if by_id else (lambda i: (_updated(i), i["InvoiceID"])),
        )
        body = {
            "Invoices": changed[(page - 1) * 100 : page * 100],
            "pagination": {"pageCount": -(-len(changed) // 100)},
        }
        if self.between:
            self.between(self)
        return 200, {}, json.dumps(body)


def _updated(invoice: dict) -> dt.datetime:
    return dt.datetime.fromtimestamp(int(invoice["UpdatedDateUTC"][6:-7]) / 1000, tz=dt.UTC)


@responses.activate
def test_reconciliation_pages_through_when_more_than_one_page(org):
    ReconciliationState.objects.create(organisation=org, last_success_at=HELD)
    invoices = [
        xero_invoice(f"aaaaaaaa-0000-4000-8000-{i:012d}", InvoiceNumber=f"X-{i}", minutes_later=i) for i in range(101)
    ]
    xero = ChangingXeroInvoices(invoices)
    responses.add_callback(responses.GET, f"{API}/Invoices", callback=xero)
    responses.get(f"{API}/Contacts", json={"Contacts": []})
    result = reconciliation.reconciliation_run(organisation_id=org.pk)
    assert (result.checked, result.drift) == (101, 101)
    assert XeroCreatedInvoice.objects.filter(organisation=org).count() == 101
    assert xero.asked == [("2026-11-24T08:58:00Z", 1), ("2026-11-24T08:58:00Z", 2)]  # one window, by page


@responses.activate
def test_reconciliation_reads_every_change_when_one_moves_to_the_end_while_it_pages(org):
    """Ordered by UpdatedDateUTC, an invoice edited while the pass reads page 1 would leave page 1's range and every
    later invoice move up one place: page 2 would then skip the one that moved up onto page 1 (and the next pass starts
    after it). Paged by id, the edit moves nothing; the next pass reads the edit."""
    ReconciliationState.objects.create(organisation=org, last_success_at=HELD)
    invoices = [
        xero_invoice(f"aaaaaaaa-0000-4000-8000-{i:012d}", InvoiceNumber=f"X-{i}", minutes_later=1 + i)
        for i in range(150)
    ]

    def edited_in_xero_once(xero):
        if len(xero.asked) == 1:
            now = f"/Date({int(timezone.now().timestamp() * 1000)}+0000)/"  # edited during the pass
            invoices[10].update(
                xero_invoice(invoices[10]["InvoiceID"], Status="PAID", InvoiceNumber="X-10") | {"UpdatedDateUTC": now}
            )

    xero = ChangingXeroInvoices(invoices, between=edited_in_xero_once)
    responses.add_callback(responses.GET, f"{API}/Invoices", callback=xero)
    responses.get(f"{API}/Contacts", json={"Contacts": []})
    responses.get(f"{API}/CreditNotes", json={"CreditNotes": []})
    result = reconciliation.reconciliation_run(organisation_id=org.pk)
    listed = set(XeroCreatedInvoice.objects.filter(organisation=org).values_list("number", flat=True))
    assert listed == {f"X-{i}" for i in range(150)}, sorted({f"X-{i}" for i in range(150)} - listed)
    assert result.checked == 150 and len(xero.asked) == 2
    reconciliation.reconciliation_run(organisation_id=org.pk)  # the next window: what changed since this pass began
    assert XeroCreatedInvoice.objects.get(organisation=org, number="X-10").status == "PAID"


@responses.activate
def test_reconciliation_pages_on_when_a_whole_page_changed_within_one_second(org):
    """More changes in one second than a page holds: paged by number, the pass reads them all once."""
    ReconciliationState.objects.create(organisation=org, last_success_at=HELD)
    invoices = [
        xero_invoice(f"aaaaaaaa-0000-4000-8000-{i:012d}", InvoiceNumber=f"X-{i}", minutes_later=5) for i in range(230)
    ]
    xero = ChangingXeroInvoices(invoices)
    responses.add_callback(responses.GET, f"{API}/Invoices", callback=xero)
    responses.get(f"{API}/Contacts", json={"Contacts": []})
    responses.get(f"{API}/CreditNotes", json={"CreditNotes": []})
    reconciliation.reconciliation_run(organisation_id=org.pk)
    assert XeroCreatedInvoice.objects.filter(organisation=org).count() == 230
    assert [page for _, page in xero.asked] == [1, 2, 3]


@responses.activate
def test_reconciliation_pages_on_by_number_through_a_burst_of_changes(org):
    """Dense changes (our own push: 50 invoices a second): one call a page, none read twice."""
    ReconciliationState.objects.create(organisation=org, last_success_at=HELD)
    at = HELD + dt.timedelta(minutes=5)
    invoices = [
        xero_invoice(f"aaaaaaaa-0000-4000-8000-{i:012d}", InvoiceNumber=f"X-{i}", minutes_later=5)
        | {"UpdatedDateUTC": f"/Date({int(at.timestamp() * 1000) + i * 20}+0000)/"}  # 50 a second
        for i in range(250)
    ]
    xero = ChangingXeroInvoices(invoices)
    responses.add_callback(responses.GET, f"{API}/Invoices", callback=xero)
    responses.get(f"{API}/Contacts", json={"Contacts": []})
    result = reconciliation.reconciliation_run(organisation_id=org.pk)
    assert XeroCreatedInvoice.objects.filter(organisation=org).count() == 250
    assert [page for _, page in xero.asked] == [1, 2, 3] and result.checked == 250


@responses.activate
def test_a_run_of_changes_longer_than_a_pass_is_read_past_by_the_next_passes(org, monkeypatch):
    """A pass that stops at its page cap leaves the next one to go on at the page it reached: reading the window from
    its start each time would never get past its first pages."""
    monkeypatch.setattr(reconciliation, "RECONCILE_MAX_PAGES", 1)
    ReconciliationState.objects.create(organisation=org, last_success_at=HELD)
    at = HELD + dt.timedelta(minutes=5)
    invoices = [
        xero_invoice(f"aaaaaaaa-0000-4000-8000-{i:012d}", InvoiceNumber=f"X-{i}")
        | {"UpdatedDateUTC": f"/Date({int(at.timestamp() * 1000) + i * 1000}+0000)/"}  # one a second
        for i in range(250)
    ]
    xero = ChangingXeroInvoices(invoices)
    responses.add_callback(responses.GET, f"{API}/Invoices", callback=xero)
    responses.get(f"{API}/Contacts", json={"Contacts": []})
    for _ in range(3):
        reconciliation.reconciliation_run(organisation_id=org.pk)
    assert XeroCreatedInvoice.objects.filter(organisation=org).count() == 250


@responses.activate
def test_change_already_in_the_inbox_is_not_drift_when_reconciling(invoice):
    ReconciliationState.objects.create(organisation_id=invoice.organisation_id, last_success_at=HELD)
    receive(event())
    responses.get(f"{API}/Invoices", json={"Invoices": [xero_invoice(minutes_later=6, Status="VOIDED")]})
    responses.get(f"{API}/Contacts", json={"Contacts": []})
    result = reconciliation.reconciliation_run(organisation_id=invoice.organisation_id)
    assert (result.checked, result.drift) == (1, 0)


@responses.activate
def test_reconciliation_keeps_last_success_when_xero_fails(invoice):
    state = ReconciliationState.objects.create(organisation_id=invoice.organisation_id, last_success_at=HELD)
    responses.get(f"{API}/Invoices", status=500, json={})
    reconciliation.reconciliation_run(organisation_id=invoice.organisation_id)
    state.refresh_from_db()
    assert state.last_success_at == HELD
    assert "XeroServerError" in state.last_error
    assert state.reconcile_claimed_until is None


@responses.activate
def test_reconciliation_that_crashes_is_not_recorded_as_a_complete_pass(invoice, monkeypatch):
    """An error that is not Xero's (Redis, the database) ends the pass part-way: what it did not reach must be asked
    for again, so the window it covered does not count as done."""
    state = ReconciliationState.objects.create(organisation_id=invoice.organisation_id, last_success_at=HELD)
    responses.get(f"{API}/Invoices", json={"Invoices": [xero_invoice(minutes_later=6, Status="PAID")]})

    def broken(**kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(reconciliation, "resource_apply", broken)
    with pytest.raises(RuntimeError):
        reconciliation.reconciliation_run(organisation_id=invoice.organisation_id)
    state.refresh_from_db()
    assert state.last_success_at == HELD
    assert "RuntimeError" in state.last_error
    assert state.reconcile_claimed_until is None


@responses.activate
def test_reconciliation_goes_past_a_resource_that_cannot_be_applied_and_says_so(org, invoice, monkeypatch):
    ReconciliationState.objects.create(organisation=org, last_success_at=HELD)
    cannot_apply(monkeypatch, INV_B)
    paid = xero_invoice(minutes_later=5, Status="PAID", AmountPaid=110.0, AmountDue=0.0)
    responses.get(f"{API}/Invoices", json=invoices_body(xero_invoice(INV_B, minutes_later=4), paid))
    responses.get(f"{API}/Contacts", json={"Contacts": []})
    reconciliation.reconciliation_run(organisation_id=org.pk)
    invoice.refresh_from_db()
    assert invoice.status == "PAID"
    state = ReconciliationState.objects.get(organisation=org)
    assert state.last_success_at > HELD  # one poisoned record does not hold the tenant's sync back for ever
    assert (
        "1 changes from Xero could not be applied" in state.last_error and "numeric field overflow" in state.last_error
    )


@responses.activate
def test_reconciliation_reschedules_when_rate_limited(invoice, enqueued):
    responses.get(f"{API}/Invoices", status=429, headers={"Retry-After": "42"})
    reconcile_organisation.run(organisation_id=invoice.organisation_id)
    assert [(e.name, e.countdown) for e in enqueued] == [("integrations.webhook_tasks.reconcile_organisation", 42)]


def test_fan_out_enqueues_one_pass_per_active_tenant_when_beat_fires(invoice, enqueued):
    disconnected = make_organisation()
    make_connection(
        organisation=disconnected,
        status="disconnected",
        tenant_id="33333333-0000-4000-8000-000000000003",
        connection_id="c3333333-0000-4000-8000-000000000003",
    )
    from integrations.services.reconcile_cadence import reconcile_states_ensure
    from integrations.webhooks.tasks import reconcile_all

    reconcile_states_ensure()
    ReconciliationState.objects.update(next_due_at=timezone.now() - dt.timedelta(seconds=1))  # both due
    reconcile_all.run()
    assert [e.kwargs for e in enqueued] == [{"organisation_id": invoice.organisation_id}]


def test_round_stops_before_a_second_fetch_when_events_name_more_than_100_resources():
    events = [WebhookEvent(category="INVOICE", resource_id=f"r{i % 150}") for i in range(300)]
    events.insert(50, WebhookEvent(category="CONTACT", resource_id="c1"))
    batch = inbox._round_of_events(events)
    assert len({e.resource_id for e in batch if e.category == "INVOICE"}) == 100
    assert len(batch) == 101  # 100 invoices, then the contact; the 101st invoice waits for the next round


@pytest.mark.django_db(transaction=True)
@responses.activate
def test_events_are_processed_beside_the_request_when_no_broker(embedded_mode, settings):
    """`make run` without Redis: processing runs on the in-process runner after the answer, and a paced run comes
    back (queued with its countdown)."""
    import time

    settings.WEBHOOK_FETCH_INTERVAL_SECONDS = 0.5
    organisation = make_organisation()
    make_connection(organisation=organisation)
    invoice = make_pushed_invoice(organisation=organisation, xero_invoice_id=INV_A, xero_updated_at=HELD)
    responses.get(
        f"{API}/Invoices",
        json=invoices_body(xero_invoice(minutes_later=5, Status="PAID", AmountPaid=110.0, AmountDue=0.0)),
    )
    receive(event(at="2026-11-24T09:05:00.000"))
    receive(event(at="2026-11-24T09:05:01.000"))  # arrives inside the pacing interval: the timer run takes it
    deadline = time.monotonic() + 5
    while WebhookEvent.objects.filter(state="received").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert set(WebhookEvent.objects.values_list("state", flat=True)) == {"processed"}
    assert Invoice.objects.get(pk=invoice.pk).status == "PAID"


def test_old_handled_events_are_purged_and_waiting_or_failed_kept_when_sweeping(invoice, enqueued):
    from integrations.webhooks.tasks import sweep_webhook_inbox

    states = ("processed", "ignored", "failed", "received")
    receive(*[event(at=f"2026-11-24T09:0{minute}:00.000") for minute in range(len(states))])
    month_ago = timezone.now() - dt.timedelta(days=31)
    for row, state in zip(WebhookEvent.objects.order_by("event_date"), states, strict=True):
        WebhookEvent.objects.filter(pk=row.pk).update(state=state, received_at=month_ago)
    receive(event(at="2026-11-24T09:09:00.000"))
    WebhookEvent.objects.filter(state="received", received_at__gt=month_ago).update(state="processed")
    sweep_webhook_inbox.run()
    assert sorted(WebhookEvent.objects.values_list("state", flat=True)) == ["failed", "processed", "received"]


def test_deliveries_queue_no_task_while_a_paced_run_is_due(invoice, settings, enqueued):
    settings.WEBHOOK_FETCH_INTERVAL_SECONDS = 2
    ReconciliationState.objects.update_or_create(
        organisation_id=invoice.organisation_id,
        defaults={"inbox_fetched_at": timezone.now(), "inbox_wakeup_at": timezone.now() + dt.timedelta(seconds=2)},
    )
    receive(event())
    inbox.webhook_inbox_process(organisation_id=invoice.organisation_id)  # the task a delivery queued
    enqueued.clear()
    for _ in range(5):
        record.webhook_processing_enqueue(organisation_ids=[invoice.organisation_id])
    assert enqueued == []  # the wake-up already scheduled will take these events
