"""What each kind of write supplies to the engine: build and send the request, confirm Xero's answer against what
was sent, look the result up, and apply the outcome to its own records. Higher apps register their kinds from
AppConfig.ready(), so integrations never imports them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from integrations.outbound.models import OutboundOperation
    from integrations.xero.client import XeroClient
    from integrations.xero.types import XeroResponse


@dataclass(frozen=True)
class Confirmed:
    """Xero holds what we asked for; `result` is Xero's copy (an element of its answer)."""

    result: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Absent:
    """A lookup proved Xero does not hold it: sending (again) is safe."""


@dataclass(frozen=True)
class Unconfirmed:
    """Xero answered, but not with what was sent (another id or number, another state): never assumed done."""

    reason: str
    answer: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Declined:
    """Xero said no (validation), or the kind's own check before sending found it must not go (a conflict)."""

    message: str
    result: dict[str, Any] = field(default_factory=dict)
    conflict: bool = False


Confirmation = Confirmed | Unconfirmed | Declined
Lookup = Confirmed | Absent | Unconfirmed
Check = Confirmed | Declined | None  # None: go ahead and send


@dataclass(frozen=True)
class Outcome:
    """How an operation ended, handed to the kind's `finish`."""

    state: str  # done | refused | needs_attention | waiting (pending, connection unusable)
    message: str = ""
    result: dict[str, Any] = field(default_factory=dict)
    conflict: bool = False
    correlation_id: str = ""


@dataclass(frozen=True)
class Kind:
    name: str
    send: Callable[[XeroClient, OutboundOperation], XeroResponse] | None = None
    confirm: Callable[[OutboundOperation, XeroResponse], Confirmation] | None = None
    look_up: Callable[[XeroClient, OutboundOperation], Lookup] | None = None
    finish: Callable[[OutboundOperation, Outcome], None] | None = None
    # Optional: a read before the first send (e.g. has the invoice changed in Xero since the person looked?).
    check: Callable[[XeroClient, OutboundOperation], Check] | None = None
    # False for a write made while the connection is not usable (a disconnect step: the status is already
    # disconnected). The engine then neither waits for nor refuses on the connection's state: the client it hands
    # to `send` is the organisation's connection row whatever its status, and the kind reads what it needs (the
    # stored tokens) through tokens.py. A dead grant ends such an operation as refused: there is nothing to wait for.
    requires_usable_connection: bool = True
    # Optional: a person sent an operation that needed attention again (engine.operation_retry), in the same
    # transaction: the kind's own record shows it on its way (e.g. a credit note reads "Sending" again).
    retried: Callable[[OutboundOperation, Any], None] | None = None
    # Instead of send/confirm/look_up/finish: a kind whose answer is recorded element by element (the push's chunks of
    # up to 50 invoices, invoices/services/push/send.py) makes its own call and record on the engine's rows, through
    # its claim (integrations/outbound/decide.claim), decision rule and state table. It has its own task and sweep
    # (on the push's queue); the engine's run hands such an operation to it.
    run: Callable[..., Any] | None = None

    def __post_init__(self) -> None:
        if self.run is None and None in (self.send, self.confirm, self.look_up, self.finish):
            raise TypeError(f"Outbound kind {self.name!r} needs send, confirm, look_up and finish, or run.")


_KINDS: dict[str, Kind] = {}


def register_kind(kind: Kind) -> None:
    _KINDS[kind.name] = kind


def own_runner_kinds() -> list[str]:
    """The kinds that run (and sweep) themselves."""
    return [kind.name for kind in _KINDS.values() if kind.run is not None]


def kind_for(name: str) -> Kind:
    try:
        return _KINDS[name]
    except KeyError:
        raise LookupError(f"No outbound kind {name!r} is registered.") from None
