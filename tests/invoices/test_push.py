"""The push pipeline with Xero mocked by `responses`: every path of a chunk, contacts, retries, the sweeper."""

import datetime as dt
import json
import time
import uuid
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from integrations.models import XeroConnection
from integrations.outbound import engine
from integrations.outbound.models import OutboundAttempt, OutboundOperation
from integrations.xero.ratelimit import RateLimitWait, rate_limiter
from invoices.models import Customer, Invoice, InvoiceBatch, InvoiceEvent, XeroMapping
from invoices.services.push import (
    invoices_retry_failed,
    push_chunk_send,
    push_organisation_dispatch,
    push_sweep,
)
from invoices.services.push.common import active_chunks, chunks
from invoices.services.push.dispatch import push_chunks_create
from organisations.models import Organisation
from tests.factories import echo_invoices, make_batch, make_connected_organisation, make_customer
from tests.invoices.conftest import CONTACTS_URL, INVOICES_URL

S = Invoice.SyncState
C = OutboundOperation.State
A = OutboundAttempt.Outcome
ACT = OutboundAttempt.Action
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("push_settings")]


def dispatch_one_chunk(organisation) -> OutboundOperation:
    result = push_organisation_dispatch(organisation_id=organisation.pk)
    assert result.chunks == 1, result
    return chunks().get(organisation=organisation)


def worker_died_mid_call(chunk: OutboundOperation, *, call: str = ACT.SEND, ago: float = 1.0, **counted) -> None:
    """A worker claimed the chunk, counted its call (`counted`: the chunk's counters with it), wrote it down as in
    flight and died mid-call; its lease ran out `ago` seconds ago."""
    chunks().filter(pk=chunk.pk).update(
        state=C.SENDING,
        leased_by="dead-worker",
        in_flight=call,
        lease_until=timezone.now() - dt.timedelta(seconds=ago),
        **counted,
    )


def worker_died_past_the_window(chunk: OutboundOperation) -> None:
    """A worker claimed the chunk, counted its PUT and died mid-call ten minutes ago: Xero has forgotten the key."""
    first_sent = timezone.now() - dt.timedelta(minutes=10)
    worker_died_mid_call(chunk, ago=540, attempts=1, sends=1, key_first_sent_at=first_sent)


def send_while_it_retries(chunk: OutboundOperation, *, tries: int) -> list[str]:
    """The chunk's sends, each made due at once, until one ends other than "retry" (or `tries` ran): their states."""
    states = []
    for _ in range(tries):
        states.append(push_chunk_send(chunk_id=chunk.pk).state)
        if states[-1] != "retry":
            break
        chunks().filter(pk=chunk.pk).update(next_attempt_at=timezone.now())
    return states


def puts(xero) -> list:
    return [call.request for call in xero.calls if call.request.method == "PUT"]


# ---------------------------------------------------------------- dispatch


def test_dispatch_stores_payload_and_key_before_any_call_when_contacts_exist(org_a, xero, enqueued):
    make_connected_organisation(organisation=org_a, invoices=3)
    chunk = dispatch_one_chunk(org_a)
    assert len(xero.calls) == 0  # nothing sent yet: the chunk is stored first
    assert chunk.state == C.PENDING and chunk.attempts == 0
    assert chunk.idempotency_key.startswith(f"coordinoter-{org_a.pk}-") and len(chunk.idempotency_key) <= 128
    assert [e["InvoiceNumber"] for e in chunk.payload["Invoices"]] == list(
        Invoice.objects.filter(organisation=org_a).order_by("pk").values_list("number", flat=True)
    )
    assert chunk.payload["Invoices"][0]["LineItems"][0]["AccountCode"] == "200"
    assert set(Invoice.objects.values_list("sync_state", flat=True)) == {S.IN_FLIGHT}
    assert [item.args for item in enqueued.named("invoices.tasks.push_chunk")] == [(chunk.pk,)]


def test_dispatch_keeps_at_most_five_chunks_of_fifty_in_flight_when_the_batch_is_large(org_a, xero, enqueued):
    make_connected_organisation(organisation=org_a, invoices=260)
    assert push_organisation_dispatch(organisation_id=org_a.pk).chunks == 5
    assert sorted(len(c.payload["Invoices"]) for c in chunks().all()) == [50] * 5
    assert Invoice.objects.filter(sync_state=S.PENDING).count() == 10
    assert push_organisation_dispatch(organisation_id=org_a.pk).chunks == 0  # full until one finishes


def test_dispatch_waits_and_sends_nothing_when_there_is_no_mapping(org_a, xero, enqueued):
    make_connected_organisation(organisation=org_a, mapping=False)
    assert push_organisation_dispatch(organisation_id=org_a.pk).waiting == "mapping"
    assert not chunks().exists()
    assert set(Invoice.objects.values_list("sync_state", flat=True)) == {S.PENDING}


def test_dispatch_waits_when_the_connection_needs_a_reconnect(org_a, xero, enqueued):
    make_connected_organisation(organisation=org_a, status=XeroConnection.Status.NEEDS_RECONNECT)
    assert push_organisation_dispatch(organisation_id=org_a.pk).waiting == "connection"
    assert set(Invoice.objects.values_list("sync_state", flat=True)) == {S.PENDING}


def test_dispatch_ignores_invoices_of_batches_that_do_not_sync(org_a, xero, enqueued):
    make_connected_organisation(organisation=org_a, invoices=1)
    make_batch(
        organisation=org_a, invoices=2, eligibility=InvoiceBatch.Eligibility.BEFORE_CONNECTION, sync_state=S.PENDING
    )
    chunk = dispatch_one_chunk(org_a)
    assert len(chunk.payload["Invoices"]) == 1


def test_contacts_found_by_number_then_by_name_and_the_rest_created_in_bulk(org_a, xero, enqueued):
    make_connected_organisation(organisation=org_a, invoices=0, contact_ids=False)
    batch = InvoiceBatch.objects.get(organisation=org_a)
    by_number, by_name, new = (make_customer(organisation=org_a, name=n) for n in ("Alpha", "Beta", "Gamma"))
    for customer in (by_number, by_name, new):
        Invoice.objects.create(
            organisation=org_a,
            batch=batch,
            customer=customer,
            number=f"N-{customer.name}",
            issue_date=dt.date(2026, 11, 1),
            due_date=dt.date(2026, 11, 15),
            sync_state=S.PENDING,
        )
    xero.get(
        CONTACTS_URL,
        json={
            "Contacts": [
                {
                    "ContactID": "aaaaaaaa-0000-4000-8000-000000000001",
                    "ContactNumber": by_number.contact_number,
                    "Name": "Alpha (renamed in Xero)",
                },
                {"ContactID": "bbbbbbbb-0000-4000-8000-000000000002", "Name": "beta"},
            ]
        },
    )
    xero.post(
        CONTACTS_URL,
        json={
            "Contacts": [
                {
                    "ContactID": "cccccccc-0000-4000-8000-000000000003",
                    "ContactNumber": new.contact_number,
                    "Name": "Gamma",
                    "ValidationErrors": [],
                }
            ]
        },
    )
    assert push_organisation_dispatch(organisation_id=org_a.pk).chunks == 1
    ids = dict(Customer.objects.filter(organisation=org_a).values_list("name", "xero_contact_id"))
    assert ids["Alpha"].startswith("aaaaaaaa") and ids["Beta"].startswith("bbbbbbbb")
    assert ids["Gamma"].startswith("cccccccc")
    lookup, create = xero.calls[0].request, xero.calls[1].request
    where = parse_qs(urlsplit(lookup.url).query)["where"][0]
    assert f'ContactNumber=="{by_number.contact_number}"' in where and 'Name=="Beta"' in where
    assert json.loads(create.body) == {"Contacts": [{"Name": "Gamma", "ContactNumber": new.contact_number}]}
    assert parse_qs(urlsplit(create.url).query)["summarizeErrors"] == ["false"]
    assert create.headers["Idempotency-Key"].startswith("contacts-")
    chunk = chunks().get()
    assert {e["Contact"]["ContactID"][:8] for e in chunk.payload["Invoices"]} == {"aaaaaaaa", "bbbbbbbb", "cccccccc"}


def pending_invoice_of_a_customer_new_to_xero(organisation, *, name: str) -> Customer:
    """A connected organisation with one pending invoice, N-1, of a customer that is not a Xero contact yet."""
    make_connected_organisation(organisation=organisation, invoices=0, contact_ids=False)
    customer = make_customer(organisation=organisation, name=name)
    Invoice.objects.create(
        organisation=organisation,
        batch=InvoiceBatch.objects.get(organisation=organisation),
        customer=customer,
        number="N-1",
        issue_date=dt.date(2026, 11, 1),
        due_date=dt.date(2026, 11, 15),
        sync_state=S.PENDING,
    )
    return customer


def test_contact_create_is_an_outbound_operation_resent_under_its_key_when_xero_fails(org_a, xero, enqueued):
    customer = pending_invoice_of_a_customer_new_to_xero(org_a, name="Émile Çafé")
    xero.get(CONTACTS_URL, json={"Contacts": []})
    xero.post(CONTACTS_URL, status=503, json={})
    first = push_organisation_dispatch(organisation_id=org_a.pk)
    assert (first.chunks, first.waiting) == (0, "contacts") and first.retry_in > 0
    operation = OutboundOperation.objects.get(kind="contacts_create")
    assert operation.state == "pending" and operation.payload["Contacts"][0]["Name"] == "Émile Çafé"
    assert list(operation.outbound_attempts.values_list("action", "outcome", "http_status")) == [
        ("send", "unknown", 503)
    ]
    assert Invoice.objects.get(number="N-1").sync_state == S.PENDING  # nothing failed: Xero is only busy
    xero.replace(
        responses.POST,
        CONTACTS_URL,
        json={
            "Contacts": [
                {"ContactID": "dddddddd-0000-4000-8000-000000000004", "ContactNumber": customer.contact_number}
            ]
        },
    )
    OutboundOperation.objects.filter(pk=operation.pk).update(next_attempt_at=timezone.now())
    assert push_organisation_dispatch(organisation_id=org_a.pk).chunks == 1
    operation.refresh_from_db()
    assert operation.state == "done" and operation.outbound_attempts.count() == 2
    posts = [c.request for c in xero.calls if c.request.method == "POST"]
    assert {p.headers["Idempotency-Key"] for p in posts} == {operation.idempotency_key}
    customer.refresh_from_db()
    assert customer.xero_contact_id.startswith("dddddddd")


