"""The limiter's vocabulary: priority classes, limits, tickets and the refusal it raises. Touches no model."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from integrations.xero.exceptions import XeroRateLimited


class RateLimitWait(XeroRateLimited):
    """Refused before calling Xero: try again in `seconds` (a float; `retry_after` is the same, rounded up)."""

    def __init__(self, seconds: float, *, problem: str) -> None:
        self.seconds = max(0.0, float(seconds))
        super().__init__(
            f"Xero rate limit reached ({problem}): wait {self.seconds:.3f}s.",
            retry_after=math.ceil(self.seconds),
            problem=problem,
            status=None,
        )


class Priority(StrEnum):
    """Who is waiting for a call, highest first. The caller says it (XeroClient(priority=...))."""

    CUSTOMER = "customer"
    WEBHOOK = "webhook"
    RECONCILE = "reconcile"
    HEALTH = "health"


BACKGROUND = (Priority.WEBHOOK, Priority.RECONCILE, Priority.HEALTH)
# The part of the background cap each background class may fill (see the module's docstring).
BACKGROUND_LEVELS = {Priority.WEBHOOK: 1.0, Priority.RECONCILE: 0.9, Priority.HEALTH: 0.8}
# The background classes that wait while their tenant's customers are calling (the volume: a push's webhook echoes,
# the poll). A health check is one call a day, or the check that a customer call's 403 asks for: it does not wait.
QUIET_AFTER_CUSTOMERS = (Priority.WEBHOOK, Priority.RECONCILE)


@dataclass(frozen=True)
class RateLimits:
    concurrent: int = 5
    minute: int = 60
    day: int = 5000
    app_minute: int = 10000


@dataclass(frozen=True)
class Ticket:
    tenant_id: str
    id: str
    priority: Priority = Priority.CUSTOMER
