"""The limiter against real Redis (a key prefix per test, removed afterwards; Redis is never mocked), and every test
again against the in-process Redis that `make run` uses without REDIS_URL: the same Lua scripts must make the same
decisions on both."""

import threading
import time
import uuid

import pytest
import redis
from django.conf import settings

from integrations.xero.ratelimit import RateLimits, RateLimitWait, XeroRateLimiter
from integrations.xero.types import XeroResponse

TENANT, OTHER = "11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222"


def runs_redis() -> redis.Redis:
    """The Redis database this test run owns (scripts/test.sh claims one per run), never a shared default."""
    assert settings.REDIS_URL, "run the tests through scripts/test.sh: it gives the run a Redis database of its own"
    return redis.Redis.from_url(settings.REDIS_URL)


@pytest.fixture(params=["redis", "in_process"])
def redis_client(request):
    if request.param == "in_process":
        import fakeredis

        client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    else:
        client = runs_redis()
    yield client
    client.close()


@pytest.fixture
def make_limiter(redis_client):
    prefixes = []

    def make(**kwargs):
        prefix = f"test:rl:{uuid.uuid4().hex}"
        prefixes.append(prefix)
        options = {
            "limits": RateLimits(concurrent=5, minute=60, day=5000, app_minute=10000),
            "minute_seconds": 60.0,
            "day_seconds": 86400.0,
            "guard_seconds": 0.0,
            "slot_ttl_seconds": 30.0,
        }
        options.update(kwargs)
        return XeroRateLimiter(redis_client, prefix=prefix, **options)

    yield make
    for prefix in prefixes:
        keys = list(redis_client.scan_iter(f"{prefix}:*"))
        if keys:
            redis_client.delete(*keys)


def response(status=200, duration_ms=5, **headers):
    return XeroResponse(
        status=status,
        body=None,
        headers={k.replace("_", "-"): str(v) for k, v in headers.items()},
        correlation_id="",
        duration_ms=duration_ms,
    )


def test_acquire_refuses_the_sixth_call_in_flight_when_five_are_running(make_limiter):
    limiter = make_limiter()
    tickets = [limiter.acquire(tenant_id=TENANT) for _ in range(5)]
    with pytest.raises(RateLimitWait) as refused:
        limiter.acquire(tenant_id=TENANT)
    assert refused.value.problem == "concurrent"
    assert 0 < refused.value.seconds <= 1.0
    limiter.acquire(tenant_id=OTHER)  # another tenant has its own five
    limiter.release(tenant_id=TENANT, ticket=tickets[0])
    limiter.acquire(tenant_id=TENANT)


def test_slot_of_a_killed_worker_frees_itself_when_its_ttl_passes(make_limiter):
    limiter = make_limiter(limits=RateLimits(concurrent=1), slot_ttl_seconds=0.2)
    limiter.acquire(tenant_id=TENANT)  # never released: the worker died
    with pytest.raises(RateLimitWait):
        limiter.acquire(tenant_id=TENANT)
    time.sleep(0.25)
    limiter.acquire(tenant_id=TENANT)


def test_minute_limit_refuses_with_the_wait_until_the_oldest_call_leaves_the_window(make_limiter):
    limiter = make_limiter(limits=RateLimits(minute=3), minute_seconds=0.5)
    for _ in range(3):
        limiter.release(tenant_id=TENANT, ticket=limiter.acquire(tenant_id=TENANT))
    started = time.monotonic()
    with pytest.raises(RateLimitWait) as refused:
        limiter.acquire(tenant_id=TENANT)
    assert time.monotonic() - started < 0.05  # it never sleeps
    assert refused.value.problem == "minute"
    assert 0.3 < refused.value.seconds <= 0.5
    time.sleep(refused.value.seconds + 0.02)
    limiter.acquire(tenant_id=TENANT)


def test_guard_widens_the_minute_window_when_set(make_limiter):
    limiter = make_limiter(limits=RateLimits(minute=1), minute_seconds=0.3, guard_seconds=0.2)
    limiter.release(tenant_id=TENANT, ticket=limiter.acquire(tenant_id=TENANT))
    with pytest.raises(RateLimitWait) as refused:
        limiter.acquire(tenant_id=TENANT)
    assert 0.4 < refused.value.seconds <= 0.5