def test_a_contact_create_sent_under_a_renewed_key_is_still_the_one_operation_when_dispatch_comes_back(
    org_a, xero, enqueued
):
    """Xero answered the create with a 500 (kept under the key), a lookup found none of the contacts, and the
    engine renewed the key (`<digest>~n`). Dispatch finds the operation by its first key: it comes back to that
    operation rather than making a second one under the first key, which Xero would answer with the kept 500."""
    customer = pending_invoice_of_a_customer_new_to_xero(org_a, name="Zoë Ağaoğlu 株式会社")
    xero.get(CONTACTS_URL, json={"Contacts": []})
    xero.post(CONTACTS_URL, status=500, json={"Message": "An error occurred"})
    push_organisation_dispatch(organisation_id=org_a.pk)
    operation = OutboundOperation.objects.get(kind="contacts_create")
    assert operation.payload["Contacts"][0]["Name"] == customer.name
    first_key = operation.idempotency_key
    OutboundOperation.objects.filter(pk=operation.pk).update(next_attempt_at=timezone.now())
    assert engine.operation_run(operation_id=operation.pk).state == "pending"  # looked up: absent
    operation.refresh_from_db()
    assert operation.idempotency_key.startswith(first_key + "~")
    OutboundOperation.objects.filter(pk=operation.pk).update(next_attempt_at=timezone.now() + dt.timedelta(hours=1))
    push_organisation_dispatch(organisation_id=org_a.pk)
    assert list(OutboundOperation.objects.filter(kind="contacts_create").values_list("pk", flat=True)) == [operation.pk]


def test_contact_xero_refuses_fails_that_customers_invoices_with_the_reason(org_a, xero, enqueued):
    make_connected_organisation(organisation=org_a, invoices=2, contact_ids=False)
    customer = Customer.objects.get(organisation=org_a)
    xero.get(CONTACTS_URL, json={"Contacts": []})
    xero.post(
        CONTACTS_URL,
        json={
            "Contacts": [
                {
                    "ContactNumber": customer.contact_number,
                    "Name": customer.name,
                    "HasValidationErrors": True,
                    "ValidationErrors": [{"Message": "The contact name must be unique."}],
                }
            ]
        },
    )
    assert push_organisation_dispatch(organisation_id=org_a.pk).chunks == 0
    invoice = Invoice.objects.first()
    assert invoice.sync_state == S.FAILED
    assert "The contact name must be unique." in invoice.sync_errors[0]
    assert InvoiceEvent.objects.filter(kind="failed").count() == 2


def test_a_customer_xero_refused_is_created_again_when_its_invoices_are_retried(org_a, xero, enqueued):
    """The first create is finished (its answer refused the customer): a person's retry, after the reason was fixed
    in Xero, makes a new create rather than finding the finished one and waiting on it for ever."""
    make_connected_organisation(organisation=org_a, invoices=2, contact_ids=False)
    customer = Customer.objects.get(organisation=org_a)
    xero.get(CONTACTS_URL, json={"Contacts": []})
    refused = {
        "ContactNumber": customer.contact_number,
        "Name": customer.name,
        "HasValidationErrors": True,
        "ValidationErrors": [{"Message": "The contact name must be unique."}],
    }
    xero.post(CONTACTS_URL, json={"Contacts": [refused]})
    push_organisation_dispatch(organisation_id=org_a.pk)
    assert set(Invoice.objects.values_list("sync_state", flat=True)) == {S.FAILED}

    invoices_retry_failed(organisation=org_a, batch=Invoice.objects.first().batch, user=None)
    created = {"ContactID": str(uuid.uuid4()), "ContactNumber": customer.contact_number, "Name": customer.name}
    xero.replace(responses.POST, CONTACTS_URL, json={"Contacts": [created]})
    assert push_organisation_dispatch(organisation_id=org_a.pk).chunks == 1
    posts = [c for c in xero.calls if c.request.method == "POST"]
    assert len(posts) == 2
    assert posts[0].request.headers["Idempotency-Key"] != posts[1].request.headers["Idempotency-Key"]
    assert Customer.objects.get().xero_contact_id == created["ContactID"]
    assert set(Invoice.objects.values_list("sync_state", flat=True)) == {S.IN_FLIGHT}


def test_a_contact_created_in_the_xero_organisation_connected_before_is_not_stored_after_a_switch(
    org_a, xero, enqueued
):
    """Xero answers the create after the organisation moved to another Xero organisation (whose switch forgot every
    ContactID): the old organisation's ContactID is not stored, or every invoice of that customer would name a
    contact the new organisation does not have."""
    from invoices.services.tenant import customers_forget_xero_contacts

    make_connected_organisation(organisation=org_a, invoices=1, contact_ids=False)
    customer = Customer.objects.get(organisation=org_a)
    xero.get(CONTACTS_URL, json={"Contacts": []})

    def answer_after_the_switch(request):
        XeroConnection.objects.filter(organisation=org_a).update(tenant_id=str(uuid.uuid4()))
        customers_forget_xero_contacts(organisation_id=org_a.pk)
        created = {"ContactID": str(uuid.uuid4()), "ContactNumber": customer.contact_number, "Name": customer.name}
        return 200, {}, json.dumps({"Contacts": [created]})

    xero.add_callback(responses.POST, CONTACTS_URL, callback=answer_after_the_switch)
    push_organisation_dispatch(organisation_id=org_a.pk)
    assert Customer.objects.get().xero_contact_id == ""


def test_a_created_contact_is_recorded_in_one_statement_and_only_on_its_own_organisations_customer(org_a, org_b):
    """Recording a create of 50 contacts read each customer before writing it: 100 statements built by the ORM, about
    190 ms before a new customer's first chunk could be built. Now one statement each, which also checks the
    customer belongs to the organisation."""
    from invoices.services.push.contacts import contact_created

    connection_a, _ = make_connected_organisation(organisation=org_a, invoices=1, contact_ids=False)
    make_batch(organisation=org_b, invoices=1)
    customer_a, customer_b = Customer.objects.get(organisation=org_a), Customer.objects.get(organisation=org_b)
    with CaptureQueriesContext(connection) as statements:
        contact_created(
            organisation_id=org_a.pk, tenant_id=connection_a.tenant_id, number=customer_a.contact_number, contact_id="A"
        )
    contact_created(  # org_b's customer, named in org_a's answer: not org_a's to write
        organisation_id=org_a.pk, tenant_id=connection_a.tenant_id, number=customer_b.contact_number, contact_id="B"
    )
    assert len(statements.captured_queries) == 1
    assert (
        Customer.objects.get(pk=customer_a.pk).xero_contact_id,
        Customer.objects.get(pk=customer_b.pk).xero_contact_id,
    ) == ("A", "")


# ---------------------------------------------------------------- sending


def test_send_records_every_element_and_the_attempt_when_xero_accepts(org_a, xero, enqueued):
    make_connected_organisation(organisation=org_a, invoices=2)
    chunk = dispatch_one_chunk(org_a)
    xero.add_callback(responses.PUT, INVOICES_URL, callback=echo_invoices)
    result = push_chunk_send(chunk_id=chunk.pk)
    assert result.state == "done"
    request = puts(xero)[0]
    assert request.headers["Idempotency-Key"] == chunk.idempotency_key
    assert parse_qs(urlsplit(request.url).query)["summarizeErrors"] == ["false"]
    assert json.loads(request.body) == chunk.payload
    for invoice in Invoice.objects.all():
        assert invoice.sync_state == S.SYNCED
        assert invoice.xero_invoice_id == str(uuid.uuid5(uuid.NAMESPACE_URL, invoice.number))
        assert str(invoice.total) == "110.00" and invoice.synced_at is not None
    attempt = chunk.outbound_attempts.get()
    assert attempt.action == ACT.SEND and attempt.outcome == A.CONFIRMED
    assert attempt.http_status == 200 and attempt.correlation_id
    chunk.refresh_from_db()
    assert chunk.state == C.DONE and chunk.attempts == 1 and chunk.key_first_sent_at is not None
    assert (chunk.sends, chunk.lookups, chunk.in_flight, chunk.leased_by) == (1, 0, "", "")
    assert InvoiceEvent.objects.filter(kind="synced").count() == 2
    assert XeroConnection.objects.get(organisation=org_a).last_synced_at is not None


def test_a_chunk_of_fifty_invoices_makes_as_many_queries_as_a_chunk_of_two(org_a, org_b, xero, enqueued):
    """No query per invoice when a chunk is built, sent and recorded: a field the chunk leaves behind (dispatch's
    PAYLOAD_FIELDS) read per invoice, or a row written one by one, would show here."""
    xero.add_callback(responses.PUT, INVOICES_URL, callback=echo_invoices)
    counts = []
    for organisation, size in ((org_a, 2), (org_b, 50)):
        make_connected_organisation(organisation=organisation, invoices=size)
        with CaptureQueriesContext(connection) as built:
            result = push_organisation_dispatch(organisation_id=organisation.pk)
        chunk = chunks().get(organisation=organisation)
        with CaptureQueriesContext(connection) as sent:
            assert push_chunk_send(chunk_id=chunk.pk).state == "done"
        assert result.chunks == 1 and len(chunk.payload["Invoices"]) == size
        assert Invoice.objects.filter(organisation=organisation, sync_state=S.SYNCED).count() == size
        counts.append((len(built), len(sent)))
        # The next organisation connects the same Xero organisation (the factories' tenant): this one lets it go.
        XeroConnection.objects.filter(organisation=organisation).update(tenant_id=str(uuid.uuid4()))
    assert counts[0] == counts[1], counts


