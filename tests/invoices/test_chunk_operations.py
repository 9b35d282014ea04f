"""Push chunks are the outbound engine's operations (kind invoice_chunk): one that cannot be confirmed stops in
needs_attention where support sees every such write, support's retry looks its invoices up again, and a person who
retries or cancels those invoices instead withdraws it. The migration that moved the old chunk tables holds too."""

import datetime as dt
import uuid

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from integrations.outbound import decide, engine
from integrations.outbound.models import OutboundAttempt, OutboundOperation
from integrations.outbound.selectors import operations_needing_attention
from invoices.models import Invoice
from invoices.outbound.chunks import CHUNK_KIND
from invoices.services.fix.invoices import invoice_cancel
from invoices.services.push import invoices_retry_failed, push_chunk_send, push_organisation_dispatch
from invoices.services.push.common import chunks
from tests.factories import make_connected_organisation, make_user
from tests.invoices.conftest import INVOICES_URL

S = Invoice.SyncState
C = OutboundOperation.State
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("push_settings")]


def _stopped_in_attention(organisation, xero, settings, invoices: int = 2) -> OutboundOperation:
    """Xero answers the PUT about none of ours and bounded lookups find nothing: the chunk needs attention."""
    settings.OUTBOUND_MAX_LOOKUPS = 2
    make_connected_organisation(organisation=organisation, invoices=invoices)
    xero.put(INVOICES_URL, json={"Invoices": []})
    xero.get(INVOICES_URL, json={"Invoices": []})
    push_organisation_dispatch(organisation_id=organisation.pk)
    chunk = chunks().get(organisation=organisation)
    for _ in range(4):
        chunks().filter(pk=chunk.pk).update(next_attempt_at=timezone.now())
        if push_chunk_send(chunk_id=chunk.pk).state == "needs_attention":
            break
    chunk.refresh_from_db()
    return chunk


def test_a_chunk_that_cannot_be_confirmed_needs_attention_beside_every_other_write(org_a, xero, enqueued, settings):
    chunk = _stopped_in_attention(org_a, xero, settings)
    assert chunk.state == C.NEEDS_ATTENTION and chunk.completed_at and not chunk.leased_by and not chunk.in_flight
    assert chunk.last_error.startswith("2 of its invoices need attention. Xero's answer could not be confirmed")
    assert chunk.last_answer == {"Invoices": []}  # Xero's answer to the PUT, for support
    assert list(operations_needing_attention(org_a)) == [chunk]
    assert set(Invoice.objects.filter(organisation=org_a).values_list("sync_state", flat=True)) == {S.NEEDS_ATTENTION}
    # Its calls are the engine's attempts: the PUT answered without them, then the lookups that found nothing.
    calls = list(chunk.outbound_attempts.order_by("started_at", "pk").values_list("action", "outcome"))
    assert calls == [("send", "unconfirmed"), ("lookup", "unconfirmed"), ("lookup", "unconfirmed")]
    assert (chunk.attempts, chunk.sends, chunk.lookups) == (3, 1, 2)


def test_support_retry_of_a_chunk_looks_its_invoices_up_again_and_never_resends(org_a, xero, enqueued, settings):
    chunk = _stopped_in_attention(org_a, xero, settings)
    puts = len([c for c in xero.calls if c.request.method == "PUT"])
    numbers = list(Invoice.objects.filter(organisation=org_a).values_list("number", flat=True))
    xero.replace(
        "GET",
        INVOICES_URL,
        json={
            "Invoices": [{"InvoiceID": str(uuid.uuid4()), "InvoiceNumber": n, "Status": "AUTHORISED"} for n in numbers]
        },
    )
    enqueued.clear()
    engine.operation_retry(organisation_id=org_a.pk, operation_id=chunk.pk, by=None)
    assert set(Invoice.objects.filter(organisation=org_a).values_list("sync_state", flat=True)) == {S.IN_FLIGHT}
    [queued] = enqueued.named("invoices.tasks.push_chunk")  # on the push's queue, as every chunk's run
    assert queued.args == (chunk.pk,)
    result = push_chunk_send(chunk_id=chunk.pk)  # the engine's loop, with the chunk's calls and record
    assert result.state == "done"
    chunk.refresh_from_db()
    assert chunk.state == C.DONE
    assert set(Invoice.objects.filter(organisation=org_a).values_list("sync_state", flat=True)) == {S.SYNCED}
    assert len([c for c in xero.calls if c.request.method == "PUT"]) == puts  # found by a lookup, not sent again
    assert chunk.outbound_attempts.order_by("-started_at", "-pk").first().action == "lookup"


