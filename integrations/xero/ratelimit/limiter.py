"""XeroRateLimiter: the hook handed to integrations.xero.client (acquire / release / observe), backed by Redis,
and its readings for tests, benchmarks, /metrics and the support console. Touches no model."""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Mapping
from typing import Any

from integrations.xero.ratelimit.scripts import ACQUIRE, OBSERVE, REFUND
from integrations.xero.ratelimit.types import (
    BACKGROUND,
    BACKGROUND_LEVELS,
    QUIET_AFTER_CUSTOMERS,
    Priority,
    RateLimits,
    RateLimitWait,
    Ticket,
)

logger = logging.getLogger(__name__)


class XeroRateLimiter:
    """The hook handed to integrations.xero.client (acquire / release / observe), backed by Redis."""

    def __init__(
        self,
        redis: Any,
        *,
        limits: RateLimits | None = None,
        minute_seconds: float = 60.0,
        day_seconds: float = 86400.0,
        guard_seconds: float = 1.0,
        slot_ttl_seconds: float = 60.0,
        prefix: str = "xero:rl",
        app_id: str = "app",
        background_share: float = 0.2,
        customer_quiet_seconds: float = 0.0,
    ) -> None:
        self.redis = redis
        self.limits = limits or RateLimits()
        self.minute_ms = int(minute_seconds * 1000)
        self.day_ms = int(day_seconds * 1000)
        self.guard_ms = int(guard_seconds * 1000)
        self.slot_ttl_ms = max(1, int(slot_ttl_seconds * 1000))
        # A refused slot is retried after at most 1/60 of the minute window: calls end within a few seconds.
        self.slot_wait_ms = max(1, self.minute_ms // 60)
        self.prefix = prefix
        self.app_id = app_id
        self.background_share = min(1.0, max(0.0, float(background_share)))
        # A tenant's background calls wait until this long after its last customer call (asked for, made or not).
        self.customer_quiet_ms = max(0, int(customer_quiet_seconds * 1000))
        self._acquire = redis.register_script(ACQUIRE)
        self._observe = redis.register_script(OBSERVE)
        self._refund = redis.register_script(REFUND)

    # ------------------------------------------------------------ keys
    def _tenant_keys(self, tenant_id: str) -> dict[str, str]:
        base = f"{self.prefix}:t:{tenant_id}"
        return {
            "slots": f"{base}:slots",
            "minute": f"{base}:min",
            "day": f"{base}:day",
            "block": f"{base}:block",
            "waiters": f"{base}:waiters",
            "active": f"{base}:active",
        }

    def _app_keys(self) -> dict[str, str]:
        base = f"{self.prefix}:a:{self.app_id}"
        keys = {"minute": f"{base}:min", "block": f"{base}:block", "background": f"{base}:bg"}
        keys.update({str(p): f"{base}:min:{p}" for p in BACKGROUND})
        return keys

    def background_limits(self, priority: Priority) -> tuple[int, int, int, int]:
        """For a background class: the background calls it may reach in the window, the app's calls (all classes)
        and the tenant's calls under which it may go, and the tenant's slots it may fill."""
        share, limits = self.background_share, self.limits
        cap = math.floor(limits.app_minute * share * BACKGROUND_LEVELS[priority])
        return (
            cap,
            limits.app_minute - math.floor(limits.app_minute * share),
            limits.minute - math.floor(limits.minute * share),
            max(1, limits.concurrent - 1),
        )

    # ------------------------------------------------------------ the hook
    def acquire(self, *, tenant_id: str, waiter: str = "", priority: Priority | str = Priority.CUSTOMER) -> Ticket:
        """Take a slot and count the call, or raise RateLimitWait naming the wait. Never blocks.

        waiter: a stable name for a caller that will come back (engine.waiter_name: "operation:<its key>"); waiting
        callers are queued so each is told a different moment, instead of all waking for the same freed slot.
        priority: the call's class; a background class waits (problem "background") where a customer call would not.
        """
        priority = Priority(priority)
        t, a = self._tenant_keys(tenant_id), self._app_keys()
        ticket = Ticket(tenant_id=tenant_id, id=uuid.uuid4().hex, priority=priority)
        background = priority in BACKGROUND
        cap, app_under, tenant_under, slots = self.background_limits(priority) if background else (0, 0, 0, 0)
        ok, wait_ms, problem = self._acquire(
            keys=[
                t["slots"],
                t["minute"],
                a["minute"],
                t["day"],
                t["block"],
                a["block"],
                t["waiters"],
                a.get(str(priority), a["background"]),
                a["background"],
                t["active"],
            ],
            args=[
                ticket.id,
                self.limits.concurrent,
                self.limits.minute,
                self.limits.app_minute,
                self.limits.day,
                self.minute_ms + self.guard_ms,
                self.day_ms,
                self.slot_ttl_ms,
                self.slot_wait_ms,
                waiter,
                int(background),
                cap,
                app_under,
                tenant_under,
                slots,
                self.customer_quiet_ms if priority in QUIET_AFTER_CUSTOMERS or not background else 0,
            ],
        )
        if not ok:
            problem = problem.decode() if isinstance(problem, bytes) else str(problem)
            raise RateLimitWait(int(wait_ms) / 1000.0, problem=problem)
        return ticket

    def refund(self, *, tenant_id: str, ticket: Ticket | None) -> None:
        """Undo an acquire whose call was never made: free the slot and uncount the call."""
        if ticket is not None:
            t, a = self._tenant_keys(tenant_id), self._app_keys()
            self._refund(
                keys=[
                    t["slots"],
                    t["minute"],
                    a["minute"],
                    t["day"],
                    a.get(str(ticket.priority), a["background"]),
                    a["background"],
                ],
                args=[ticket.id],
            )

    def leave(self, *, tenant_id: str, waiter: str) -> None:
        """A waiter that will not come back (acquire named it) gives its place in the queue back."""
        self.redis.zrem(self._tenant_keys(tenant_id)["waiters"], waiter)

    def release(self, *, tenant_id: str, ticket: Ticket | None) -> None:
        if ticket is not None:
            self.redis.zrem(self._tenant_keys(tenant_id)["slots"], ticket.id)

    def observe(self, *, tenant_id: str, response: Any) -> None:
        """Correct the counts from Xero's remaining-quota headers; on a 429 obey Retry-After."""
        headers = _CaseInsensitive(getattr(response, "headers", {}) or {})
        status = int(getattr(response, "status", 0) or 0)
        retry_after = _seconds(headers.get("Retry-After"))
        problem = (headers.get("X-Rate-Limit-Problem") or "").strip().lower()
        t, a = self._tenant_keys(tenant_id), self._app_keys()
        added = self._observe(
            keys=[t["minute"], a["minute"], t["day"], t["block"], a["block"]],
            args=[
                _remaining(headers.get("X-MinLimit-Remaining")),
                _remaining(headers.get("X-AppMinLimit-Remaining")),
                _remaining(headers.get("X-DayLimit-Remaining")),
                self.limits.minute,
                self.limits.app_minute,
                self.limits.day,
                self.minute_ms + self.guard_ms,
                int(getattr(response, "duration_ms", 0) or 0),
                status,
                problem,
                -1 if retry_after is None else max(1, int(retry_after * 1000)),
                uuid.uuid4().hex,
                self.day_ms,
            ],
        )
        if status == 429:
            logger.warning(
                "xero.ratelimit.hit",
                extra={
                    "event": "xero.ratelimit.hit",
                    "tenant_id": tenant_id,
                    "problem": problem,
                    "retry_after": retry_after,
                },
            )
        elif added:
            logger.info(
                "xero.ratelimit.corrected",
                extra={"event": "xero.ratelimit.corrected", "tenant_id": tenant_id, "added": added},
            )

    # ------------------------------------------------------------ reading (tests, benchmarks, support)
    def snapshot(self, *, tenant_id: str) -> dict[str, Any]:
        t, a = self._tenant_keys(tenant_id), self._app_keys()
        seconds, micros = self.redis.time()
        now = seconds * 1000 + micros // 1000
        window = self.minute_ms + self.guard_ms
        day = self.redis.hgetall(t["day"])
        return {
            "in_flight": self.redis.zcount(t["slots"], now, "+inf"),
            "minute_used": self.redis.zcount(t["minute"], now - window, "+inf"),
            "app_minute_used": self.redis.zcount(a["minute"], now - window, "+inf"),
            "day_used": int(day.get(b"used", 0)),
            "blocked_ms": max(0, self.redis.pttl(t["block"])),
        }

    def snapshots(self, *, tenant_ids: list[str]) -> dict[str, dict[str, int]]:
        """The live figures of many tenants in one round trip (/metrics): calls in flight, calls counted in the
        current minute window and day window, and how long the tenant is blocked by a 429 (ms)."""
        seconds, micros = self.redis.time()
        now = seconds * 1000 + micros // 1000
        window = self.minute_ms + self.guard_ms
        pipe = self.redis.pipeline(transaction=False)
        for tenant_id in tenant_ids:
            t = self._tenant_keys(tenant_id)
            pipe.zcount(t["slots"], now, "+inf")
            pipe.zcount(t["minute"], now - window, "+inf")
            pipe.hget(t["day"], "used")
            pipe.pttl(t["block"])
        values = pipe.execute()
        out = {}
        for i, tenant_id in enumerate(tenant_ids):
            in_flight, minute_used, day_used, blocked = values[4 * i : 4 * i + 4]
            out[tenant_id] = {
                "in_flight": int(in_flight),
                "minute_used": int(minute_used),
                "day_used": int(day_used or 0),
                "blocked_ms": max(0, int(blocked)),
            }
        return out

    def app_usage(self) -> dict[str, int]:
        """The app's calls in the current minute window by class (/metrics, the support console), in one round trip:
        {"customer": n, "webhook": n, "reconcile": n, "health": n}; customer = all calls less background ones."""
        seconds, micros = self.redis.time()
        now = seconds * 1000 + micros // 1000
        since = now - (self.minute_ms + self.guard_ms)
        a = self._app_keys()
        pipe = self.redis.pipeline(transaction=False)
        pipe.zcount(a["minute"], since, "+inf")
        for priority in BACKGROUND:
            pipe.zcount(a[str(priority)], since, "+inf")
        total, *background = (int(v) for v in pipe.execute())
        out = {str(p): n for p, n in zip(BACKGROUND, background, strict=True)}
        out[str(Priority.CUSTOMER)] = max(0, total - sum(background))
        return out

    def reset(self, *, tenant_id: str | None = None) -> None:
        keys = list(self._app_keys().values())
        if tenant_id:
            keys += list(self._tenant_keys(tenant_id).values())
        self.redis.delete(*keys)


class _CaseInsensitive:
    def __init__(self, headers: Mapping[str, str]) -> None:
        self._h = {str(k).lower(): v for k, v in headers.items()}

    def get(self, name: str) -> str | None:
        return self._h.get(name.lower())


def _remaining(raw: str | None) -> int:
    try:
        return max(0, int(raw)) if raw is not None else -1
    except ValueError:
        return -1


def _seconds(raw: str | None) -> float | None:
    # Retry-After is whole seconds from Xero; anything else (an HTTP date) is treated as absent.
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None
