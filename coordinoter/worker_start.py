"""A worker is ready for its first task before it takes one.

A fresh worker process paid, in its first task, for what every later task reuses: compiling the statements of
coordinoter/prepared.py and connecting to PostgreSQL, to the limiter's Redis and to the broker. Each prefork child
paid it again. A push that starts just after workers (re)start has its first chunks in those first tasks: about 150 to
250 ms each before the first call to Xero on a 2-vCPU machine (docs/benchmarks.md), at the moment the tenant's first
Xero minute is being spent.

- worker_init, in the worker's main process before its pool forks: every prepared statement of the modules it
  imported is compiled, once for all its children. The database connection that took is closed before the fork: a
  child must never share its parent's socket.
- worker_process_init, in each prefork child after the fork: the child opens its database connection, the
  limiter's Redis connection and a broker connection.

Either step only moves work earlier. What cannot be reached is left to the first task, which meets it (and reports it)
as it always did; a worker still starts.
"""

from __future__ import annotations

import logging
from typing import Any

from celery.signals import worker_init, worker_process_init
from django.db import DatabaseError, connections

logger = logging.getLogger(__name__)


@worker_init.connect(weak=False)
def statements_compile(**_: Any) -> None:
    from coordinoter.prepared import prepared_compile_all

    try:
        compiled = prepared_compile_all()
    except DatabaseError as exc:
        logger.warning(
            "worker.compile_deferred", extra={"event": "worker.compile_deferred", "error": type(exc).__name__}
        )
        compiled = 0
    finally:
        connections.close_all()
    logger.info("worker.statements_compiled", extra={"event": "worker.statements_compiled", "statements": compiled})


@worker_process_init.connect(weak=False)
def connections_open(**_: Any) -> None:
    from coordinoter.celery import app
    from integrations.xero.ratelimit import rate_limiter

    def broker() -> None:
        # A connection from the pool tasks publish with, its queues declared: kombu remembers that per connection,
        # so the first publish neither connects nor declares.
        with app.producer_or_acquire() as producer:
            producer.connection.ensure_connection(max_retries=1, interval_start=0)  # down: a warning, not a wait
            for queue in app.amqp.queues.values():
                producer.maybe_declare(queue)

    steps = (
        ("database", lambda: connections["default"].ensure_connection()),
        ("limiter", lambda: rate_limiter().redis.ping()),
        ("broker", broker),
    )
    for name, step in steps:
        try:
            step()
        except Exception as exc:  # noqa: BLE001 - the first task meets the same failure and reports it
            logger.warning(
                "worker.connect_deferred",
                extra={"event": "worker.connect_deferred", "service": name, "error": type(exc).__name__},
            )
