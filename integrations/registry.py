"""Hooks that higher apps (invoices) fill at start-up, keeping the dependency direction
invoices -> integrations. Listeners run after the transaction that changed the connection commits.

    from integrations.registry import register_connection_listener
    register_connection_listener(lambda organisation_id, event: ...)   # in InvoicesConfig.ready()

Events: "connected", "reconnected", "tenant_switched", "needs_reconnect", "revoked_in_xero", "disconnected".
"""

import logging
from collections.abc import Callable

from django.db import transaction

logger = logging.getLogger(__name__)

ConnectionListener = Callable[[int, str], None]
_listeners: list[ConnectionListener] = []


def register_connection_listener(listener: ConnectionListener) -> None:
    if listener not in _listeners:
        _listeners.append(listener)


def connection_event_emit(*, organisation_id: int, event: str) -> None:
    """Tell the listeners once the current transaction commits; a failing listener never breaks the caller."""

    def run() -> None:
        for listener in list(_listeners):
            try:
                listener(organisation_id, event)
            except Exception:  # noqa: BLE001 - a listener's bug must not undo a connection change
                logger.exception(
                    "integrations.listener_failed",
                    extra={
                        "event": "integrations.listener_failed",
                        "organisation_id": organisation_id,
                        "connection_event": event,
                    },
                )

    transaction.on_commit(run)
