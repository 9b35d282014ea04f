"""The outbound operation's state machine: the one table of allowed moves, and the functions that write it (one row
held under its lock, or a conditional UPDATE).

docs/architecture.md shows the same table; tests/integrations/test_outbound_engine.py holds them together.
"""

from typing import Any

from coordinoter.prepared import Prepared
from integrations.outbound.models import OutboundOperation

S = OutboundOperation.State

TRANSITIONS: dict[str, frozenset[str]] = {
    # -> refused without a call: a person withdrew it (what it was for was cancelled), only while nothing of it can
    # be in Xero or after a person was asked to look (engine.operation_withdraw).
    S.PENDING: frozenset({S.SENDING, S.REFUSED}),
    S.SENDING: frozenset({S.PENDING, S.DONE, S.REFUSED, S.NEEDS_ATTENTION}),
    S.NEEDS_ATTENTION: frozenset({S.PENDING, S.REFUSED}),
    S.DONE: frozenset(),
    S.REFUSED: frozenset(),
}
FINAL = frozenset({S.DONE, S.REFUSED})


class IllegalTransition(ValueError):
    pass


def operation_move(operation: OutboundOperation, to: str) -> None:
    """Set the operation's state (the caller saves it, under the row lock it holds). Refuses a move the table lacks."""
    if to != operation.state and to not in TRANSITIONS[operation.state]:
        raise IllegalTransition(f"Outbound operation {operation.pk}: {operation.state} -> {to} is not allowed.")
    operation.state = to


def operations_move(statement: Prepared, frm: str, to: str, fields: dict[str, Any], **values: Any) -> int:
    """Move the operations `statement` selects (a statement compiled once, coordinoter/prepared.py, that selects only
    rows still in `frm`: its bound `values`) to `to` in one conditional UPDATE, with `fields`; how many moved. Refuses
    a move the table lacks before any row is touched."""
    if to not in TRANSITIONS[frm]:
        raise IllegalTransition(f"Outbound operations: {frm} -> {to} is not allowed.")
    return statement.update({"state": to, **fields}, **values)