def first_chunk_sent_of_six(organisation, xero) -> tuple[OutboundOperation, list[str]]:
    """300 invoices dispatched (five chunks in flight), then the first chunk sent: it and the SQL its send ran."""
    xero.add_callback(responses.PUT, INVOICES_URL, callback=echo_invoices)
    make_connected_organisation(organisation=organisation, invoices=300)
    push_organisation_dispatch(organisation_id=organisation.pk)
    first = chunks().order_by("pk").first()
    with CaptureQueriesContext(connection) as sent:
        assert push_chunk_send(chunk_id=first.pk).state == "done"
    return first, [query["sql"] for query in sent.captured_queries]


def test_a_chunk_and_the_next_it_builds_read_the_connection_once(org_a, xero, enqueued):
    """Sending a chunk, recording it and building the tenant's next go on one read of the connection (tokens
    included): the client, the short code for links and the chained dispatcher each read it again before."""
    first, sent = first_chunk_sent_of_six(org_a, xero)
    table = XeroConnection._meta.db_table
    reads = [sql for sql in sent if sql.startswith("SELECT") and f'"{table}"' in sql]  # FROM or JOIN
    assert len(reads) == 1, reads
    assert chunks().filter(organisation=org_a).count() == 6
    synced = Invoice.objects.filter(chunk=first).first()
    assert synced.xero_short_code == XeroConnection.objects.get(organisation=org_a).tenant_short_code != ""


def test_a_chunk_reads_the_rows_it_finds_by_a_unique_key_without_an_order_by(org_a, xero, enqueued):
    """The chunk's row, its tenant's mapping and the organisation row its refill locks are found by a unique key:
    first() would add an ORDER BY, and building it costs more CPU than the rest of such a query. Only the invoices
    and their lines are read in order."""
    _, sent = first_chunk_sent_of_six(org_a, xero)
    unique = [model._meta.db_table for model in (OutboundOperation, XeroMapping, Organisation)]
    ordered = [sql for sql in sent if "ORDER BY" in sql and any(f'FROM "{table}"' in sql for table in unique)]
    assert not ordered, ordered


def test_a_chunks_claim_walks_the_tenants_pending_invoices_in_order_and_stops_at_fifty(org_a, enqueued):
    """The claim of a chunk's invoices takes the tenant's next 50 in id order from the index of unsynced invoices:
    left to itself the planner sorted every pending invoice of the tenant to keep 50, 26 ms at 10,000 pending (it
    expects few to pass the join to their eligible batch). The plan is read as the claim runs, in its transaction."""
    _, batch = make_connected_organisation(organisation=org_a, invoices=120)
    # Most of a tenant's invoices are in Xero already: a walk of every invoice by id would pass them all.
    _invoices_like_the_first(batch, 5000, S.SYNCED, prefix="OLD")
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Invoice._meta.db_table}")
    plans = []

    def explain(execute, sql, params, many, context):
        if sql.startswith(f'SELECT "{Invoice._meta.db_table}"."id"') and "SKIP LOCKED" in sql:
            context["cursor"].execute(f"EXPLAIN {sql}", params)
            plans.append("\n".join(row[0] for row in context["cursor"].fetchall()))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(explain):
        assert push_chunks_create(
            organisation_id=org_a.pk, tenant_id="tenant", mapping=org_a.xero_mapping, max_chunks=1
        )
    assert len(plans) == 1
    assert "invoice_unsynced" in plans[0] and "Sort" not in plans[0], plans[0]


def test_a_refill_asks_for_customers_without_a_contact_without_reading_every_pending_invoice(org_a, enqueued):
    """Before it builds the next chunk, a refill checks that no pending invoice's customer lacks a Xero contact. Asked
    from the pending invoices, with the planner's statistics taken before a big batch arrived (as autovacuum leaves
    them), it read all 3,000 of them to find none; asked from the tenant's customers without a contact, it reads none.
    The plan is read with EXPLAIN ANALYZE as the check runs."""
    _, batch = make_connected_organisation(organisation=org_a, invoices=1)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Invoice._meta.db_table}")
        cursor.execute(f"ANALYZE {Customer._meta.db_table}")
    _invoices_like_the_first(batch, 3000, S.PENDING, prefix="BIG")
    read = []

    def explain(execute, sql, params, many, context):
        if sql.startswith("SELECT") and '"xero_contact_id" = %s' in sql and "NOT (" not in sql:
            context["cursor"].execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params)
            read.append(_rows_read(context["cursor"].fetchone()[0][0]["Plan"], Invoice._meta.db_table))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(explain):
        push_organisation_dispatch(organisation_id=org_a.pk, refill=True)
    assert read == [0]


def _invoices_like_the_first(batch: InvoiceBatch, count: int, state: str, *, prefix: str) -> None:
    """`count` more invoices of the batch's first invoice's customer, in `state`, in one INSERT (no lines: the
    statements these tests read the plans of never reach them)."""
    first = batch.invoices.order_by("pk").first()
    Invoice.objects.bulk_create(
        Invoice(
            organisation_id=batch.organisation_id,
            batch=batch,
            customer_id=first.customer_id,
            number=f"{prefix}-{n:05d}",
            issue_date=first.issue_date,
            due_date=first.due_date,
            sync_state=state,
        )
        for n in range(count)
    )


def _rows_read(plan: dict, table: str) -> int:
    own = plan["Actual Rows"] * plan["Actual Loops"] if plan.get("Relation Name") == table else 0
    return own + sum(_rows_read(child, table) for child in plan.get("Plans", []))


def test_a_finished_chunk_chains_the_tenants_next_chunk_to_the_back_of_the_queue(org_a, xero, enqueued):
    make_connected_organisation(organisation=org_a, invoices=260)
    push_organisation_dispatch(organisation_id=org_a.pk)
    first = chunks().order_by("pk").first()
    enqueued.clear()
    xero.add_callback(responses.PUT, INVOICES_URL, callback=echo_invoices)
    assert push_chunk_send(chunk_id=first.pk).state == "done"
    newest = chunks().order_by("pk").last()
    assert len(newest.payload["Invoices"]) == 10 and newest.pk != first.pk
    assert [item.args for item in enqueued.named("invoices.tasks.push_chunk")] == [(newest.pk,)]


def test_a_refill_queues_the_next_chunk_for_the_moment_the_limiter_names_when_its_tenant_must_wait(
    org_a, xero, enqueued, settings
):
    """A chunk built right after its tenant's call would run at once only to be told to wait (a task, a read of
    the chunk and the connection, a write). The refill asks the limiter first, in the chunk's name, and queues the
    chunk for the moment it names; a slot free at once is given back for the send to take."""
    settings.XERO_RATE_LIMITS = {**settings.XERO_RATE_LIMITS, "minute": 2}
    make_connected_organisation(organisation=org_a, invoices=400)
    push_organisation_dispatch(organisation_id=org_a.pk)
    first, second = chunks().order_by("pk")[:2]
    xero.add_callback(responses.PUT, INVOICES_URL, callback=echo_invoices)
    enqueued.clear()
    assert push_chunk_send(chunk_id=first.pk).state == "done"  # the tenant's first call of the minute
    newest = chunks().order_by("pk").last()
    [queued] = enqueued.named("invoices.tasks.push_chunk")
    assert queued.args == (newest.pk,) and queued.countdown == 0 and newest.next_attempt_at is None

    enqueued.clear()
    assert push_chunk_send(chunk_id=second.pk).state == "done"  # its second: the minute is full
    newest = chunks().order_by("pk").last()
    [queued] = enqueued.named("invoices.tasks.push_chunk")
    assert queued.args == (newest.pk,) and queued.countdown > 0
    assert newest.attempts == 0 and newest.next_attempt_at is not None
    assert abs((newest.next_attempt_at - newest.created_at).total_seconds() - queued.countdown) < 1
    result = push_chunk_send(chunk_id=newest.pk)  # run early (a sweep): told again, nothing sent
    assert result.state == "retry" and len(puts(xero)) == 2
    rate_limiter().reset(tenant_id=newest.tenant_id)  # the minute has passed
    chunks().filter(pk=newest.pk).update(next_attempt_at=timezone.now())
    assert push_chunk_send(chunk_id=newest.pk).state == "done"


def test_a_refill_asks_the_limiter_outside_its_transaction_and_leaves_the_queue_when_it_builds_nothing(
    org_a, xero, enqueued, settings, monkeypatch
):
    """The refill takes the next chunk's place in the limiter's queue before it locks the tenant and the invoices: a
    slow Redis never holds those rows. If no chunk is built after all (another worker took the invoices), the place
    is given back, so later chunks are not told to wait behind a chunk that does not exist."""
    from django.db import connection as db

    settings.XERO_RATE_LIMITS = {**settings.XERO_RATE_LIMITS, "minute": 1}
    make_connected_organisation(organisation=org_a, invoices=300)  # five chunks in flight, one more to build
    push_organisation_dispatch(organisation_id=org_a.pk)
    first = chunks().order_by("pk").first()
    limiter = rate_limiter()
    asked_in_transaction = []
    acquire = limiter.acquire
    monkeypatch.setattr(
        limiter, "acquire", lambda **kw: asked_in_transaction.append(db.in_atomic_block) or acquire(**kw)
    )
    xero.add_callback(responses.PUT, INVOICES_URL, callback=echo_invoices)
    assert push_chunk_send(chunk_id=first.pk).state == "done"  # the minute is full: the refill's chunk must wait
    assert len(asked_in_transaction) == 2 and not any(asked_in_transaction), asked_in_transaction  # send, refill
    assert chunks().order_by("pk").last().next_attempt_at is not None

    # Nothing left to build (the invoices went elsewhere meanwhile): the refill's place in the queue is left.
    Invoice.objects.filter(organisation=org_a, sync_state=S.PENDING).update(sync_state=S.FAILED)
    waiting = limiter.redis.zcard(limiter._tenant_keys(first.tenant_id)["waiters"])
    assert push_organisation_dispatch(organisation_id=org_a.pk, refill=True).chunks == 0
    assert limiter.redis.zcard(limiter._tenant_keys(first.tenant_id)["waiters"]) == waiting


