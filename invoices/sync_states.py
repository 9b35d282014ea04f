"""Invoice.sync_state and CreditNote.sync_state: the tables of allowed moves, and the functions every write of them
goes through.

docs/architecture.md ("State machines") shows the same tables; tests/invoices/test_sync_states.py holds them together
and fails if any other product code writes a sync state. A write of the state it already has is no move. "removed"
is not a state but the cancel: the row is deleted (a `CancelledInvoice` kept), allowed from the CANCELLABLE states.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import QuerySet

from coordinoter.prepared import Bind, Prepared
from invoices.models import CreditNote, Invoice

S = Invoice.SyncState
REMOVED = "removed"

INVOICE_STATES = frozenset(S.values)
# A credit note is never "in Xero, with warnings": its operation is confirmed or not.
CREDIT_NOTE_STATES = INVOICE_STATES - {S.WARNING}

# What a new document starts as: pending when its batch syncs, not_synced when it was made before (or without) a
# usable connection (the help article's promise).
START = frozenset({S.PENDING, S.NOT_SYNCED})

INVOICE_MOVES: dict[str, frozenset[str]] = {
    S.NOT_SYNCED: frozenset({S.PENDING}),  # an admin sends the batch (services/batch_send.py)
    # claimed into a chunk; or unmappable, or its contact refused / unconfirmed (push/dispatch.py, push/contacts.py)
    S.PENDING: frozenset({S.IN_FLIGHT, S.FAILED, S.NEEDS_ATTENTION}),
    # Xero's answer or a lookup (push/record.py); back to pending when proved absent or when nothing was written
    S.IN_FLIGHT: frozenset({S.SYNCED, S.WARNING, S.FAILED, S.PENDING, S.NEEDS_ATTENTION}),
    S.FAILED: frozenset({S.PENDING}),  # retried (push/retry.py, services/fix.py)
    # retried after someone looked; in flight again when support retries its chunk (invoices/outbound/chunks.py)
    S.NEEDS_ATTENTION: frozenset({S.PENDING, S.IN_FLIGHT}),
    S.SYNCED: frozenset(),
    S.WARNING: frozenset(),
}
CREDIT_NOTE_MOVES: dict[str, frozenset[str]] = {
    S.NOT_SYNCED: frozenset({S.PENDING}),  # sent with its batch (services/batch_send.py)
    S.PENDING: frozenset({S.IN_FLIGHT, S.FAILED}),  # its operation stored; or unmappable (services/credit_notes.py)
    S.IN_FLIGHT: frozenset({S.SYNCED, S.FAILED, S.NEEDS_ATTENTION}),  # its operation ended
    # Support retries it (Sending again); or support retried its operation and that operation ended.
    S.NEEDS_ATTENTION: frozenset({S.IN_FLIGHT, S.SYNCED, S.FAILED}),
    S.FAILED: frozenset({S.PENDING}),  # a person fixed it and sends it again (services/fix/)
    S.SYNCED: frozenset(),
}
# Not in Xero and not on its way there right now: a person may change it, cancel it or send it again.
INVOICE_CANCELLABLE = frozenset({S.FAILED, S.NEEDS_ATTENTION, S.PENDING, S.NOT_SYNCED})
CREDIT_NOTE_CANCELLABLE = frozenset({S.FAILED, S.NEEDS_ATTENTION, S.PENDING, S.NOT_SYNCED})


class IllegalSyncMove(ValueError):
    pass


def _tables(model: type) -> tuple[dict[str, frozenset[str]], frozenset[str]]:
    if issubclass(model, CreditNote):
        return CREDIT_NOTE_MOVES, CREDIT_NOTE_CANCELLABLE
    if issubclass(model, Invoice):
        return INVOICE_MOVES, INVOICE_CANCELLABLE
    raise TypeError(f"{model.__name__} has no sync state machine.")


def _check(model: type, start: str, to: str, what: object) -> None:
    moves, _ = _tables(model)
    if to != start and to not in moves.get(start, ()):
        raise IllegalSyncMove(f"{model.__name__} {what}: sync state {start} -> {to} is not allowed.")


def sync_state_begin(*, eligible: bool) -> str:
    """The sync state a new invoice or credit note is created with."""
    return S.PENDING if eligible else S.NOT_SYNCED


def sync_state_seed(state: str) -> str:
    """A state written as-is by demo and scale seeds: a snapshot of where documents stand, not a move."""
    if state not in INVOICE_STATES:
        raise IllegalSyncMove(f"{state!r} is not a sync state.")
    return state


def sync_state_move(document: Invoice | CreditNote | Any, to: str) -> None:
    """Set the document's sync state (the caller saves it, under the row lock it holds). Refuses a move the table
    lacks. `document` may also be a row read without a model instance that names its model as `state_model` (the
    push's Carried)."""
    _check(getattr(document, "state_model", type(document)), document.sync_state, to, document.pk)
    document.sync_state = to


def sync_state_update(queryset: QuerySet, from_states: Iterable[str], to: str, **fields) -> int:
    """Move the rows of `queryset` that are in one of `from_states` to `to` in one UPDATE (with `fields`); rows in
    any other state are left alone. Returns how many moved."""
    from_states = list(from_states)
    for start in from_states:
        _check(queryset.model, start, to, "rows")
    return queryset.filter(sync_state__in=from_states).update(sync_state=to, **fields)


def sync_state_update_ids(model: type, ids: list[int], from_states: Iterable[str], to: str, **fields: Any) -> int:
    """sync_state_update for the rows of `model` named by id, in one statement compiled once per shape
    (coordinoter/prepared.py): what the push runs for every chunk it builds."""
    from_states = tuple(from_states)
    for start in from_states:
        _check(model, start, to, "rows")
    statement = _BY_IDS.get((model, from_states))
    if statement is None:
        statement = _BY_IDS.setdefault(
            (model, from_states),
            Prepared(lambda: model.objects.filter(pk__in=Bind("ids", many=True), sync_state__in=list(from_states))),
        )
    return statement.update({"sync_state": to, **fields}, ids=ids)


_BY_IDS: dict[tuple[type, tuple[str, ...]], Prepared] = {}


def sync_state_remove(document: Invoice | CreditNote) -> None:
    """The cancel: refuses unless the document's state is cancellable; the caller then deletes the row."""
    _, cancellable = _tables(type(document))
    if document.sync_state not in cancellable:
        raise IllegalSyncMove(f"{type(document).__name__} {document.pk}: {document.sync_state} cannot be cancelled.")
