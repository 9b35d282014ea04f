"""XeroConnection.status: the one table of allowed moves, and the one function every write of the status goes through.

docs/architecture.md ("State machines") shows the same table; tests/integrations/test_connection_states.py holds
them together, and checks that no product code writes the status anywhere else.
"""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from integrations.models import XeroConnection

S = XeroConnection.Status

# Each move with what makes it, as docs/architecture.md lists it. A write of the status it already has is no move.
TRANSITIONS: dict[str, frozenset[str]] = {
    S.NOT_CONNECTED: frozenset({S.ACTIVE}),  # connected
    S.ACTIVE: frozenset({S.NEEDS_RECONNECT, S.DISCONNECTED, S.REVOKED_IN_XERO}),
    S.NEEDS_RECONNECT: frozenset({S.ACTIVE, S.DISCONNECTED, S.REVOKED_IN_XERO}),
    S.DISCONNECTED: frozenset({S.ACTIVE}),  # connected again
    S.REVOKED_IN_XERO: frozenset({S.ACTIVE, S.DISCONNECTED}),
}


class IllegalConnectionMove(ValueError):
    pass


def connection_move(connection: XeroConnection, to: str, *, at: dt.datetime | None = None) -> list[str]:
    """Set the connection's status and when it changed; the caller saves the returned fields under the row lock it
    holds. Refuses a move the table lacks."""
    if to != connection.status and to not in TRANSITIONS[connection.status]:
        raise IllegalConnectionMove(f"Xero connection {connection.pk}: {connection.status} -> {to} is not allowed.")
    connection.status = to
    connection.status_changed_at = at or timezone.now()
    return ["status", "status_changed_at"]