def test_app_minute_limit_spans_tenants(make_limiter):
    limiter = make_limiter(limits=RateLimits(app_minute=2))
    limiter.acquire(tenant_id=TENANT)
    limiter.acquire(tenant_id=OTHER)
    with pytest.raises(RateLimitWait) as refused:
        limiter.acquire(tenant_id="33333333-3333-3333-3333-333333333333")
    assert refused.value.problem == "appminute"


def test_day_limit_is_a_fixed_window_from_the_first_call(make_limiter):
    limiter = make_limiter(limits=RateLimits(day=2, minute=100), day_seconds=0.6)
    limiter.release(tenant_id=TENANT, ticket=limiter.acquire(tenant_id=TENANT))
    time.sleep(0.3)
    limiter.release(tenant_id=TENANT, ticket=limiter.acquire(tenant_id=TENANT))
    with pytest.raises(RateLimitWait) as refused:
        limiter.acquire(tenant_id=TENANT)
    assert refused.value.problem == "day"
    assert refused.value.seconds <= 0.31  # the window started with the first call, not the second
    time.sleep(refused.value.seconds + 0.02)
    limiter.acquire(tenant_id=TENANT)


def test_refused_call_counts_nothing(make_limiter):
    limiter = make_limiter(limits=RateLimits(concurrent=1, minute=5))
    ticket = limiter.acquire(tenant_id=TENANT)
    for _ in range(3):
        with pytest.raises(RateLimitWait):
            limiter.acquire(tenant_id=TENANT)
    limiter.release(tenant_id=TENANT, ticket=ticket)
    assert limiter.snapshot(tenant_id=TENANT)["minute_used"] == 1


def test_remaining_headers_count_calls_made_elsewhere(make_limiter):
    limiter = make_limiter(limits=RateLimits(minute=10))
    ticket = limiter.acquire(tenant_id=TENANT)
    limiter.release(tenant_id=TENANT, ticket=ticket)
    # Xero has seen 8 calls this minute: 7 of them were not ours.
    limiter.observe(tenant_id=TENANT, response=response(X_MinLimit_Remaining=2, X_DayLimit_Remaining=4990))
    snapshot = limiter.snapshot(tenant_id=TENANT)
    assert snapshot["minute_used"] == 8
    assert snapshot["day_used"] == 10
    limiter.acquire(tenant_id=TENANT)
    limiter.acquire(tenant_id=TENANT)
    with pytest.raises(RateLimitWait):
        limiter.acquire(tenant_id=TENANT)


def test_remaining_headers_never_lower_the_count(make_limiter):
    limiter = make_limiter(limits=RateLimits(minute=10))
    for _ in range(3):
        limiter.release(tenant_id=TENANT, ticket=limiter.acquire(tenant_id=TENANT))
    limiter.observe(tenant_id=TENANT, response=response(X_MinLimit_Remaining=9))
    assert limiter.snapshot(tenant_id=TENANT)["minute_used"] == 3


def test_429_minute_blocks_the_tenant_for_retry_after(make_limiter):
    limiter = make_limiter()
    limiter.observe(tenant_id=TENANT, response=response(429, X_Rate_Limit_Problem="minute", Retry_After=1))
    with pytest.raises(RateLimitWait) as refused:
        limiter.acquire(tenant_id=TENANT)
    assert refused.value.problem == "minute"
    assert 0.9 < refused.value.seconds <= 1.0
    limiter.acquire(tenant_id=OTHER)


def test_429_day_stops_the_tenant_until_the_day_resets_then_starts_a_fresh_window(make_limiter):
    limiter = make_limiter(limits=RateLimits(day=3, minute=100))
    limiter.release(tenant_id=TENANT, ticket=limiter.acquire(tenant_id=TENANT))
    limiter.observe(tenant_id=TENANT, response=response(429, X_Rate_Limit_Problem="day", Retry_After=1))
    with pytest.raises(RateLimitWait) as refused:
        limiter.acquire(tenant_id=TENANT)
    assert refused.value.problem == "day"
    time.sleep(1.05)
    for _ in range(3):
        limiter.release(tenant_id=TENANT, ticket=limiter.acquire(tenant_id=TENANT))
    with pytest.raises(RateLimitWait):
        limiter.acquire(tenant_id=TENANT)


def test_429_appminute_blocks_every_tenant(make_limiter):
    limiter = make_limiter()
    limiter.observe(tenant_id=TENANT, response=response(429, X_Rate_Limit_Problem="appminute", Retry_After=2))
    with pytest.raises(RateLimitWait) as refused:
        limiter.acquire(tenant_id=OTHER)
    assert refused.value.problem == "appminute"


