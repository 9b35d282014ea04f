"""Xero's API limits, enforced before we call, in Redis shared by every worker. Touches no model.

Always on: without REDIS_URL (`make run`) the very same scripts run on an in-process Redis (fakeredis with Lua, one
server per process), so the embedded demo keeps the same limits and makes the same decisions as production.

Per tenant 5 calls in flight, 60 a minute and 5,000 a day; per app 10,000 a minute
(https://developer.xero.com/documentation/guides/oauth2/limits/). Every check and every count happens in one
Lua script, so two workers can never both take the last call of a window.

- Concurrency: a sorted set of tickets scored by their expiry. A worker killed mid-call never releases its
  ticket; the ticket expires after `slot_ttl_seconds` and the slot frees itself.
- Minute (tenant and app): Xero's windows are fixed but start at a moment we cannot observe (each tenant's
  resets at a different time, and calls made outside this limiter move it). A log of call times over one window
  plus `guard_seconds` keeps every fixed window, wherever it starts, at or under the limit, as long as the
  time from our count to Xero's count varies by less than the guard; at the ceiling it costs guard/window of
  throughput (1 s of 60 by default). Older Xero pages call the windows rolling: the log satisfies both.
- Day: a fixed window per tenant that starts with its first call, like Xero's. A 429 with
  X-Rate-Limit-Problem: day realigns it to Xero's: nothing goes until Retry-After, then a fresh window starts.
- Xero's X-MinLimit-Remaining / X-AppMinLimit-Remaining / X-DayLimit-Remaining correct the counts upwards
  (calls made by something else count too); a 429's Retry-After blocks the tenant (or the app) that long.

Priority classes (issue 15). Every call names its class: `customer` (pushes, edits, voids, credit notes, contact
creates, a person's page reading the chart: anything a customer is waiting for), then the background classes
`webhook` (fetching what a webhook named), `reconcile` (the poll for what webhooks missed) and `health` (keep-alive
and connection checks). Background calls share a capped part of the app minute (`background_share`, 20% by
default): they are admitted only while
- the app's background calls in the window are under the class's part of that cap (webhook fetches may fill all
  of it, reconciliation 90%, health checks 80%, so the last tenth is kept for webhook fetches and the tenth before
  it for reconciliation), and
- the app's calls of every class are under (1 - share) of the app minute: once customer calls have taken the app
  minute that far, background waits and the rest of the minute is the customers' alone, and
- the tenant's own minute is under (1 - share) of its 60 and it has a free slot besides one kept for customers:
  a tenant pushing at its ceiling is never slowed by its own background work.
So customer calls are never refused because of background work beyond the cap, and with the app minute short it
is background that waits. The same single script decides, so the classes cannot race each other.

The limiter never sleeps: a refusal raises RateLimitWait with the seconds to wait, and the caller reschedules.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Any

from integrations.xero.exceptions import XeroRateLimited

logger = logging.getLogger(__name__)


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


# KEYS: 1 slots, 2 tenant minute log, 3 app minute log, 4 day window, 5 tenant block, 6 app block, 7 waiters,
#       8 this class's app log (counted for /metrics; background calls only), 9 the app's background log
# ARGV: 1 ticket, 2 concurrent, 3 minute, 4 app minute, 5 day, 6 minute window ms (with guard), 7 day ms,
#       8 slot ttl ms, 9 longest wait for a slot ms, 10 waiter name ('' for none),
#       11 background: 1 or 0, 12 background calls this class may reach in the window, 13 app calls (all classes)
#       under which background may go, 14 tenant calls under which background may go, 15 tenant slots background
#       may fill
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local wait, problem = 0, ''
local function need(ms, why)
  if ms > wait then wait = ms; problem = why end
end
local tb = redis.call('PTTL', KEYS[5])
if tb > 0 then need(tb, redis.call('GET', KEYS[5]) or 'blocked') end
local ab = redis.call('PTTL', KEYS[6])
if ab > 0 then need(ab, 'appminute') end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  need(math.max(1, math.min(tonumber(first[2]) - now, tonumber(ARGV[9]))), 'concurrent')
end
local win = tonumber(ARGV[6])
-- Callers that wait for the minute window (ARGV[10] names one) queue in KEYS[7]: the k-th waiter is told to
-- come back when the k-th slot frees, not all of them at the first one.
local me = ARGV[10]
redis.call('ZREMRANGEBYSCORE', KEYS[7], '-inf', now - win)
local ahead = 0
if me ~= '' then
  local mine = redis.call('ZSCORE', KEYS[7], me)
  redis.call('ZREM', KEYS[7], me)
  if mine then
    ahead = redis.call('ZCOUNT', KEYS[7], now, '(' .. mine)  -- keep its place: only those due before it
  else
    ahead = redis.call('ZCOUNT', KEYS[7], now, '+inf')
  end
end
local function log_check(key, limit, why, queue)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - win)
  local n = redis.call('ZCARD', key)
  if n >= limit then
    local index = n - limit
    if queue then index = math.min(n - 1, index + ahead) end
    local e = redis.call('ZRANGE', key, index, index, 'WITHSCORES')
    need(math.max(1, tonumber(e[2]) + win - now), why)
  end
end
log_check(KEYS[2], tonumber(ARGV[3]), 'minute', true)
log_check(KEYS[3], tonumber(ARGV[4]), 'appminute', false)
local background = tonumber(ARGV[11]) == 1
if background then
  -- Background waits for: its class's part of the cap (all background calls together, KEYS[9]), the app's calls
  -- of every class reaching (1 - share) of the app minute, and its tenant's minute or slots nearing what customers
  -- need. Each wait is until the call that must leave the window has left it.
  local function under(key, limit)
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now - win)
    local c = redis.call('ZCARD', key)
    if c >= limit then
      local e = redis.call('ZRANGE', key, c - limit, c - limit, 'WITHSCORES')
      need(math.max(1, tonumber(e[2] or now) + win - now), 'background')
    end
  end
  under(KEYS[9], tonumber(ARGV[12]))
  under(KEYS[3], tonumber(ARGV[13]))
  under(KEYS[2], tonumber(ARGV[14]))
  if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[15]) then
    local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    need(math.max(1, math.min(tonumber(first[2]) - now, tonumber(ARGV[9]))), 'background')
  end
end
local day = tonumber(ARGV[7])
local start = tonumber(redis.call('HGET', KEYS[4], 'start') or '-1')
local used = tonumber(redis.call('HGET', KEYS[4], 'used') or '0')
if start < 0 then
  start = now; used = 0
elseif now >= start + day then
  start = start + math.floor((now - start) / day) * day; used = 0
end
if now < start then
  need(start - now, 'day')
elseif used >= tonumber(ARGV[5]) then
  need(start + day - now, 'day')
end
if wait > 0 then
  if me ~= '' and problem == 'minute' then
    redis.call('ZADD', KEYS[7], now + wait, me)
    redis.call('PEXPIRE', KEYS[7], win * 2)
  end
  return {0, wait, problem}
end
if me ~= '' then redis.call('ZREM', KEYS[7], me) end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[8]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[8]) * 2)
redis.call('ZADD', KEYS[2], now, ARGV[1])
redis.call('PEXPIRE', KEYS[2], win * 2)
redis.call('ZADD', KEYS[3], now, ARGV[1])
redis.call('PEXPIRE', KEYS[3], win * 2)
if background then
  redis.call('ZREMRANGEBYSCORE', KEYS[8], '-inf', now - win)
  redis.call('ZADD', KEYS[8], now, ARGV[1])
  redis.call('PEXPIRE', KEYS[8], win * 2)
  redis.call('ZADD', KEYS[9], now, ARGV[1])
  redis.call('PEXPIRE', KEYS[9], win * 2)
end
redis.call('HSET', KEYS[4], 'start', start, 'used', used + 1)
redis.call('PEXPIRE', KEYS[4], day * 2)
return {1, 0, ''}
"""