def test_a_refill_whose_chunk_fails_to_be_stored_leaves_the_limiters_queue(
    org_a, xero, enqueued, settings, monkeypatch
):
    """The refill took its chunk's place in the limiter's queue before the transaction; if storing the chunk fails (the
    database refuses it), no chunk will come for that place, so it is given back."""
    from django.db import DatabaseError

    from invoices.services.push import dispatch

    settings.XERO_RATE_LIMITS = {**settings.XERO_RATE_LIMITS, "minute": 1}
    make_connected_organisation(organisation=org_a, invoices=300)  # five chunks in flight, one more to build
    push_organisation_dispatch(organisation_id=org_a.pk)
    first = chunks().order_by("pk").first()
    limiter = rate_limiter()
    limiter.acquire(tenant_id=first.tenant_id)  # the tenant's call of the minute: the refill must wait
    waiters = limiter._tenant_keys(first.tenant_id)["waiters"]
    before = limiter.redis.zcard(waiters)

    def refused(**_):
        raise DatabaseError("could not extend file")

    monkeypatch.setattr(dispatch, "operation_create", refused)
    OutboundOperation.objects.filter(pk=first.pk).update(state="done")  # a slot is free for the refill
    with pytest.raises(DatabaseError):
        push_organisation_dispatch(organisation_id=org_a.pk, refill=True)
    assert limiter.redis.zcard(waiters) == before
    assert Invoice.objects.filter(organisation=org_a, sync_state=S.PENDING).count() == 50  # nothing lost


def test_a_refill_builds_the_next_chunk_without_counting_the_slots_or_reading_customers_first(org_a, xero, enqueued):
    """A finished chunk fills the slot it freed straight away while every pending invoice's customer is a Xero
    contact: the only count of the tenant's chunks is the one taken under the tenant's lock, and the next invoices'
    customers are not read."""
    first, sent = first_chunk_sent_of_six(org_a, xero)
    table = OutboundOperation._meta.db_table
    counts = [sql for sql in sent if sql.startswith(f'SELECT "{table}"."id" AS "pk" FROM') and '"state" IN (' in sql]
    customers = [sql for sql in sent if sql.startswith('SELECT "invoices_invoice"."customer_id"')]
    assert (len(counts), customers) == (1, [])
    newest = chunks().order_by("pk").last()
    assert newest.pk != first.pk and len(newest.payload["Invoices"]) == 50


def test_invoices_of_a_customer_new_to_xero_go_with_the_next_chunk_when_added_during_a_push(org_a, xero, enqueued):
    """A batch whose customer is not yet a Xero contact, added while a push runs: the next refill runs the whole
    round, which makes the contact, so its invoices do not wait behind the tenant's other ready invoices."""
    xero.add_callback(responses.PUT, INVOICES_URL, callback=echo_invoices)
    connection_, _ = make_connected_organisation(organisation=org_a, invoices=260)
    push_organisation_dispatch(organisation_id=org_a.pk)  # five chunks of 50: ten invoices left
    late = make_batch(
        organisation=org_a, invoices=3, eligibility=InvoiceBatch.Eligibility.ELIGIBLE, sync_state=S.PENDING
    )
    customer = late.invoices.first().customer
    xero.get(CONTACTS_URL, json={"Contacts": []})
    xero.post(
        CONTACTS_URL,
        json={
            "Contacts": [
                {
                    "ContactID": "dddddddd-0000-4000-8000-000000000004",
                    "ContactNumber": customer.contact_number,
                    "Name": customer.name,
                    "ValidationErrors": [],
                }
            ]
        },
    )
    first = chunks().order_by("pk").first()
    assert push_chunk_send(chunk_id=first.pk).state == "done"
    newest = chunks().order_by("pk").last()
    numbers = {element["InvoiceNumber"] for element in newest.payload["Invoices"]}
    assert set(late.invoices.values_list("number", flat=True)) <= numbers  # with the ten ready ones, in pk order
    for _ in range(10):
        chunk = chunks().filter(state=C.PENDING).order_by("pk").first()
        if chunk is None:
            break
        assert push_chunk_send(chunk_id=chunk.pk).state == "done"
    assert Invoice.objects.filter(organisation=org_a).exclude(sync_state=S.SYNCED).count() == 0
    assert set(late.invoices.values_list("sync_state", flat=True)) == {S.SYNCED}
    customer.refresh_from_db()
    assert customer.xero_contact_id.startswith("dddddddd")


def test_a_chunk_built_from_values_keeps_four_decimal_prices_and_names_in_every_script(org_a, xero, enqueued):
    """Read as values, not model instances: a unit price of four places, a decimal quantity and text in any script
    reach Xero exactly, and Xero's answer is matched back to the invoice by its non-ASCII number."""
    make_connected_organisation(organisation=org_a, invoices=1)
    invoice = Invoice.objects.get(organisation=org_a)
    Invoice.objects.filter(pk=invoice.pk).update(number="FAKTÚRA-ß/東京-1", reference="Zürich — Łódź")
    invoice.lines.update(description="Überstunden 東京 ½", quantity=Decimal("1.5000"), unit_amount=Decimal("10.1234"))
    chunk = dispatch_one_chunk(org_a)
    element = chunk.payload["Invoices"][0]
    assert (element["InvoiceNumber"], element["Reference"]) == ("FAKTÚRA-ß/東京-1", "Zürich — Łódź")
    line = element["LineItems"][0]
    assert (line["Description"], line["Quantity"], line["UnitAmount"]) == ("Überstunden 東京 ½", 1.5, 10.1234)
    xero.add_callback(responses.PUT, INVOICES_URL, callback=echo_invoices)
    assert push_chunk_send(chunk_id=chunk.pk).state == "done"
    assert "unitdp=4" in puts(xero)[0].url
    invoice.refresh_from_db()
    assert invoice.sync_state == S.SYNCED
    assert InvoiceEvent.objects.get(invoice=invoice, kind="synced").message.startswith("In Xero as FAKTÚRA-ß/東京-1")


def test_recording_writes_what_xero_answered_and_leaves_a_refused_invoices_other_fields_alone(org_a, xero, enqueued):
    """Recording reads the chunk's invoices as values and writes only what the answer set: a refused invoice keeps
    its totals; a created one gets Xero's id, status, amounts and update time exactly."""
    make_connected_organisation(organisation=org_a, invoices=2)
    ok, bad = Invoice.objects.order_by("pk")
    Invoice.objects.filter(pk=bad.pk).update(total=Decimal("12.34"), xero_status="")
    chunk = dispatch_one_chunk(org_a)
    xero.add_callback(
        responses.PUT, INVOICES_URL, callback=lambda r: echo_invoices(r, errors={bad.number: ["Bad account"]})
    )
    assert push_chunk_send(chunk_id=chunk.pk).state == "done"
    ok.refresh_from_db()
    bad.refresh_from_db()
    assert (ok.sync_state, ok.xero_invoice_id) == (S.SYNCED, str(uuid.uuid5(uuid.NAMESPACE_URL, ok.number)))
    assert (ok.total, ok.amount_due, ok.xero_status) == (Decimal("110.00"), Decimal("110.00"), "AUTHORISED")
    assert ok.xero_updated_at == dt.datetime(2025, 11, 24, 16, 0, tzinfo=dt.UTC)  # Xero's /Date(1764000000000+0000)/
    assert ok.synced_at == ok.updated_at and ok.xero_tenant_id == chunk.tenant_id and ok.xero_short_code
    assert (bad.sync_state, bad.sync_errors, bad.total, bad.xero_invoice_id) == (
        S.FAILED,
        ["Bad account"],
        Decimal("12.34"),
        "",
    )
    assert list(InvoiceEvent.objects.filter(invoice=bad).values_list("kind", "message")) == [
        ("failed", "Xero rejected it: Bad account")
    ]


def test_send_marks_validation_errors_failed_and_warnings_warning_per_element(org_a, xero, enqueued):
    make_connected_organisation(organisation=org_a, invoices=3)
    chunk = dispatch_one_chunk(org_a)
    ok, warned, bad = Invoice.objects.order_by("pk")
    xero.add_callback(
        responses.PUT,
        INVOICES_URL,
        callback=lambda r: echo_invoices(
            r,
            warnings={warned.number: ["Only AUTHORISED invoices may have SentToContact updated."]},
            errors={bad.number: ["Account code '200' is not a valid code for this document."]},
        ),
    )
    assert push_chunk_send(chunk_id=chunk.pk).state == "done"
    ok.refresh_from_db(), warned.refresh_from_db(), bad.refresh_from_db()
    assert ok.sync_state == S.SYNCED
    assert warned.sync_state == S.WARNING and warned.sync_warnings == [
        "Only AUTHORISED invoices may have SentToContact updated."
    ]
    assert bad.sync_state == S.FAILED and bad.xero_invoice_id == ""
    assert bad.sync_errors == ["Account code '200' is not a valid code for this document."]
    assert InvoiceEvent.objects.get(invoice=bad).kind == "failed"
    assert chunks().get().state == C.DONE  # failures are not retried by themselves


