"""The process's limiter, built once from settings, and the in-process Redis it uses without REDIS_URL."""

from __future__ import annotations

from functools import cache
from typing import Any

from integrations.xero.ratelimit.limiter import XeroRateLimiter
from integrations.xero.ratelimit.types import RateLimits


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
        customer_quiet_seconds=settings.XERO_CUSTOMER_QUIET_SECONDS,
    )
