"""Integrations services: typed, keyword-only `<entity>_<action>` functions (see docs/architecture.md)."""

# Connect, choose and disconnect live in integrations.connections; re-exported here for older callers.
from integrations.connections.choose import xero_pending_choice_expire, xero_tenant_choice_cancel, xero_tenant_choose
from integrations.connections.connect import xero_connect_callback, xero_connect_start, xero_oauth_states_purge
from integrations.connections.disconnect import xero_connection_disconnect, xero_connection_disconnect_continue
from integrations.connections.types import ActionResult, ConnectBlocked, ConnectOutcome
from integrations.services.connection import (
    xero_admins_notify,
    xero_connection_keepalive,
    xero_connection_mark_revoked_in_xero,
    xero_connection_refresh,
    xero_connection_request_reconnect,
    xero_connection_sync_recorded,
    xero_connection_verify,
    xero_connection_verify_soon,
)

__all__ = [
    "ActionResult",
    "ConnectBlocked",
    "ConnectOutcome",
    "xero_admins_notify",
    "xero_connect_callback",
    "xero_connect_start",
    "xero_connection_disconnect",
    "xero_connection_disconnect_continue",
    "xero_connection_keepalive",
    "xero_connection_mark_revoked_in_xero",
    "xero_connection_refresh",
    "xero_connection_request_reconnect",
    "xero_connection_sync_recorded",
    "xero_connection_verify",
    "xero_connection_verify_soon",
    "xero_oauth_states_purge",
    "xero_pending_choice_expire",
    "xero_tenant_choice_cancel",
    "xero_tenant_choose",
]