def test_429_reschedules_the_task_with_retry_after_and_never_sleeps(org_a, xero, enqueued):
    from invoices.tasks import push_chunk

    make_connected_organisation(organisation=org_a, invoices=1)
    chunk = dispatch_one_chunk(org_a)
    xero.put(
        INVOICES_URL,
        status=429,
        json={"Title": "Too Many Requests"},
        headers={"Retry-After": "7", "X-Rate-Limit-Problem": "minute", "X-MinLimit-Remaining": "0"},
    )
    started = time.monotonic()
    push_chunk.run(chunk.pk)
    assert time.monotonic() - started < 2
    [later] = [item for item in enqueued.named("invoices.tasks.push_chunk") if item.countdown]
    assert later.countdown == 7 and later.args == (chunk.pk,)
    chunk.refresh_from_db()
    assert chunk.state == C.PENDING
    assert 6 <= (chunk.next_attempt_at - timezone.now()).total_seconds() <= 7
    assert list(chunk.outbound_attempts.values_list("action", "outcome", "http_status")) == [(ACT.SEND, A.RETRY, 429)]
    with pytest.raises(RateLimitWait):  # the limiter obeys Retry-After for the whole tenant
        rate_limiter().acquire(tenant_id=chunk.tenant_id)
    assert Invoice.objects.get().sync_state == S.IN_FLIGHT


def test_refused_by_our_limiter_gives_the_chunk_back_without_counting_an_attempt(org_a, xero, enqueued):
    make_connected_organisation(organisation=org_a, invoices=1)
    chunk = dispatch_one_chunk(org_a)
    for _ in range(5):  # five calls of this tenant already in flight elsewhere
        rate_limiter().acquire(tenant_id=chunk.tenant_id)
    result = push_chunk_send(chunk_id=chunk.pk)
    assert result.state == "retry" and 0 < result.retry_in <= 1
    chunk.refresh_from_db()
    assert chunk.state == C.PENDING and chunk.attempts == 0 and chunk.key_first_sent_at is None
    assert chunk.sends == 0 and chunk.in_flight == "" and chunk.leased_by == ""
    assert len(xero.calls) == 0 and not OutboundAttempt.objects.exists()


@pytest.mark.parametrize(
    "failure",
    [
        {"status": 503, "json": {"Title": "Service Unavailable"}},
        {"status": 502, "body": "bad gateway"},
        {"body": requests.exceptions.ReadTimeout("read timed out")},
    ],
)
def test_5xx_and_timeouts_are_retried_with_backoff_and_the_same_key(org_a, xero, enqueued, failure):
    make_connected_organisation(organisation=org_a, invoices=2)
    chunk = dispatch_one_chunk(org_a)
    xero.put(INVOICES_URL, **failure)
    first = push_chunk_send(chunk_id=chunk.pk)
    assert first.state == "retry" and 1 <= first.retry_in <= 2  # 2 s base, jittered
    chunks().filter(pk=chunk.pk).update(next_attempt_at=timezone.now())
    xero.remove(responses.PUT, INVOICES_URL)
    xero.add_callback(responses.PUT, INVOICES_URL, callback=echo_invoices)
    assert push_chunk_send(chunk_id=chunk.pk).state == "done"
    first_put, second_put = puts(xero)
    assert first_put.headers["Idempotency-Key"] == second_put.headers["Idempotency-Key"] == chunk.idempotency_key
    assert first_put.body == second_put.body  # byte for byte: Xero refuses a reused key with another body
    outcomes = list(chunk.outbound_attempts.order_by("started_at").values_list("action", "outcome"))
    # No answer kept under the key (a 502, a 503, no answer at all): unknown, so the same key is sent again.
    assert outcomes == [(ACT.SEND, A.UNKNOWN), (ACT.SEND, A.CONFIRMED)]
    assert set(Invoice.objects.values_list("sync_state", flat=True)) == {S.SYNCED}


def test_backoff_grows_with_each_attempt(org_a, xero, enqueued, settings):
    settings.XERO_RETRY_MAX_SECONDS = 1000
    make_connected_organisation(organisation=org_a, invoices=1)
    chunk = dispatch_one_chunk(org_a)
    xero.put(INVOICES_URL, status=503, json={})
    waits = []
    for _ in range(4):
        waits.append(push_chunk_send(chunk_id=chunk.pk).retry_in)
        chunks().filter(pk=chunk.pk).update(next_attempt_at=timezone.now())
    assert [1 <= waits[0] <= 2, 2 <= waits[1] <= 4, 4 <= waits[2] <= 8, 8 <= waits[3] <= 16] == [True] * 4


def test_unknown_outcome_after_the_window_is_resolved_by_looking_the_numbers_up(org_a, xero, enqueued):
    make_connected_organisation(organisation=org_a, invoices=2)
    chunk = dispatch_one_chunk(org_a)
    created, missing = Invoice.objects.order_by("pk")
    xero.put(INVOICES_URL, body=requests.exceptions.ReadTimeout("read timed out"))
    assert push_chunk_send(chunk_id=chunk.pk).state == "retry"
    # Seven minutes later: the Idempotency-Key has expired in Xero, a resend could create a second copy.
    chunks().filter(pk=chunk.pk).update(
        key_first_sent_at=timezone.now() - dt.timedelta(minutes=7), next_attempt_at=timezone.now()
    )
    xero.get(
        INVOICES_URL,
        json={
            "Invoices": [
                {
                    "InvoiceID": "9f0c5e4e-1111-4222-8333-444455556666",
                    "InvoiceNumber": created.number,
                    "Status": "AUTHORISED",
                    "Total": 110.0,
                    "Contact": {"ContactID": created.customer.xero_contact_id},
                }
            ]
        },
    )
    assert push_chunk_send(chunk_id=chunk.pk).state == "done"
    lookup = [c.request for c in xero.calls if c.request.method == "GET"][0]
    query = parse_qs(urlsplit(lookup.url).query)
    assert query["InvoiceNumbers"] == [f"{created.number},{missing.number}"] and query["createdByMyApp"] == ["true"]
    assert len(puts(xero)) == 1  # never resent after the window
    created.refresh_from_db(), missing.refresh_from_db()
    assert created.sync_state == S.SYNCED and created.xero_invoice_id == "9f0c5e4e-1111-4222-8333-444455556666"
    assert InvoiceEvent.objects.get(invoice=missing).kind == "requeued"
    # The rest went straight into a new chunk, under a new key.
    assert missing.sync_state == S.IN_FLIGHT and missing.chunk_id != chunk.pk
    assert missing.chunk.idempotency_key != chunk.idempotency_key
    assert [e["InvoiceNumber"] for e in missing.chunk.payload["Invoices"]] == [missing.number]


def test_unknown_outcome_inside_the_window_is_resent_with_the_same_key(org_a, xero, enqueued):
    make_connected_organisation(organisation=org_a, invoices=1)
    chunk = dispatch_one_chunk(org_a)
    xero.put(INVOICES_URL, body=requests.exceptions.ConnectionError("Connection aborted: RemoteDisconnected"))
    assert push_chunk_send(chunk_id=chunk.pk).state == "retry"
    assert chunk.outbound_attempts.get().outcome == A.UNKNOWN
    chunks().filter(pk=chunk.pk).update(next_attempt_at=timezone.now())
    xero.remove(responses.PUT, INVOICES_URL)
    xero.add_callback(responses.PUT, INVOICES_URL, callback=echo_invoices)
    assert push_chunk_send(chunk_id=chunk.pk).state == "done"
    assert [r.headers["Idempotency-Key"] for r in puts(xero)] == [chunk.idempotency_key] * 2


def test_a_500_is_resolved_by_lookup_because_xero_caches_it_under_the_key(org_a, xero, enqueued):
    make_connected_organisation(organisation=org_a, invoices=1)
    chunk = dispatch_one_chunk(org_a)
    xero.put(INVOICES_URL, status=500, json={"Title": "An error occurred"})
    assert push_chunk_send(chunk_id=chunk.pk).state == "retry"
    chunks().filter(pk=chunk.pk).update(next_attempt_at=timezone.now())
    xero.get(INVOICES_URL, json={"Invoices": []})
    assert push_chunk_send(chunk_id=chunk.pk).state == "done"
    assert len(puts(xero)) == 1
    invoice = Invoice.objects.get()  # not in Xero: it goes again in a new chunk, under a new key
    assert invoice.chunk_id != chunk.pk and invoice.sync_state == S.IN_FLIGHT


def test_number_already_in_xero_is_ours_when_an_earlier_call_created_it(org_a, xero, enqueued):
    make_connected_organisation(organisation=org_a, invoices=1)
    chunk = dispatch_one_chunk(org_a)
    invoice = Invoice.objects.get()
    xero.add_callback(
        responses.PUT,
        INVOICES_URL,
        callback=lambda r: echo_invoices(r, errors={invoice.number: ["Invoice # must be unique."]}),
    )
    result = push_chunk_send(chunk_id=chunk.pk)
    assert result.state == "retry" and result.retry_in == 0  # straight on to the lookup
    xero.get(
        INVOICES_URL,
        json={
            "Invoices": [
                {
                    "InvoiceID": "0d1e2f3a-0000-4000-8000-000000000001",
                    "InvoiceNumber": invoice.number,
                    "Status": "AUTHORISED",
                    "Contact": {"ContactID": invoice.customer.xero_contact_id},
                }
            ]
        },
    )
    assert push_chunk_send(chunk_id=chunk.pk).state == "done"
    invoice.refresh_from_db()
    assert invoice.sync_state == S.SYNCED and invoice.xero_invoice_id.startswith("0d1e2f3a")


