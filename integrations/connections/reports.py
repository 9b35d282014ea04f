"""What the services do when the front door reports something (integrations.registry.xero_report): queue the work
through the gateway. Registered from IntegrationsConfig.ready()."""

import logging

from coordinoter import queue
from integrations.registry import XeroReport

logger = logging.getLogger(__name__)


def on_xero_report(report: XeroReport, connection_id: int) -> None:
    from integrations.tasks import xero_admins_notify_task, xero_connection_verify_task

    if report == XeroReport.TENANT_FORBIDDEN:
        # Reported at once, not on commit: the caller's transaction is likely to roll back on this very error, and
        # the check only reads the already committed connection row.
        try:
            queue.enqueue(xero_connection_verify_task, args=(connection_id,))
        except Exception:  # noqa: BLE001 - a broker outage must not hide the 403; the daily check still runs
            logger.exception(
                "xero.connection.check_not_queued",
                extra={"event": "xero.connection.check_not_queued", "connection_id": connection_id},
            )
    elif report == XeroReport.GRANT_DEAD:
        queue.enqueue(xero_admins_notify_task, args=(connection_id, "needs_reconnect"))
