"""The outbound engine's own rules: the transition table (held against docs/architecture.md), the one writer of an
operation's state, and the decisions that keep a write from being lost or sent twice."""

import ast
import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from integrations.outbound import decide
from integrations.outbound.models import OutboundAttempt, OutboundOperation
from integrations.outbound.states import TRANSITIONS, IllegalTransition, operation_move
from tests.state_machines import ROOT, as_table, documented_table

S = OutboundOperation.State


def test_transition_table_is_the_one_docs_architecture_shows():
    assert documented_table("Outbound operation") == as_table(TRANSITIONS)


def test_every_state_has_a_row_in_the_table():
    assert set(TRANSITIONS) == set(S.values)


def test_move_the_table_lacks_is_refused():
    operation = OutboundOperation(state=S.DONE)
    with pytest.raises(IllegalTransition):
        operation_move(operation, S.PENDING)
    operation = OutboundOperation(state=S.PENDING)
    with pytest.raises(IllegalTransition):
        operation_move(operation, S.DONE)


def test_no_product_code_writes_an_operations_state_except_through_the_table():
    offenders = []
    for path in ROOT.glob("*/**/*.py"):
        if any(part in {".venv", "tests", "migrations", "xero_sandbox", "bench"} for part in path.parts):
            continue
        if path.as_posix().endswith("integrations/outbound/states.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr == "state" and isinstance(node.ctx, ast.Store):
                target = ast.unparse(node.value)
                if target in {"operation", "locked", "op", "seen", "chunk", "row"}:
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, offenders


def _operation(org, **fields) -> OutboundOperation:
    fields.setdefault("state", S.PENDING)
    return OutboundOperation.objects.create(
        organisation=org, tenant_id="t", kind="invoice_change", payload={}, idempotency_key=f"k-{id(fields)}", **fields
    )


@pytest.mark.django_db
@pytest.mark.parametrize(("first", "counted"), [("send", "sends"), ("check", "checks"), ("lookup", "lookups")])
def test_a_first_call_is_claimed_in_one_update_on_the_row_read_before_it(org_a, first, counted):
    operation = _operation(org_a)
    seen = OutboundOperation.objects.get(pk=operation.pk)
    with CaptureQueriesContext(connection) as queries:
        claimed, action = decide.claim(operation.pk, "worker-1", first=first, lease_seconds=60, seen=seen)
    assert [q["sql"].split()[0] for q in queries.captured_queries] == ["UPDATE"]
    assert claimed is seen and action == first and seen.state == S.SENDING
    stored = OutboundOperation.objects.get(pk=operation.pk)
    assert (stored.state, stored.attempts, getattr(stored, counted), stored.in_flight) == (S.SENDING, 1, 1, first)
    assert stored.leased_by == "worker-1" and stored.lease_until > timezone.now()
    assert (stored.key_first_sent_at is not None) == (first == "send")


@pytest.mark.django_db
def test_a_first_claim_on_a_row_another_worker_took_meanwhile_is_busy(org_a):
    operation = _operation(org_a)
    seen = OutboundOperation.objects.get(pk=operation.pk)
    decide.claim(operation.pk, "worker-2", first="send", lease_seconds=60)  # took it after our look
    assert decide.claim(operation.pk, "worker-1", first="send", lease_seconds=60, seen=seen).state == "busy"
    stored = OutboundOperation.objects.get(pk=operation.pk)
    assert (stored.leased_by, stored.attempts, stored.sends) == ("worker-2", 1, 1)


@pytest.mark.django_db
def test_a_first_claim_of_a_row_withdrawn_meanwhile_claims_nothing(org_a):
    operation = _operation(org_a)
    seen = OutboundOperation.objects.get(pk=operation.pk)
    OutboundOperation.objects.filter(pk=operation.pk).update(state=S.REFUSED)
    assert decide.claim(operation.pk, "worker-1", first="send", lease_seconds=60, seen=seen).state == "noop"
    assert OutboundOperation.objects.get(pk=operation.pk).attempts == 0


def _history(operation, *rows) -> None:
    """Attempt rows follow counted calls (the claim counts each before it is made), so the operation counts them."""
    now = timezone.now()
    for index, (action, outcome) in enumerate(rows):
        OutboundAttempt.objects.create(
            operation=operation, action=action, outcome=outcome, started_at=now + dt.timedelta(seconds=index)
        )
    operation.attempts = len(rows)
    operation.save(update_fields=["attempts"])


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("rows", "window_open", "decision"),
    [
        ((), True, "check"),
        ((("send", "retry"),), True, "send"),  # refused before Xero saw it (429): send again
        ((("send", "unknown"),), True, "send"),  # lost answer, key remembered: same key again
        ((("send", "unknown"),), False, "lookup"),  # lost answer, key forgotten: find out first
        ((("send", "unconfirmed"),), True, "lookup"),  # a replay would only repeat that answer
        ((("send", "unknown"), ("lookup", "absent")), False, "send"),  # proved absent
        ((("send", "unknown"), ("lookup", "retry")), False, "lookup"),
        ((("send", "unknown"), ("send", "retry")), False, "lookup"),  # still in doubt after a 429
    ],
)
def test_decision_comes_from_the_stored_attempts(org_a, rows, window_open, decision):
    sent = timezone.now() - dt.timedelta(seconds=10 if window_open else 3600)
    operation = _operation(org_a, key_first_sent_at=sent if rows else None)
    _history(operation, *rows)
    assert decide.decide(operation, timezone.now()) == decision


# ---------------------------------------------------------------- every write through the engine


WRITES = {"invoices_put", "invoice_post", "credit_notes_put", "credit_note_allocation_put", "contacts_post"}


def _write_call_sites() -> list[tuple[str, str, str]]:
    """(module, enclosing function, endpoint) of every call of a write endpoint of integrations/xero/accounting.py in
    product code (the endpoint layer itself, tests, the sandbox and the benchmarks left out)."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    skipped = {".venv", "tests", "xero_sandbox", "bench", ".git", "migrations"}
    sites = []
    for path in root.rglob("*.py"):
        relative = path.relative_to(root)
        if skipped.intersection(relative.parts) or relative.as_posix() == "integrations/xero/accounting.py":
            continue
        tree = ast.parse(path.read_text())
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef):
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in WRITES:
                    module = ".".join(relative.with_suffix("").parts)
                    sites.append((module, function.name, node.func.attr))
    return sites


def test_every_write_to_xero_is_made_by_a_registered_kinds_send():
    """Only the engine calls a kind's `send` (engine.operation_run, after its claim): a write endpoint called from
    anywhere else would be a write the engine does not record, bound or confirm."""
    from integrations.outbound.kinds import _KINDS

    sites = _write_call_sites()
    assert {endpoint for _, _, endpoint in sites} == WRITES  # the scan finds every write endpoint's caller
    sends = {(kind.send.__module__, kind.send.__name__) for kind in _KINDS.values()}
    assert [site for site in sites if site[:2] not in sends] == []