def test_number_already_in_xero_fails_when_the_invoice_there_is_not_ours(org_a, xero, enqueued):
    make_connected_organisation(organisation=org_a, invoices=1)
    chunk = dispatch_one_chunk(org_a)
    invoice = Invoice.objects.get()
    xero.add_callback(
        responses.PUT,
        INVOICES_URL,
        callback=lambda r: echo_invoices(r, errors={invoice.number: ["Invoice # must be unique."]}),
    )
    push_chunk_send(chunk_id=chunk.pk)
    xero.get(INVOICES_URL, json={"Invoices": []})  # createdByMyApp=true: someone else's invoice
    push_chunk_send(chunk_id=chunk.pk)
    invoice.refresh_from_db()
    assert invoice.sync_state == S.FAILED and invoice.sync_errors == ["Invoice # must be unique."]


def test_whole_request_refused_fails_the_chunks_invoices(org_a, xero, enqueued):
    make_connected_organisation(organisation=org_a, invoices=2)
    chunk = dispatch_one_chunk(org_a)
    xero.put(
        INVOICES_URL,
        status=400,
        json={"Title": "Bad Request", "Detail": "The Idempotency-Key has already been used with a different request."},
    )
    assert push_chunk_send(chunk_id=chunk.pk).state == "failed"
    assert set(Invoice.objects.values_list("sync_state", flat=True)) == {S.FAILED}
    assert chunks().get().state == C.REFUSED
    assert chunk.outbound_attempts.get().outcome == A.REFUSED


# ---------------------------------------------------------------- the connection


def test_needs_reconnect_during_a_push_leaves_the_invoices_pending(org_a, xero, enqueued):
    make_connected_organisation(organisation=org_a, invoices=2)
    chunk = dispatch_one_chunk(org_a)
    XeroConnection.objects.filter(organisation=org_a).update(status=XeroConnection.Status.NEEDS_RECONNECT)
    assert push_chunk_send(chunk_id=chunk.pk).state == "released"
    assert len(xero.calls) == 0
    assert set(Invoice.objects.values_list("sync_state", flat=True)) == {S.PENDING}
    assert chunks().get().state == C.REFUSED  # released: withdrawn without a write


def test_refresh_refused_with_invalid_grant_marks_needs_reconnect_and_keeps_invoices_pending(org_a, xero, enqueued):
    make_connected_organisation(organisation=org_a, invoices=1)
    chunk = dispatch_one_chunk(org_a)
    XeroConnection.objects.filter(organisation=org_a).update(access_token_expires_at=timezone.now())
    xero.post("https://identity.xero.com/connect/token", status=400, json={"error": "invalid_grant"})
    assert push_chunk_send(chunk_id=chunk.pk).state == "released"
    assert puts(xero) == []
    assert XeroConnection.objects.get(organisation=org_a).status == XeroConnection.Status.NEEDS_RECONNECT
    assert Invoice.objects.get().sync_state == S.PENDING
    assert chunk.outbound_attempts.get().outcome == A.WAITING


def test_403_tenant_refused_backs_off_with_the_chunk_until_the_connections_check_marks_it(org_a, xero, enqueued):
    """The tenant's 403 AuthenticationUnsuccessful queues a check of Xero's connections; the chunk keeps its invoices
    and key and backs off (it gave them back, and when the check found the tenant still listed, a new chunk sent the
    same refused PUT at every sweep). Once the check marks the connection, the chunk gives them back to wait for the
    reconnect: nothing of it reached Xero."""
    make_connected_organisation(organisation=org_a, invoices=2)
    chunk = dispatch_one_chunk(org_a)
    put = xero.put(
        INVOICES_URL,
        status=403,
        json={"Type": None, "Title": "Forbidden", "Status": 403, "Detail": "AuthenticationUnsuccessful"},
    )
    result = push_chunk_send(chunk_id=chunk.pk)
    assert result.state == "retry" and result.retry_in > 0, result
    assert set(Invoice.objects.values_list("sync_state", flat=True)) == {S.IN_FLIGHT}
    assert enqueued.named("integrations.xero_connection_verify")
    xero.get("https://api.xero.com/connections", json=[])  # the check: the tenant is gone
    from integrations.services.connection import xero_connection_verify

    connection = XeroConnection.objects.get(organisation=org_a)
    assert xero_connection_verify(connection_id=connection.pk) == "revoked_in_xero"
    chunks().filter(pk=chunk.pk).update(next_attempt_at=timezone.now())
    assert push_chunk_send(chunk_id=chunk.pk).state == "released"
    assert put.call_count == 1
    assert set(Invoice.objects.values_list("sync_state", flat=True)) == {S.PENDING}
    assert not enqueued.named("invoices.tasks.push_organisation")  # no tight loop: the sweeper comes back later


@pytest.mark.parametrize(
    "detail", ["You do not have permission to create invoices", "AuthenticationUnsuccessful"], ids=["role", "tenant"]
)
def test_a_chunk_refused_by_a_403_at_every_send_fails_its_invoices_with_xeros_words_after_the_bound(
    org_a, xero, enqueued, settings, detail
):
    """A refusal that leaves the connection connected was retried with capped waits and no count, the invoices shown
    as sending for ever. After OUTBOUND_MAX_SENDS, as for an edit or a void, it stops: nothing of the chunk reached
    Xero, so its invoices fail with Xero's words (a person fixes the permission, then retries them)."""
    make_connected_organisation(organisation=org_a, invoices=2)
    chunk = dispatch_one_chunk(org_a)
    put = xero.put(INVOICES_URL, status=403, json={"Title": "Forbidden", "Status": 403, "Detail": detail})
    states = send_while_it_retries(chunk, tries=settings.OUTBOUND_MAX_SENDS + 3)
    assert states[-1] == "failed", states
    assert put.call_count == settings.OUTBOUND_MAX_SENDS
    assert set(Invoice.objects.values_list("sync_state", flat=True)) == {S.FAILED}
    assert all(detail in i.sync_errors[0] for i in Invoice.objects.all())
    assert chunks().get(pk=chunk.pk).state == C.REFUSED


def test_a_chunk_refused_at_every_send_after_one_whose_answer_was_lost_stops_in_needs_attention(
    org_a, xero, enqueued, settings
):
    """The first PUT's answer was lost (it may be in Xero); the sends under the same key are refused: failing the
    invoices would let a retry create them twice, so they stop in needs_attention for a person to check Xero."""
    make_connected_organisation(organisation=org_a, invoices=2)
    chunk = dispatch_one_chunk(org_a)
    xero.put(INVOICES_URL, body=requests.exceptions.ReadTimeout("read timed out"))
    forbidden = {"Title": "Forbidden", "Status": 403, "Detail": "You do not have permission to create invoices"}
    xero.put(INVOICES_URL, status=403, json=forbidden)
    states = send_while_it_retries(chunk, tries=settings.OUTBOUND_MAX_SENDS + 3)
    assert states[-1] == "needs_attention", states
    assert set(Invoice.objects.values_list("sync_state", flat=True)) == {S.NEEDS_ATTENTION}
    assert "may have reached Xero" in Invoice.objects.first().sync_errors[0]


def test_a_403_that_leaves_the_connection_connected_backs_off_and_keeps_the_chunk(org_a, xero, enqueued, settings):
    """The user's role lacks a permission: nothing marks the connection, so giving the invoices back to wait for a
    reconnect meant a new chunk and the same refused PUT at every sweep. The chunk keeps its invoices and its key, and
    tries again after growing waits (nothing reached Xero)."""
    settings.XERO_RETRY_BASE_SECONDS, settings.XERO_RETRY_MAX_SECONDS = 2, 600
    make_connected_organisation(organisation=org_a, invoices=2)
    chunk = dispatch_one_chunk(org_a)
    forbidden = {"Title": "Forbidden", "Status": 403, "Detail": "You do not have permission to create invoices"}
    xero.put(INVOICES_URL, status=403, json=forbidden)
    waits = []
    for _ in range(4):
        result = push_chunk_send(chunk_id=chunk.pk)
        assert result.state == "retry", result
        waits.append(result.retry_in)
        chunks().filter(pk=chunk.pk).update(next_attempt_at=timezone.now())
    assert set(Invoice.objects.values_list("sync_state", flat=True)) == {S.IN_FLIGHT}
    assert chunks().get(pk=chunk.pk).idempotency_key == chunk.idempotency_key
    assert waits[-1] > waits[0] and waits[-1] > 2 * settings.XERO_RETRY_BASE_SECONDS, waits
    assert "permission" in chunks().get(pk=chunk.pk).last_error
    assert XeroConnection.objects.get(organisation=org_a).is_usable


def test_connection_lost_after_an_unknown_outcome_keeps_the_chunk_to_resume_later(org_a, xero, enqueued):
    make_connected_organisation(organisation=org_a, invoices=1)
    chunk = dispatch_one_chunk(org_a)
    xero.put(INVOICES_URL, body=requests.exceptions.ReadTimeout("read timed out"))
    push_chunk_send(chunk_id=chunk.pk)
    XeroConnection.objects.filter(organisation=org_a).update(status=XeroConnection.Status.NEEDS_RECONNECT)
    chunks().filter(pk=chunk.pk).update(next_attempt_at=timezone.now())
    assert push_chunk_send(chunk_id=chunk.pk).state == "waiting"
    chunk.refresh_from_db()
    assert chunk.state == C.PENDING and Invoice.objects.get().sync_state == S.IN_FLIGHT