def test_retrying_or_cancelling_its_invoices_withdraws_the_chunk(org_a, xero, enqueued, settings):
    chunk = _stopped_in_attention(org_a, xero, settings)
    user = make_user(email="acc@example.test")
    first, second = Invoice.objects.filter(organisation=org_a).order_by("pk")
    invoices_retry_failed(organisation=org_a, batch=first.batch, user=user, invoice_ids=[first.pk])
    chunk.refresh_from_db()
    assert chunk.state == C.NEEDS_ATTENTION  # the second invoice still needs someone to look
    invoice_cancel(organisation=org_a, invoice_id=second.pk, user=user)
    chunk.refresh_from_db()
    assert chunk.state == C.REFUSED and "cancelled" in chunk.last_error
    assert list(operations_needing_attention(org_a)) == []


def test_the_engines_sweep_leaves_chunks_to_the_push_sweep(org_a, xero, enqueued):
    make_connected_organisation(organisation=org_a, invoices=1)
    push_organisation_dispatch(organisation_id=org_a.pk)
    chunks().update(next_attempt_at=timezone.now() - dt.timedelta(minutes=5))
    enqueued.clear()
    engine.operations_sweep()
    assert enqueued.named("integrations.outbound.tasks.run_operation") == []


MIGRATED_FROM = [("invoices", "0013_push_attempt_action"), ("integrations", "0013_outbound_checks")]
MIGRATED_TO = [("invoices", "0015_drop_push_chunk_tables")]


