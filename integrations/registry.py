"""Small registries that keep dependencies pointing one way, filled from AppConfig.ready().

Connection events, for higher apps (invoices -> integrations). Listeners run after the transaction that changed the
connection commits:

    from integrations.registry import register_connection_listener
    register_connection_listener(lambda organisation_id, event: ...)   # in InvoicesConfig.ready()

Events: "connected", "reconnected", "tenant_switched", "needs_reconnect", "revoked_in_xero", "disconnected".

Reports from the front door (integrations/xero/), which never imports tasks nor enqueues: it reports what it saw
(`xero_report`) and the services registered from IntegrationsConfig.ready() act on it, enqueueing through
coordinoter/queue.py (integrations/connections/reports.py).
"""

import enum
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


# ---------------------------------------------------------------- reports from the front door


class XeroReport(enum.StrEnum):
    TENANT_FORBIDDEN = "tenant_forbidden"  # 403 AuthenticationUnsuccessful: is the tenant still in /connections?
    GRANT_DEAD = "grant_dead"  # invalid_grant: the connection now needs a reconnect; tell the admins


ReportListener = Callable[[XeroReport, int], None]
_report_listeners: list[ReportListener] = []


def register_report_listener(listener: ReportListener) -> None:
    if listener not in _report_listeners:
        _report_listeners.append(listener)


def xero_report(report: XeroReport, *, connection_id: int, at_once: bool = False) -> None:
    """Tell the listeners what the front door saw about a connection: once the current transaction commits, or at
    once when the report must outlive a rollback of the caller's transaction. A failing listener never breaks the
    call that reported."""

    def run() -> None:
        for listener in list(_report_listeners):
            try:
                listener(report, connection_id)
            except Exception:  # noqa: BLE001 - e.g. a broker outage: the daily check still runs
                logger.exception(
                    "integrations.report_listener_failed",
                    extra={
                        "event": "integrations.report_listener_failed",
                        "report": str(report),
                        "connection_id": connection_id,
                    },
                )

    if at_once:
        run()
    else:
        transaction.on_commit(run)