def test_a_chunk_in_doubt_when_the_connection_moves_to_another_xero_organisation_stops_in_needs_attention(
    org_a, xero, enqueued
):
    """Its outcome in the old Xero organisation is unknown and it can never be sent there again: waiting for a
    reconnect would hold its invoices in flight, and one of the tenant's five slots, for ever."""
    make_connected_organisation(organisation=org_a, invoices=2)
    chunk = dispatch_one_chunk(org_a)
    xero.put(INVOICES_URL, body=requests.exceptions.ReadTimeout("read timed out"))
    assert push_chunk_send(chunk_id=chunk.pk).state == "retry"
    XeroConnection.objects.filter(organisation=org_a).update(tenant_id=str(uuid.uuid4()))
    chunks().filter(pk=chunk.pk).update(next_attempt_at=timezone.now())
    assert push_chunk_send(chunk_id=chunk.pk).state == "needs_attention"
    assert len(puts(xero)) == 1
    chunk.refresh_from_db()
    assert chunk.state == C.NEEDS_ATTENTION
    assert not active_chunks(org_a.pk).exists()  # its slot is free for the new organisation's pushes
    for invoice in Invoice.objects.all():
        assert invoice.sync_state == S.NEEDS_ATTENTION
        assert "another Xero organisation" in invoice.sync_errors[0]
    assert InvoiceEvent.objects.filter(kind="needs_attention").count() == 2


# ---------------------------------------------------------------- leases and the sweeper


def test_a_second_worker_does_not_send_a_chunk_whose_lease_is_held(org_a, xero, enqueued):
    make_connected_organisation(organisation=org_a, invoices=1)
    chunk = dispatch_one_chunk(org_a)
    chunks().filter(pk=chunk.pk).update(
        state=C.SENDING, leased_by="other", lease_until=timezone.now() + dt.timedelta(seconds=60)
    )
    assert push_chunk_send(chunk_id=chunk.pk).state == "busy"
    assert len(xero.calls) == 0


def test_stale_lease_is_redispatched_by_the_sweeper_and_resent_with_the_same_key(org_a, xero, enqueued):
    make_connected_organisation(organisation=org_a, invoices=2)
    chunk = dispatch_one_chunk(org_a)
    # A worker claimed it, counted its attempt (its PUT, in flight), and was killed mid-call.
    worker_died_mid_call(chunk, attempts=1, sends=1, key_first_sent_at=timezone.now())
    enqueued.clear()
    assert push_sweep().expired_leases == 1
    assert [item.args for item in enqueued.named("invoices.tasks.push_chunk")] == [(chunk.pk,)]
    xero.add_callback(responses.PUT, INVOICES_URL, callback=echo_invoices)
    assert push_chunk_send(chunk_id=chunk.pk).state == "done"
    assert puts(xero)[0].headers["Idempotency-Key"] == chunk.idempotency_key
    lost = chunk.outbound_attempts.get(outcome=A.UNKNOWN)
    assert lost.action == ACT.SEND and lost.detail.startswith("lost: worker dead-worker")
    assert set(Invoice.objects.values_list("sync_state", flat=True)) == {S.SYNCED}


def test_an_answer_recorded_after_the_lease_passed_to_another_worker_leaves_that_workers_claim_alone(
    org_a, xero, enqueued
):
    """A slow worker's answer is a fact from Xero and is kept, but the chunk is the new lease holder's: its state and
    lease stay as they are (as the engine's record checks its lease)."""
    from invoices.services.push.record import record_put

    make_connected_organisation(organisation=org_a, invoices=2)
    chunk = dispatch_one_chunk(org_a)
    lease = timezone.now() + dt.timedelta(seconds=60)
    chunks().filter(pk=chunk.pk).update(state=C.SENDING, leased_by="worker-b", attempts=2, lease_until=lease)
    first = Invoice.objects.order_by("pk").first()
    body = {"Invoices": [{"InvoiceID": str(uuid.uuid4()), "InvoiceNumber": first.number, "Status": "AUTHORISED"}]}
    attempt = {"started_at": timezone.now(), "action": ACT.SEND}
    result = record_put(chunk.pk, "worker-a", body, attempt, 900, 200, "")
    assert result.state == "busy"
    chunk.refresh_from_db()
    assert (chunk.state, chunk.leased_by, chunk.lease_until) == (C.SENDING, "worker-b", lease)
    first.refresh_from_db()
    assert first.sync_state == S.SYNCED


def test_stale_lease_past_the_window_is_looked_up_not_resent(org_a, xero, enqueued):
    make_connected_organisation(organisation=org_a, invoices=1)
    chunk = dispatch_one_chunk(org_a)
    worker_died_past_the_window(chunk)
    invoice = Invoice.objects.get()
    xero.get(
        INVOICES_URL,
        json={
            "Invoices": [
                {
                    "InvoiceID": "5e5e5e5e-0000-4000-8000-000000000001",
                    "InvoiceNumber": invoice.number,
                    "Status": "AUTHORISED",
                }
            ]
        },
    )
    assert push_chunk_send(chunk_id=chunk.pk).state == "done"
    assert puts(xero) == []
    assert Invoice.objects.get().sync_state == S.SYNCED


def test_a_worker_lost_mid_lookup_leaves_a_lookup_behind_and_the_next_claim_looks_up_again(org_a, xero, enqueued):
    """Decisions read the newest attempt first (the engine's rule): a call lost by a dead worker is written down as
    the call it was making (its `in_flight`), so a lookup lost inside the key's window is looked up again, never taken
    for a send."""
    make_connected_organisation(organisation=org_a, invoices=2)
    chunk = dispatch_one_chunk(org_a)
    first = Invoice.objects.order_by("pk").first()

    def answer_about_one(request):
        status, headers, body = echo_invoices(request)
        answer = json.loads(body)
        answer["Invoices"] = [e for e in answer["Invoices"] if e["InvoiceNumber"] == first.number]
        return status, headers, json.dumps(answer)

    xero.add_callback(responses.PUT, INVOICES_URL, callback=answer_about_one)
    assert push_chunk_send(chunk_id=chunk.pk).state == "retry"  # one element to look up
    # The lookup's worker claimed it, counted its call, and was killed mid-call (the key is still remembered).
    worker_died_mid_call(chunk, call=ACT.LOOKUP, attempts=2, lookups=1)
    other = Invoice.objects.order_by("pk").last()
    xero.get(
        INVOICES_URL,
        json={"Invoices": [{"InvoiceID": str(uuid.uuid4()), "InvoiceNumber": other.number, "Status": "AUTHORISED"}]},
    )
    assert push_chunk_send(chunk_id=chunk.pk).state == "done"
    assert len(puts(xero)) == 1
    lost = chunk.outbound_attempts.get(detail__contains="dead-worker")
    assert (lost.action, lost.outcome) == (ACT.LOOKUP, A.UNKNOWN)
    assert set(Invoice.objects.values_list("sync_state", flat=True)) == {S.SYNCED}


@pytest.mark.parametrize(
    ("rows", "window_open", "call"),
    [
        ((("send", A.RETRY, 429),), True, "send"),  # Xero saw nothing: send again
        ((("send", A.UNKNOWN, None),), True, "send"),  # lost answer, key remembered: same key
        ((("send", A.UNKNOWN, None),), False, "lookup"),  # lost answer, key forgotten: find out first
        ((("send", A.UNCONFIRMED, 500),), True, "lookup"),  # Xero keeps a 500 under the key
        ((("send", A.UNKNOWN, 503),), True, "send"),
        ((("send", A.UNCONFIRMED, 200),), True, "lookup"),  # answered without some elements
        ((("send", A.UNKNOWN, None), ("send", A.RETRY, 429)), False, "lookup"),
        ((("send", A.UNCONFIRMED, 200), ("lookup", A.RETRY, 429)), True, "lookup"),
        ((("send", A.UNCONFIRMED, 200), ("lookup", A.UNCONFIRMED, 200)), True, "lookup"),
    ],
)
def test_a_chunks_next_call_is_the_engines_rule_over_its_attempts(org_a, xero, enqueued, rows, window_open, call):
    """The push's chunks decide through integrations/outbound/decide.next_call, the rule every operation uses
    (tests/integrations/test_outbound_engine.py holds its table)."""
    from integrations.outbound import decide

    make_connected_organisation(organisation=org_a, invoices=1)
    chunk = dispatch_one_chunk(org_a)
    now = timezone.now()
    chunk.attempts = len(rows)
    chunk.key_first_sent_at = now - dt.timedelta(seconds=10 if window_open else 3600)
    chunk.save(update_fields=["attempts", "key_first_sent_at"])
    for index, (action, outcome, status) in enumerate(rows):
        OutboundAttempt.objects.create(
            operation=chunk,
            action=action,
            started_at=now + dt.timedelta(seconds=index),
            outcome=outcome,
            http_status=status,
        )
    assert decide.decide(chunk, now, first=ACT.SEND) == call
    # The chunk's claim (as push_chunk_send makes it) makes that call and writes it down as the one in flight.
    claimed, action = decide.claim(chunk.pk, "worker", first=ACT.SEND, lease_seconds=60)
    assert action == call and claimed.in_flight == call and claimed.attempts == len(rows) + 1


def test_an_invoice_number_with_a_comma_is_looked_up_by_where_not_by_the_comma_separated_list(org_a, xero, enqueued):
    """InvoiceNumbers is one comma-separated value: "ACME 1,2" would be looked up as "ACME 1" and "2" and never found
    (then its own "must be unique" answer would read as another invoice's number)."""
    make_connected_organisation(organisation=org_a, invoices=1)
    Invoice.objects.update(number="ACME 1,2")
    chunk = dispatch_one_chunk(org_a)
    worker_died_past_the_window(chunk)
    found = {"InvoiceID": str(uuid.uuid4()), "InvoiceNumber": "ACME 1,2", "Status": "AUTHORISED"}
    xero.get(
        INVOICES_URL,
        json={"Invoices": [found]},
        match=[responses.matchers.query_param_matcher({"where": 'InvoiceNumber=="ACME 1,2"'}, strict_match=False)],
    )
    assert push_chunk_send(chunk_id=chunk.pk).state == "done"
    assert "InvoiceNumbers" not in parse_qs(urlsplit(xero.calls[0].request.url).query)
    assert Invoice.objects.get().sync_state == S.SYNCED