# KEYS: 1 slots, 2 tenant minute log, 3 app minute log, 4 day window, 5 the call's class log, 6 background log
# ARGV: 1 ticket
_REFUND = """
redis.call('ZREM', KEYS[1], ARGV[1])
local counted = redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[1])
redis.call('ZREM', KEYS[6], ARGV[1])
if counted == 1 and tonumber(redis.call('HGET', KEYS[4], 'used') or '0') > 0 then
  redis.call('HINCRBY', KEYS[4], 'used', -1)
end
return counted
"""

# KEYS: 1 tenant minute log, 2 app minute log, 3 day window, 4 tenant block, 5 app block
# ARGV: 1 minute remaining, 2 app minute remaining, 3 day remaining (-1: header absent), 4 minute, 5 app minute,
#       6 day, 7 minute window ms, 8 call duration ms, 9 status, 10 problem, 11 retry-after ms (-1: absent),
#       12 unique id, 13 day ms
_OBSERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local at = now - tonumber(ARGV[8])
local win = tonumber(ARGV[7])
local added = 0
local function correct(key, remaining, limit, tag)
  if remaining < 0 then return end
  local xero_used = limit - remaining
  local ours = redis.call('ZCOUNT', key, at - win, '+inf')
  for i = 1, xero_used - ours do
    redis.call('ZADD', key, at, 'x:' .. ARGV[12] .. ':' .. tag .. i)
    added = added + 1
  end
  redis.call('PEXPIRE', key, win * 2)