def test_429_concurrent_does_not_block(make_limiter):
    limiter = make_limiter()
    limiter.observe(tenant_id=TENANT, response=response(429, X_Rate_Limit_Problem="concurrent"))
    limiter.acquire(tenant_id=TENANT)


def test_racing_workers_never_exceed_the_limit(make_limiter):
    limiter = make_limiter(limits=RateLimits(concurrent=100, minute=25))
    granted, refused = [], []
    barrier = threading.Barrier(10)

    def worker():
        barrier.wait()
        for _ in range(10):
            try:
                granted.append(limiter.acquire(tenant_id=TENANT))
            except RateLimitWait:
                refused.append(1)

    threads = [threading.Thread(target=worker) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(granted) == 25
    assert len(refused) == 75


def test_waiting_callers_are_told_successive_slots_not_all_the_first(make_limiter):
    limiter = make_limiter(limits=RateLimits(minute=3), minute_seconds=1.0)
    for _ in range(3):
        limiter.release(tenant_id=TENANT, ticket=limiter.acquire(tenant_id=TENANT))
        time.sleep(0.1)  # the calls 0.1 s apart, so are the slots they free (a busy machine's sleep may run short)
    waits = []
    for name in ("chunk:1", "chunk:2", "chunk:3"):
        with pytest.raises(RateLimitWait) as refused:
            limiter.acquire(tenant_id=TENANT, waiter=name)
        waits.append(refused.value.seconds)
    assert waits[0] < waits[1] < waits[2]
    assert waits[1] - waits[0] >= 0.05 and waits[2] - waits[1] >= 0.05
    with pytest.raises(RateLimitWait) as again:  # asking again keeps a caller's place in the queue
        limiter.acquire(tenant_id=TENANT, waiter="chunk:1")
    assert abs(again.value.seconds - waits[0]) < 0.02


def test_refund_uncounts_a_call_that_was_never_made(make_limiter):
    limiter = make_limiter(limits=RateLimits(minute=2, concurrent=2))
    ticket = limiter.acquire(tenant_id=TENANT)
    limiter.acquire(tenant_id=TENANT)
    limiter.refund(tenant_id=TENANT, ticket=ticket)
    snapshot = limiter.snapshot(tenant_id=TENANT)
    assert snapshot["minute_used"] == 1 and snapshot["in_flight"] == 1 and snapshot["day_used"] == 1
    limiter.acquire(tenant_id=TENANT)


# ---------------------------------------------------------------- always on: the process's limiter


def test_process_limiter_runs_in_process_with_the_same_limits_when_no_redis_url(settings):
    from integrations.xero.ratelimit import rate_limiter

    settings.REDIS_URL = ""
    rate_limiter.cache_clear()
    limiter = rate_limiter()
    assert isinstance(limiter, XeroRateLimiter)
    assert limiter.limits == RateLimits(**settings.XERO_RATE_LIMITS)
    for _ in range(60):
        limiter.release(tenant_id=TENANT, ticket=limiter.acquire(tenant_id=TENANT))
    with pytest.raises(RateLimitWait) as refused:
        limiter.acquire(tenant_id=TENANT)
    assert refused.value.problem == "minute"
    assert rate_limiter() is limiter  # one per process, shared by every thread


def test_in_process_and_redis_limiters_decide_alike_when_given_the_same_sequence():
    import fakeredis

    options = {"minute_seconds": 60.0, "day_seconds": 86400.0, "guard_seconds": 1.0, "slot_ttl_seconds": 30.0}
    prefix = f"test:rl:{uuid.uuid4().hex}"
    shared = XeroRateLimiter(runs_redis(), prefix=prefix, **options)
    local = XeroRateLimiter(fakeredis.FakeRedis(server=fakeredis.FakeServer()), prefix=prefix, **options)

    def decide(limiter, step):
        kind, tenant = step[0], step[1]
        if kind == "observe":
            limiter.observe(tenant_id=tenant, response=step[2])
            return "observed"
        try:
            ticket = limiter.acquire(tenant_id=tenant)
        except RateLimitWait as wait:
            return ("wait", wait.problem, round(wait.seconds))
        if kind == "call":
            limiter.release(tenant_id=tenant, ticket=ticket)
        return "ok"

    steps = (
        [("hold", TENANT)] * 6  # five in flight, the sixth refused
        + [("call", OTHER)] * 61  # sixty a minute, the 61st refused
        + [("observe", "33333333-3333-3333-3333-333333333333", response(X_MinLimit_Remaining=2))]
        + [("call", "33333333-3333-3333-3333-333333333333")] * 3  # Xero counted 58 elsewhere: two are left
        + [
            (
                "observe",
                "44444444-4444-4444-4444-444444444444",
                response(429, Retry_After=30, X_Rate_Limit_Problem="minute"),
            )
        ]
        + [("call", "44444444-4444-4444-4444-444444444444")]  # blocked for Retry-After
    )
    try:
        assert [decide(local, step) for step in steps] == [decide(shared, step) for step in steps]
    finally:
        keys = list(shared.redis.scan_iter(f"{prefix}:*"))
        if keys:
            shared.redis.delete(*keys)


# ---------------------------------------------------------------- priority classes (issue 15)

THIRD = "33333333-3333-3333-3333-333333333333"


def _take(limiter, count, *, tenant_id=TENANT, priority="customer"):
    """count calls, each released at once (so concurrency never decides)."""
    for _ in range(count):
        limiter.release(tenant_id=tenant_id, ticket=limiter.acquire(tenant_id=tenant_id, priority=priority))


def test_background_waits_when_its_share_of_the_app_minute_is_used_while_customers_go(make_limiter):
    limiter = make_limiter(limits=RateLimits(concurrent=5, minute=60, day=5000, app_minute=10))  # cap 2 of 10
    _take(limiter, 1, tenant_id=TENANT, priority="webhook")
    _take(limiter, 1, tenant_id=OTHER, priority="webhook")
    with pytest.raises(RateLimitWait) as refused:
        limiter.acquire(tenant_id=THIRD, priority="webhook")
    assert refused.value.problem == "background"
    assert 0 < refused.value.seconds <= 60.0
    _take(limiter, 8, tenant_id=THIRD)  # customers get the other eight calls of the app minute
    with pytest.raises(RateLimitWait) as full:
        limiter.acquire(tenant_id=THIRD)
    assert full.value.problem == "appminute"


def test_background_waits_and_customers_do_not_when_the_app_minute_is_short(make_limiter):
    limiter = make_limiter(limits=RateLimits(concurrent=5, minute=60, day=5000, app_minute=10))
    _take(limiter, 8, tenant_id=TENANT)  # customers reached (1 - 20%) of the app minute, no background used yet
    for priority in ("webhook", "reconcile", "health"):
        with pytest.raises(RateLimitWait) as refused:
            limiter.acquire(tenant_id=OTHER, priority=priority)
        assert refused.value.problem == "background"
    _take(limiter, 2, tenant_id=OTHER)  # the rest of the minute is the customers' alone


def test_lower_background_classes_stop_first_when_the_background_cap_fills(make_limiter):
    limiter = make_limiter(limits=RateLimits(concurrent=5, minute=60, day=5000, app_minute=100))  # cap 20
    tenants = [f"00000000-0000-4000-8000-{n:012d}" for n in range(20)]
    for tenant in tenants[:16]:  # health checks may fill 80% of the cap
        _take(limiter, 1, tenant_id=tenant, priority="health")
    with pytest.raises(RateLimitWait):
        limiter.acquire(tenant_id=tenants[16], priority="health")
    _take(limiter, 2, tenant_id=tenants[16], priority="reconcile")  # reconciliation 90%
    with pytest.raises(RateLimitWait):
        limiter.acquire(tenant_id=tenants[17], priority="reconcile")
    _take(limiter, 2, tenant_id=tenants[17], priority="webhook")  # webhook fetches all of it
    with pytest.raises(RateLimitWait) as refused:
        limiter.acquire(tenant_id=tenants[18], priority="webhook")
    assert refused.value.problem == "background"
    assert limiter.app_usage() == {"customer": 0, "webhook": 2, "reconcile": 2, "health": 16}


def test_background_for_a_tenant_waits_when_that_tenant_is_pushing_at_its_ceiling(make_limiter):
    limiter = make_limiter()
    _take(limiter, 48, tenant_id=TENANT)  # 80% of the tenant's 60
    with pytest.raises(RateLimitWait) as refused:
        limiter.acquire(tenant_id=TENANT, priority="reconcile")
    assert refused.value.problem == "background"
    _take(limiter, 1, tenant_id=OTHER, priority="reconcile")  # another tenant's background goes
    _take(limiter, 12, tenant_id=TENANT)  # the push keeps all 60 of its own minute


def test_background_for_a_tenant_waits_while_its_customer_calls_are_active(make_limiter):
    # app_scale found a tenant's own webhook fetches (the echoes of its push) taking 21 of its 60 calls a minute
    # while it pushed, so the push waited for the minute: background must leave an active tenant's minute alone.
    limiter = make_limiter(customer_quiet_seconds=0.5)
    _take(limiter, 1, tenant_id=TENANT)  # one call of a push
    with pytest.raises(RateLimitWait) as refused:
        limiter.acquire(tenant_id=TENANT, priority="webhook")
    assert refused.value.problem == "background"
    assert 0 < refused.value.seconds <= 0.5
    _take(limiter, 1, tenant_id=OTHER, priority="webhook")  # another tenant's background goes
    _take(limiter, 1, tenant_id=TENANT, priority="health")  # a connection check (one a day, or after a 403) goes
    time.sleep(0.55)  # the test waits out the quiet time; the limiter itself never sleeps
    _take(limiter, 1, tenant_id=TENANT, priority="webhook")  # quiet since: its background goes


def test_a_refused_customer_call_keeps_its_tenant_active_for_background(make_limiter):
    limiter = make_limiter(
        limits=RateLimits(concurrent=1, minute=60, day=5000, app_minute=10000), customer_quiet_seconds=0.5
    )
    held = limiter.acquire(tenant_id=TENANT)
    time.sleep(0.55)
    with pytest.raises(RateLimitWait) as waiting:
        limiter.acquire(tenant_id=TENANT)  # refused, and it will come back: customers still want the tenant
    assert waiting.value.problem == "concurrent"
    limiter.release(tenant_id=TENANT, ticket=held)
    with pytest.raises(RateLimitWait) as refused:
        limiter.acquire(tenant_id=TENANT, priority="reconcile")
    assert refused.value.problem == "background"


def test_background_leaves_a_slot_for_customers_when_four_calls_are_in_flight(make_limiter):
    limiter = make_limiter()
    for _ in range(4):
        limiter.acquire(tenant_id=TENANT)
    with pytest.raises(RateLimitWait) as refused:
        limiter.acquire(tenant_id=TENANT, priority="webhook")
    assert refused.value.problem == "background"
    assert 0 < refused.value.seconds <= 1.0
    limiter.acquire(tenant_id=TENANT)  # the fifth slot is the customer's


def test_background_counts_leave_with_the_window_when_the_minute_passes(make_limiter):
    limiter = make_limiter(limits=RateLimits(concurrent=5, minute=60, day=5000, app_minute=10), minute_seconds=0.4)
    _take(limiter, 2, tenant_id=TENANT, priority="webhook")
    with pytest.raises(RateLimitWait) as refused:
        limiter.acquire(tenant_id=OTHER, priority="webhook")
    assert refused.value.seconds <= 0.4
    time.sleep(refused.value.seconds + 0.05)  # the test waits for the window; the limiter itself never sleeps
    _take(limiter, 1, tenant_id=OTHER, priority="webhook")


def test_refund_uncounts_a_background_call_when_it_was_never_made(make_limiter):
    limiter = make_limiter(limits=RateLimits(concurrent=5, minute=60, day=5000, app_minute=10))
    ticket = limiter.acquire(tenant_id=TENANT, priority="webhook")
    limiter.acquire(tenant_id=OTHER, priority="webhook")
    with pytest.raises(RateLimitWait):
        limiter.acquire(tenant_id=THIRD, priority="webhook")  # the cap (2 of 10) is full
    limiter.refund(tenant_id=TENANT, ticket=ticket)
    assert limiter.app_usage() == {"customer": 0, "webhook": 1, "reconcile": 0, "health": 0}
    limiter.acquire(tenant_id=THIRD, priority="webhook")  # its place in the cap is free again


def test_app_usage_counts_customer_calls_apart_from_background_when_both_run(make_limiter):
    limiter = make_limiter()
    _take(limiter, 3, tenant_id=TENANT)
    _take(limiter, 2, tenant_id=OTHER, priority="reconcile")
    _take(limiter, 1, tenant_id=OTHER, priority="health")
    assert limiter.app_usage() == {"customer": 3, "webhook": 0, "reconcile": 2, "health": 1}


def test_a_zero_background_share_keeps_every_background_call_waiting_when_set(make_limiter):
    limiter = make_limiter(background_share=0.0)
    with pytest.raises(RateLimitWait):
        limiter.acquire(tenant_id=TENANT, priority="webhook")
    limiter.acquire(tenant_id=TENANT)
