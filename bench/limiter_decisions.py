"""The Redis limiter's own capacity: decisions a second (acquire + release) of integrations/xero/ratelimit.py against
a private redis-server (not a test).

Usage:
  .venv/bin/python bench/limiter_decisions.py [--clients 4] [--seconds 10] [--tenants 10000] [--background 0.2]

Each client process loops: pick a tenant at random, `acquire` (a customer call, or with --background's probability
one of the three background classes), `release` at once; a refusal (the tenant's minute is full) counts as a
decision too. The limits are Xero's, so with 10,000 tenants nearly every decision is an admission that writes the
tenant's and the app's logs: the expensive path. The app-wide minute is raised so the app log keeps growing to its
real size (10,000 entries) instead of refusing.

Prints one JSON object as its last line: decisions, seconds, decisions_per_s, admitted, refused, p50_ms / p99_ms
(one acquire, at the client, including the round trip), redis_cpu_s and redis_cpu_us_per_decision (the
redis-server's own CPU from /proc: what bounds a single Redis), load_average.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=4, help="client processes")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--tenants", type=int, default=10000)
    parser.add_argument("--background", type=float, default=0.2, help="share of background-class calls")
    return parser.parse_args()


def client(url: str, prefix: str, seconds: float, tenants: int, background: float, seed: int, out) -> None:
    import redis

    from integrations.xero.ratelimit import RateLimits, RateLimitWait, XeroRateLimiter

    limiter = XeroRateLimiter(
        redis.Redis.from_url(url),
        limits=RateLimits(app_minute=10_000_000),
        prefix=prefix,
        background_share=0.2,
    )
    rng = random.Random(seed)
    ids = [str(uuid.UUID(int=n + 1)) for n in range(tenants)]
    classes = ["webhook", "reconcile", "health"]
    latencies, admitted, refused = [], 0, 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        tenant = rng.choice(ids)
        priority = rng.choice(classes) if rng.random() < background else "customer"
        started = time.perf_counter()
        try:
            ticket = limiter.acquire(tenant_id=tenant, priority=priority)
        except RateLimitWait:
            refused += 1
            latencies.append(time.perf_counter() - started)
            continue
        latencies.append(time.perf_counter() - started)
        limiter.release(tenant_id=tenant, ticket=ticket)
        admitted += 1
    out.put({"latencies": latencies, "admitted": admitted, "refused": refused})


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    args = parse_args()
    from tests.support.live import PrivateRedis

    server = PrivateRedis()
    server.start()
    try:
        prefix = f"bench:limiter:{uuid.uuid4().hex[:8]}"
        queue: multiprocessing.Queue = multiprocessing.Queue()
        procs = [
            multiprocessing.Process(
                target=client,
                args=(server.url(0), prefix, args.seconds, args.tenants, args.background, n, queue),
            )
            for n in range(args.clients)
        ]
        cpu_before = _cpu(server.process.pid)
        started = time.monotonic()
        for p in procs:
            p.start()
        results = [queue.get() for _ in procs]
        for p in procs:
            p.join()
        seconds = time.monotonic() - started
        cpu = _cpu(server.process.pid) - cpu_before
    finally:
        server.stop()
    latencies = sorted(x for r in results for x in r["latencies"])
    decisions = len(latencies)
    # A decision is one acquire; each admitted call also costs one release (a ZREM), counted in Redis's CPU.
    print(
        json.dumps(
            {
                "clients": args.clients,
                "tenants": args.tenants,
                "background_share_of_calls": args.background,
                "decisions": decisions,
                "seconds": round(seconds, 2),
                "decisions_per_s": round(decisions / seconds, 1),
                "admitted": sum(r["admitted"] for r in results),
                "refused": sum(r["refused"] for r in results),
                "p50_ms": round(latencies[decisions // 2] * 1000, 3),
                "p99_ms": round(latencies[int(decisions * 0.99)] * 1000, 3),
                "redis_cpu_s": round(cpu, 2),
                "redis_cpu_us_per_decision": round(cpu / decisions * 1e6, 1),
                "load_average": [round(x, 2) for x in os.getloadavg()],
            }
        )
    )


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coordinoter.settings")
    main()
