"""Small values the connection package shares with views and selectors."""

import uuid
from dataclasses import dataclass
from typing import Literal

# The outbound kinds of the disconnect steps (integrations/connections/disconnect.py registers them).
DISCONNECT_DELETE_CONNECTION = "disconnect_delete_connection"
DISCONNECT_REVOKE_TOKEN = "disconnect_revoke_token"
DISCONNECT_KINDS = (DISCONNECT_DELETE_CONNECTION, DISCONNECT_REVOKE_TOKEN)


@dataclass(frozen=True)
class ActionResult:
    ok: bool
    message: str


START_AGAIN = "Nothing was connected. Click Connect to Xero to start again."


@dataclass(frozen=True)
class ConnectOutcome:
    kind: Literal["connected", "choose", "cancelled", "refused", "failed", "invalid"]
    message: str
    pending_id: uuid.UUID | None = None


class ConnectBlocked(Exception):
    """The connection cannot start a new authorisation yet (a disconnect is still finishing)."""