def test_sweeper_dispatches_tenants_with_pending_invoices_and_nothing_in_flight(org_a, org_b, xero, enqueued):
    make_connected_organisation(organisation=org_a, invoices=1)
    make_batch(organisation=org_b, invoices=1, eligibility=InvoiceBatch.Eligibility.ELIGIBLE, sync_state=S.PENDING)
    assert push_sweep().organisations == 1  # org_b has no connection
    assert [item.args for item in enqueued.named("invoices.tasks.push_organisation")] == [(org_a.pk,)]


def test_sweeper_leaves_tenants_without_a_mapping_alone(org_a, xero, enqueued):
    make_connected_organisation(organisation=org_a, invoices=1, mapping=False)
    assert push_sweep().organisations == 0


def test_sweeper_redispatches_a_pending_chunk_whose_reschedule_was_lost(org_a, xero, enqueued, settings):
    make_connected_organisation(organisation=org_a, invoices=1)
    chunk = dispatch_one_chunk(org_a)
    chunks().filter(pk=chunk.pk).update(next_attempt_at=timezone.now() - dt.timedelta(minutes=5))
    enqueued.clear()
    assert push_sweep().overdue_chunks == 1
    assert [item.args for item in enqueued.named("invoices.tasks.push_chunk")] == [(chunk.pk,)]


# ---------------------------------------------------------------- retry by an accountant


def test_retry_failed_records_the_actor_and_enqueues_when_invoices_failed(org_a, accountant_a, enqueued):
    batch = make_batch(
        organisation=org_a, invoices=3, eligibility=InvoiceBatch.Eligibility.ELIGIBLE, sync_state=S.FAILED
    )
    one, two, three = batch.invoices.order_by("pk")
    Invoice.objects.filter(pk=three.pk).update(sync_state=S.SYNCED)
    Invoice.objects.filter(pk=one.pk).update(sync_errors=["Account code is not valid"])
    assert invoices_retry_failed(organisation=org_a, batch=batch, user=accountant_a) == 2
    assert [item.args for item in enqueued.named("invoices.tasks.push_organisation")] == [(org_a.pk,)]
    one.refresh_from_db()
    assert one.sync_state == S.PENDING and one.sync_errors == []
    events = InvoiceEvent.objects.filter(kind="retried")
    assert {e.invoice_id for e in events} == {one.pk, two.pk}
    assert all(e.actor_id == accountant_a.pk for e in events)


def test_retry_failed_touches_only_the_given_ids_when_ids_given(org_a, accountant_a, enqueued):
    batch = make_batch(
        organisation=org_a, invoices=2, eligibility=InvoiceBatch.Eligibility.ELIGIBLE, sync_state=S.FAILED
    )
    one, two = batch.invoices.order_by("pk")
    assert invoices_retry_failed(organisation=org_a, batch=batch, user=accountant_a, invoice_ids=[two.pk]) == 1
    one.refresh_from_db()
    assert one.sync_state == S.FAILED


def test_retry_failed_ignores_another_organisations_invoices(org_a, org_b, accountant_a, enqueued):
    batch = make_batch(
        organisation=org_b, invoices=1, eligibility=InvoiceBatch.Eligibility.ELIGIBLE, sync_state=S.FAILED
    )
    assert invoices_retry_failed(organisation=org_a, batch=batch, user=accountant_a) == 0
    assert not enqueued.named("invoices.tasks.push_organisation")


def test_chunks_create_serialises_per_tenant(org_a, xero, enqueued):
    make_connected_organisation(organisation=org_a, invoices=3)
    mapping = org_a.xero_mapping
    tenant = XeroConnection.objects.get(organisation=org_a).tenant_id
    assert len(push_chunks_create(organisation_id=org_a.pk, tenant_id=tenant, mapping=mapping, max_chunks=5)) == 1
    assert push_chunks_create(organisation_id=org_a.pk, tenant_id=tenant, mapping=mapping, max_chunks=5) == []


# ---------------------------------------------------------------- issue 11, defect 5: an answer that holds none of ours


def _drive(organisation, rounds: int) -> list[float]:
    """What the tasks would do, without their waits: dispatch, then send every open chunk, `rounds` times.
    Returns each wait a chunk asked for."""
    waits = []
    for _ in range(rounds):
        push_organisation_dispatch(organisation_id=organisation.pk)
        for chunk in chunks().filter(organisation=organisation, state__in=[C.PENDING, C.SENDING]):
            chunks().filter(pk=chunk.pk).update(next_attempt_at=timezone.now())
            result = push_chunk_send(chunk_id=chunk.pk)
            if result.retry_in is not None:
                waits.append(result.retry_in)
    return waits


def test_answer_without_our_invoices_is_looked_up_with_backoff_and_stops_in_needs_attention(
    org_a, xero, enqueued, settings
):
    settings.OUTBOUND_MAX_LOOKUPS = 3
    make_connected_organisation(organisation=org_a, invoices=2)
    xero.put(INVOICES_URL, json={"Invoices": []})  # Xero answered, but about none of ours
    xero.get(INVOICES_URL, json={"Invoices": []})  # and looking the numbers up finds nothing
    waits = _drive(org_a, rounds=12)
    assert len(puts(xero)) == 1  # never sent again under a new key without proof of absence
    lookups = [c for c in xero.calls if c.request.method == "GET"]
    assert len(lookups) == 3
    assert len(waits) >= 3 and min(waits[1:]) > 0  # the first lookup at once, the next ones spaced by the backoff
    for invoice in Invoice.objects.filter(organisation=org_a):
        assert invoice.sync_state == S.NEEDS_ATTENTION
        assert "could not be confirmed" in invoice.sync_errors[0]
        assert '"Invoices": []' in invoice.sync_errors[-1]  # Xero's answer, shown
    assert InvoiceEvent.objects.filter(kind="needs_attention").count() == 2
    assert list(chunks().values_list("state", flat=True)) == [C.NEEDS_ATTENTION]  # was done: it ends with them


def test_a_lookup_xero_keeps_refusing_is_bounded_and_stops_in_needs_attention(org_a, xero, enqueued, settings):
    """A chunk's lookups that fail (refused, unanswered) are bounded like the engine's: spaced by the backoff of their
    own count, and after OUTBOUND_MAX_LOOKUPS its invoices stop where a person sees them, nothing sent again."""
    settings.OUTBOUND_MAX_LOOKUPS = 3
    make_connected_organisation(organisation=org_a, invoices=2)
    xero.put(INVOICES_URL, json={"Invoices": []})  # Xero answered, but about none of ours
    xero.get(INVOICES_URL, status=400, json={"Type": None, "Title": "Bad request", "Status": 400, "Detail": "No."})
    waits = _drive(org_a, rounds=12)
    assert len(puts(xero)) == 1
    assert len([c for c in xero.calls if c.request.method == "GET"]) == 3
    assert waits[-1] > waits[1] > 0  # the waits grow
    for invoice in Invoice.objects.filter(organisation=org_a):
        assert invoice.sync_state == S.NEEDS_ATTENTION
        assert "could not be confirmed" in invoice.sync_errors[0]
    assert not active_chunks(org_a.pk).exists()


def test_invoice_requeued_after_proven_absence_stops_in_needs_attention_when_it_keeps_vanishing(
    org_a, xero, enqueued, settings
):
    settings.PUSH_MAX_REQUEUES = 2
    make_connected_organisation(organisation=org_a, invoices=1)
    xero.put(INVOICES_URL, body=requests.exceptions.ReadTimeout("read timed out"))
    xero.get(INVOICES_URL, json={"Invoices": []})
    for _ in range(10):
        _drive(org_a, rounds=1)
        # The key's window passes after every unanswered PUT: the lookup that follows proves absence.
        chunks().filter(organisation=org_a).update(key_first_sent_at=timezone.now() - dt.timedelta(minutes=7))
    invoice = Invoice.objects.get(organisation=org_a)
    assert invoice.sync_state == S.NEEDS_ATTENTION
    assert InvoiceEvent.objects.filter(invoice=invoice, kind="requeued").count() == 2
    assert len(puts(xero)) == 3


def test_attempts_stored_before_they_named_their_call_are_read_from_their_detail(org_a, xero, enqueued):
    """Migration 0013: an attempt written before `action` existed said which call it was in its detail's first words.
    Its tables went in 0014 (chunks are outbound operations now): it runs on its own models, in tables made for the
    test as they were at 0013."""
    import importlib

    from django.db.migrations.loader import MigrationLoader

    migration = importlib.import_module("invoices.migrations.0013_push_attempt_action")
    apps = MigrationLoader(connection).project_state(("invoices", "0013_push_attempt_action")).apps
    PushChunk, PushAttempt = apps.get_model("invoices", "PushChunk"), apps.get_model("invoices", "PushAttempt")
    with connection.schema_editor() as editor:
        editor.create_model(PushChunk)
        editor.create_model(PushAttempt)
    try:
        chunk = PushChunk.objects.create(
            organisation_id=org_a.pk, tenant_id=str(uuid.uuid4()), idempotency_key=f"coordinoter-{org_a.pk}-0013"
        )
        now = timezone.now()
        for detail in ("PUT /Invoices: 1 elements", "GET /Invoices lookup: 1 found", "lost: worker w stopped"):
            PushAttempt.objects.create(
                chunk=chunk, organisation_id=org_a.pk, started_at=now, outcome="ok", detail=detail
            )
        migration.lookups_by_their_label(apps, None)
        assert dict(PushAttempt.objects.values_list("detail", "action")) == {
            "PUT /Invoices: 1 elements": "send",
            "GET /Invoices lookup: 1 found": "lookup",
            "lost: worker w stopped": "send",
        }
    finally:
        with connection.schema_editor() as editor:
            editor.delete_model(PushAttempt)
            editor.delete_model(PushChunk)
