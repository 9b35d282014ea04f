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
- the tenant's own minute is under (1 - share) of its 60 and it has a free slot besides one kept for customers, and
- none of the tenant's customer calls was asked for in the last `customer_quiet_seconds` (5 s): while a tenant
  pushes, its whole minute is the push's, and its webhook fetches (mostly the push's own echoes) and checks come
  after it. A tenant pushing at its ceiling is never slowed by its own background work.
So customer calls are never refused because of background work beyond the cap, and with the app minute short it
is background that waits. The same single script decides, so the classes cannot race each other.

The limiter never sleeps: a refusal raises RateLimitWait with the seconds to wait, and the caller reschedules.
"""

from integrations.xero.ratelimit.factory import in_process_redis_server, rate_limiter
from integrations.xero.ratelimit.limiter import XeroRateLimiter
from integrations.xero.ratelimit.types import (
    BACKGROUND,
    BACKGROUND_LEVELS,
    Priority,
    RateLimits,
    RateLimitWait,
    Ticket,
)

__all__ = [
    "BACKGROUND",
    "BACKGROUND_LEVELS",
    "Priority",
    "RateLimitWait",
    "RateLimits",
    "Ticket",
    "XeroRateLimiter",
    "in_process_redis_server",
    "rate_limiter",
]
