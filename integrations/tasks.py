"""Thin tasks: load by id, call one service. Running any of them twice is harmless."""

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from coordinoter import queue
from integrations import selectors, services
from integrations.connections.choose import xero_pending_choice_expire
from integrations.connections.connect import xero_oauth_states_purge
from integrations.usage.record import xero_usage_prune


@shared_task(name="integrations.xero_keepalive_fanout", ignore_result=True)
def xero_keepalive_fanout_task(after_id: int = 0, window_start: int | None = None) -> int:
    """Every XERO_KEEPALIVE_WINDOW_SECONDS (beat): one keep-alive for each connection whose daily time falls in this
    window, each at its own second (selectors.keepalive_offset_seconds), one page of ids at a time; a full page
    queues the next page instead of enqueueing thousands at once."""
    window = settings.XERO_KEEPALIVE_WINDOW_SECONDS
    if window_start is None:
        now = timezone.now()
        second_of_day = int((now - now.replace(hour=0, minute=0, second=0, microsecond=0)).total_seconds())
        window_start = second_of_day - second_of_day % window
    page_size = settings.XERO_KEEPALIVE_PAGE_SIZE
    due = selectors.connection_ids_due_keepalive(
        window_start=window_start, window_seconds=window, after_id=after_id, limit=page_size
    )
    for item in due:
        queue.enqueue(xero_connection_keepalive_task, args=(item.connection_id,), countdown=item.countdown)
    if len(due) == page_size:
        queue.enqueue(xero_keepalive_fanout_task, args=(due[-1].connection_id, window_start))
    return len(due)


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
        xero_pending_choice_expire(pending_id=pending_id)
    deleted = xero_oauth_states_purge()
    return {
        "disconnects": len(disconnecting),
        "choices_expired": len(expired),
        "states_deleted": deleted,
        "usage_minutes_deleted": xero_usage_prune(),
    }
