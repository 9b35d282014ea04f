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
class Unusable:
    """Why no call can go through the organisation's connection now: `moved`, it is bound to another Xero
    organisation (the operation can never go where it may have gone)."""

    message: str
    moved: bool = False


@dataclass(frozen=True)
class Call:
    """The call a claim is making, for a kind that records it itself."""

    action: str  # send | lookup
    started_at: Any
    worker: str
    connection: Any = None  # the XeroConnection row the call went through (read for it a moment ago)


@dataclass(frozen=True)
class ElementWise:
    """How a kind that Xero answers element by element (the push's chunks of up to 50 invoices) records its calls,
    each under the operation's lock: `answered(operation, call, response)` every element of the answer (or of the
    lookup's finds), `failed(operation, call, duration_ms, exc)` a call that brought no answer to record element by
    element. Each writes the OutboundAttempt and moves the operation through integrations/outbound/states.py, and
    returns what the run returns."""

    answered: Callable[[OutboundOperation, Call, XeroResponse], Any]
    failed: Callable[[OutboundOperation, Call, int, Exception], Any]


@dataclass(frozen=True)
class Kind:
    name: str
    send: Callable[[XeroClient, OutboundOperation], XeroResponse] | None = None
    confirm: Callable[[OutboundOperation, XeroResponse], Confirmation] | None = None
    look_up: Callable[[XeroClient, OutboundOperation], Lookup | XeroResponse] | None = None
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
    # Instead of confirm and finish: a kind whose answer is recorded element by element (the push's chunks). Its
    # `send` and `look_up` return Xero's response, which `element_wise` records.
    element_wise: ElementWise | None = None
    # Optional: no call can go through the connection (`Unusable`): the kind ends or parks the operation itself, under
    # the lease the claim took without counting a call (the push gives a chunk's invoices back when nothing of it can
    # be in Xero). Without it, a connection needing a reconnect is waited for and any other unusable one is attention.
    unusable: Callable[[OutboundOperation, str, Unusable], Any] | None = None
    # Optional: after a call, is anything left to write? (False: a worker died after recording; the claim ends it.)
    has_work: Callable[[OutboundOperation], bool] | None = None
    lease_seconds: Callable[[], float] | None = None  # how long a claim holds it (None: OUTBOUND_LEASE_SECONDS)
    # Take the rate limiter's slot before the claim, so an operation that must wait is not claimed (the push's chunks,
    # which keep a tenant's calls at its limit).
    limiter_first: bool = False
    # False: the kind has its own sweep on its own queue (the push's chunks), and the engine's leaves it alone.
    swept_by_engine: bool = True
    # Optional: queue a run of the operation (by id, on commit) on the kind's own queue instead of the engine's.
    enqueue: Callable[[int], None] | None = None
    # Optional: the claim ended an operation done without a call (has_work said nothing is left): told the
    # organisation's id (the push queues the tenant's dispatcher for the slot the chunk frees).
    ended: Callable[[int], None] | None = None

    def __post_init__(self) -> None:
        ends = (self.confirm, self.finish) if self.element_wise is None else ()
        if None in (self.send, self.look_up, *ends):
            raise TypeError(f"Outbound kind {self.name!r} needs send, look_up, and confirm and finish or element_wise.")


_KINDS: dict[str, Kind] = {}


def register_kind(kind: Kind) -> None:
    _KINDS[kind.name] = kind


def kinds_with_own_sweep() -> list[str]:
    return [kind.name for kind in _KINDS.values() if not kind.swept_by_engine]


def kind_for(name: str) -> Kind:
    try:
        return _KINDS[name]
    except KeyError:
        raise LookupError(f"No outbound kind {name!r} is registered.") from None
