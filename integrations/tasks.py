"""Thin tasks: load by id, call one service. Running any of them twice is harmless."""

from celery import shared_task

from coordinoter import queue
from integrations import selectors, services, usage


@shared_task(name="integrations.xero_keepalive_fanout", ignore_result=True)
def xero_keepalive_fanout_task() -> int:
    """Daily (beat): one keep-alive per active connection, spread over a few minutes."""
    ids = selectors.connection_ids_due_keepalive()
    for position, connection_id in enumerate(ids):
        queue.enqueue(xero_connection_keepalive_task, args=(connection_id,), countdown=position % 600)
    return len(ids)


@shared_task(name="integrations.xero_connection_keepalive", ignore_result=True)
def xero_connection_keepalive_task(connection_id: int) -> str:
    return services.xero_connection_keepalive(connection_id=connection_id)


@shared_task(name="integrations.xero_connection_verify", ignore_result=True)
def xero_connection_verify_task(connection_id: int) -> str:
    return services.xero_connection_verify(connection_id=connection_id)


@shared_task(name="integrations.xero_connection_disconnect", ignore_result=True)
def xero_connection_disconnect_task(connection_id: int) -> str:
    """Runs what is due of a pending disconnect (the steps' Xero calls are outbound operations the engine retries;
    kept for messages queued before it did)."""
    return services.xero_connection_disconnect_continue(connection_id=connection_id, background=True).disconnect_step


@shared_task(name="integrations.xero_admins_notify", ignore_result=True)
def xero_admins_notify_task(connection_id: int, event: str) -> int:
    return services.xero_admins_notify(connection_id=connection_id, event=event)


@shared_task(name="integrations.xero_housekeeping", ignore_result=True)
def xero_housekeeping_task() -> dict[str, int]:
    """Every 15 minutes (beat): finish pending disconnects, disconnect abandoned tenant choices in Xero, forget
    OAuth states a day after they expired, and Xero usage minutes after two days."""
    disconnecting = selectors.connection_ids_disconnecting()
    for connection_id in disconnecting:
        services.xero_connection_disconnect_continue(connection_id=connection_id, background=True)
    expired = selectors.pending_choice_ids_expired()
    for pending_id in expired:
        services.xero_pending_choice_expire(pending_id=pending_id)
    deleted = services.xero_oauth_states_purge()
    return {
        "disconnects": len(disconnecting),
        "choices_expired": len(expired),
        "states_deleted": deleted,
        "usage_minutes_deleted": usage.xero_usage_prune(),
    }