def test_the_migration_moves_chunks_attempts_and_invoice_links_into_the_engines_tables(org_a):
    executor = MigrationExecutor(connection)
    executor.migrate(MIGRATED_FROM)
    old = executor.loader.project_state(MIGRATED_FROM).apps
    PushChunk, PushAttempt = old.get_model("invoices", "PushChunk"), old.get_model("invoices", "PushAttempt")
    Batch, OldInvoice = old.get_model("invoices", "InvoiceBatch"), old.get_model("invoices", "Invoice")
    Customer = old.get_model("invoices", "Customer")
    now = timezone.now()
    try:
        customer = Customer.objects.create(organisation_id=org_a.pk, name="Old Co", name_key="old co")
        batch = Batch.objects.create(organisation_id=org_a.pk, name="Old batch")
        made = dt.datetime(2026, 11, 1, 9, 0, tzinfo=dt.UTC)
        waiting = PushChunk.objects.create(
            organisation_id=org_a.pk, tenant_id="t-1", state="pending", idempotency_key="k-waiting", attempts=2,
            payload={"Invoices": [{"InvoiceNumber": "OLD-1"}]}, first_attempt_at=now, next_attempt_at=now,
        )  # fmt: skip
        PushChunk.objects.filter(pk=waiting.pk).update(created_at=made)
        stopped = PushChunk.objects.create(
            organisation_id=org_a.pk, tenant_id="t-1", state="failed", idempotency_key="k-stopped", attempts=2
        )
        # Xero answered its PUT without the invoice and the lookup did not find it: it stopped in needs_attention.
        for action, detail in (("send", '1 elements; answer: {"Invoices": []}'), ("lookup", "0 found")):
            PushAttempt.objects.create(
                chunk=stopped, organisation_id=org_a.pk, action=action, outcome="ok", http_status=200,
                started_at=now, detail=detail,
            )  # fmt: skip
        # Its worker stopped mid-call while the migration ran: a claimed call without its row.
        PushChunk.objects.create(
            organisation_id=org_a.pk, tenant_id="t-1", state="sending", idempotency_key="k-lost", attempts=1,
            claimed_by="w", lease_expires_at=now,
        )  # fmt: skip
        PushChunk.objects.create(
            organisation_id=org_a.pk, tenant_id="t-1", state="failed", idempotency_key="k-released"
        )
        for outcome, action, status in (("timeout", "send", None), ("ok", "lookup", 200)):
            PushAttempt.objects.create(
                chunk=waiting, organisation_id=org_a.pk, action=action, outcome=outcome, http_status=status,
                started_at=now, detail=f"{action} detail",
            )  # fmt: skip
        for number, chunk, state in (("OLD-1", waiting, "in_flight"), ("OLD-2", stopped, "needs_attention")):
            OldInvoice.objects.create(
                organisation_id=org_a.pk, batch=batch, customer=customer, number=number, chunk=chunk, sync_state=state,
                issue_date=now.date(), due_date=now.date(),
            )  # fmt: skip
        executor = MigrationExecutor(connection)
        executor.migrate(MIGRATED_TO)
        new = executor.loader.project_state(MIGRATED_TO).apps
        Operation, Attempt = (
            new.get_model("integrations", "OutboundOperation"),
            new.get_model("integrations", "OutboundAttempt"),
        )
        moved = {op.idempotency_key: op for op in Operation.objects.filter(kind=CHUNK_KIND)}
        assert {key: op.state for key, op in moved.items()} == {
            "k-waiting": "pending",
            "k-stopped": "needs_attention",  # its invoice stopped there
            "k-released": "refused",
            "k-lost": "sending",
        }
        # Support's retry of the stopped chunk looks its invoice up (never a resend): its answers did not confirm it.
        stopped_op = moved["k-stopped"]
        history = Attempt.objects.filter(operation=stopped_op).order_by("-started_at", "-pk")
        assert set(history.values_list("outcome", flat=True)) == {"unconfirmed"}
        assert decide.next_call(history.values_list("action", "outcome"), key_first_sent_at=None, now=now) == "lookup"
        assert stopped_op.last_answer == {"Invoices": []}
        # The lost call is in flight, so the next claim records it as unknown (a send: the careful reading).
        assert (moved["k-lost"].in_flight, moved["k-lost"].leased_by) == ("send", "w")
        op = moved["k-waiting"]
        assert (op.attempts, op.sends, op.lookups, op.key_first_sent_at, op.created_at) == (2, 1, 1, now, made)
        assert op.payload == {"Invoices": [{"InvoiceNumber": "OLD-1"}]} and op.tenant_id == "t-1"
        assert sorted(Attempt.objects.filter(operation=op).values_list("action", "outcome")) == [
            ("lookup", "unconfirmed"),  # answered, and the chunk still open: something was left to look up
            ("send", "unknown"),
        ]
        invoices = new.get_model("invoices", "Invoice").objects.filter(organisation_id=org_a.pk)
        assert dict(invoices.values_list("number", "chunk_id")) == {"OLD-1": op.pk, "OLD-2": moved["k-stopped"].pk}
    finally:
        call_command("migrate", verbosity=0)
        assert set(OutboundAttempt.Outcome.values) >= {"unknown", "unconfirmed"}


ANSWER_FROM = [("integrations", "0014_outbound_fewer_indexes")]
ANSWER_TO = [("integrations", "0015_outbound_attempt_answer")]