end
correct(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[4]), 't')
correct(KEYS[2], tonumber(ARGV[2]), tonumber(ARGV[5]), 'a')
local day_remaining = tonumber(ARGV[3])
if day_remaining >= 0 and redis.call('EXISTS', KEYS[3]) == 1 then
  local xero_used = tonumber(ARGV[6]) - day_remaining
  if xero_used > tonumber(redis.call('HGET', KEYS[3], 'used') or '0') then
    redis.call('HSET', KEYS[3], 'used', xero_used)
  end
end
if tonumber(ARGV[9]) == 429 then
  local problem = ARGV[10]
  local ra = tonumber(ARGV[11])
  if problem ~= 'concurrent' and ra > 0 then
    if problem == 'appminute' then
      redis.call('SET', KEYS[5], 'appminute', 'PX', ra)
    else
      if problem == '' then problem = 'blocked' end
      redis.call('SET', KEYS[4], problem, 'PX', ra)
      if problem == 'day' then
        redis.call('HSET', KEYS[3], 'start', now + ra, 'used', 0)
        redis.call('PEXPIRE', KEYS[3], tonumber(ARGV[13]) * 2 + ra)
      end
    end
  end
end
return added
"""


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
        self._acquire = redis.register_script(_ACQUIRE)
        self._observe = redis.register_script(_OBSERVE)
        self._refund = redis.register_script(_REFUND)

    # ------------------------------------------------------------ keys
    def _tenant_keys(self, tenant_id: str) -> dict[str, str]:
        base = f"{self.prefix}:t:{tenant_id}"
        return {
            "slots": f"{base}:slots",
            "minute": f"{base}:min",
            "day": f"{base}:day",
            "block": f"{base}:block",
            "waiters": f"{base}:waiters",
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

        waiter: a stable name for a caller that will come back (e.g. "chunk:42"); waiting callers are queued so
        each is told a different moment, instead of all waking for the same freed slot.
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


@cache
def in_process_redis_server() -> Any:
    """Without Redis: one in-process Redis server per process, shared by every thread. fakeredis runs the same Lua
    scripts (through lupa) and executes each command under the server's lock, so a script stays atomic."""
    import fakeredis

    return fakeredis.FakeServer()


@cache
def rate_limiter() -> XeroRateLimiter:
    """The process's limiter, configured from settings: Redis shared by every process, or without REDIS_URL the
    in-process Redis (the embedded `make run` has one process)."""
    from django.conf import settings

    if settings.REDIS_URL:
        import redis

        client = redis.Redis.from_url(settings.REDIS_URL)
    else:
        import fakeredis

        client = fakeredis.FakeRedis(server=in_process_redis_server())
    return XeroRateLimiter(
        client,
        limits=RateLimits(**settings.XERO_RATE_LIMITS),
        minute_seconds=settings.XERO_RATE_MINUTE_SECONDS,
        day_seconds=settings.XERO_RATE_DAY_SECONDS,
        guard_seconds=settings.XERO_RATE_GUARD_SECONDS,
        slot_ttl_seconds=settings.XERO_RATE_SLOT_TTL_SECONDS,
        prefix=settings.XERO_RATE_LIMIT_PREFIX,
        background_share=settings.XERO_BACKGROUND_SHARE,
    )


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
