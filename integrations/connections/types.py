"""Small values the connection package shares with views and selectors."""

from dataclasses import dataclass

# The outbound kinds of the disconnect steps (integrations/connections/disconnect.py registers them).
DISCONNECT_DELETE_CONNECTION = "disconnect_delete_connection"
DISCONNECT_REVOKE_TOKEN = "disconnect_revoke_token"
DISCONNECT_KINDS = (DISCONNECT_DELETE_CONNECTION, DISCONNECT_REVOKE_TOKEN)


@dataclass(frozen=True)
class ActionResult:
    ok: bool
    message: str