def test_the_migration_moves_a_puts_answer_out_of_its_detail_into_its_own_field(org_a):
    """Until 0015 a chunk's PUT kept the start of Xero's answer at the end of its detail, and the push read it back by
    splitting that text; a chunk needing attention after the migration still shows people that answer."""
    executor = MigrationExecutor(connection)
    executor.migrate(ANSWER_FROM)
    old = executor.loader.project_state(ANSWER_FROM).apps
    Operation, Attempt = (
        old.get_model("integrations", "OutboundOperation"),
        old.get_model("integrations", "OutboundAttempt"),
    )
    now = timezone.now()
    try:
        chunk = Operation.objects.create(
            organisation_id=org_a.pk, tenant_id="t", kind=CHUNK_KIND, payload={}, idempotency_key="k-answer"
        )
        answer = '{"Invoices": [{"InvoiceNumber": "Ωmega-1", "Total": 10.1234}]}'
        rows = [
            ("send", 200, f"PUT /Invoices: 1 elements; answer: {answer}"),
            ("lookup", 200, "GET /Invoices lookup: 0 found"),
            ("send", 200, '1 elements; answer: {"Invoices": []}'),  # moved from the push's own table (invoices/0014)
            ("send", None, "PUT /Invoices: Xero did not answer; answer: unknown"),  # a detail, not an answer
        ]
        for action, status, detail in rows:
            Attempt.objects.create(
                operation=chunk, action=action, outcome="unconfirmed", http_status=status, started_at=now, detail=detail
            )
        executor = MigrationExecutor(connection)
        executor.migrate(ANSWER_TO)
        new = executor.loader.project_state(ANSWER_TO).apps
        moved = new.get_model("integrations", "OutboundAttempt").objects.filter(operation_id=chunk.pk).order_by("pk")
        assert list(moved.values_list("detail", "answer")) == [
            ("PUT /Invoices: 1 elements", answer),
            ("GET /Invoices lookup: 0 found", ""),
            ("1 elements", '{"Invoices": []}'),
            ("PUT /Invoices: Xero did not answer; answer: unknown", ""),
        ]
    finally:
        call_command("migrate", verbosity=0)


def test_a_chunk_a_dead_worker_left_with_nothing_in_flight_ends_done_and_frees_its_slot(org_a, xero, enqueued):
    """The worker recorded every invoice, then died before releasing the chunk: the next claim finds nothing to send,
    ends it done without a call, and queues the tenant's dispatcher for the slot it frees (as a recorded chunk does)."""
    make_connected_organisation(organisation=org_a, invoices=1)
    push_organisation_dispatch(organisation_id=org_a.pk)
    chunk = chunks().get(organisation=org_a)
    Invoice.objects.filter(chunk=chunk).update(sync_state=S.SYNCED)
    chunks().filter(pk=chunk.pk).update(
        state=C.SENDING, attempts=1, sends=1, leased_by="dead", lease_until=timezone.now() - dt.timedelta(seconds=1)
    )
    enqueued.clear()
    result = push_chunk_send(chunk_id=chunk.pk)
    assert result.state == "done" and len(xero.calls) == 0
    chunk.refresh_from_db()
    assert chunk.state == C.DONE and not chunk.leased_by
    assert [item.args for item in enqueued.named("invoices.tasks.push_organisation")] == [(org_a.pk,)]


def test_a_limiter_slot_taken_before_a_claim_that_fails_is_given_back(org_a, xero, enqueued, monkeypatch):
    from integrations.xero.ratelimit import rate_limiter

    make_connected_organisation(organisation=org_a, invoices=1)
    push_organisation_dispatch(organisation_id=org_a.pk)
    chunk = chunks().get(organisation=org_a)
    refunded = []
    limiter = rate_limiter()
    monkeypatch.setattr(type(limiter), "refund", lambda self, **kw: refunded.append(kw["ticket"]))

    def broken_claim(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(engine, "claim", broken_claim)
    with pytest.raises(RuntimeError):
        push_chunk_send(chunk_id=chunk.pk)
    assert len(refunded) == 1 and refunded[0] is not None
