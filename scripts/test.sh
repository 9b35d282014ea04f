#!/usr/bin/env bash
# `make test`: the whole suite on PostgreSQL and Redis. Each run owns its PostgreSQL database (named after
# this shell's pid) and a pair of Redis databases (broker, cache) that it claims with a lease in Redis db 0,
# so two runs on one machine never consume each other's tasks or clear each other's cache.
set -u
cd "$(dirname "$0")/.."

redis_host=127.0.0.1
redis_port=6379
redis_cmd() { .venv/bin/python - "$@" <<'PY'
import sys, redis
r = redis.Redis(host="127.0.0.1", port=6379, db=0)
op, *args = sys.argv[1:]
if op == "claim":
    owner, = args
    for pair in range(1, 8):  # databases 2..15, in pairs
        if r.set(f"coordinoter:test-run:{pair}", owner, nx=True, ex=3 * 3600):
            print(pair)
            break
    else:
        sys.exit("Every Redis database pair is taken by another test run.")
elif op == "release":
    pair, owner = args
    if (r.get(f"coordinoter:test-run:{pair}") or b"").decode() == owner:
        r.delete(f"coordinoter:test-run:{pair}")
PY
}

owner="$(hostname)-$$"
if [ -z "${TEST_REDIS_URL:-}" ]; then
  pair="$(redis_cmd claim "$owner")" || exit 1
  trap 'redis_cmd release "$pair" "$owner"' EXIT
  TEST_REDIS_URL="redis://$redis_host:$redis_port/$((pair * 2))"
  TEST_CACHE_REDIS_URL="redis://$redis_host:$redis_port/$((pair * 2 + 1))"
  # A database left over from a run that was killed: start it empty.
  .venv/bin/python -c "import redis,sys; [redis.Redis.from_url(u).flushdb() for u in sys.argv[1:]]" \
    "$TEST_REDIS_URL" "$TEST_CACHE_REDIS_URL"
fi

DJANGO_DEBUG=true \
  DATABASE_URL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/coordinoter}" \
  REDIS_URL="$TEST_REDIS_URL" \
  CACHE_REDIS_URL="${TEST_CACHE_REDIS_URL:-$TEST_REDIS_URL}" \
  TEST_DATABASE_NAME="${TEST_DATABASE_NAME:-test_coordinoter_$$}" \
  DJANGO_ALLOW_ASYNC_UNSAFE=true \
  .venv/bin/pytest "$@"
