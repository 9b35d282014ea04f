"""A worker keeps its database connection between tasks, as a web process keeps it between requests.

Celery's Django fix-up closes every connection before and after each task unless CELERY_DB_REUSE_MAX is set: a new
PostgreSQL backend per task (a fork and an authentication on the server, a connect on the client). With it set, the
fix-up closes them only every CELERY_DB_REUSE_MAX tasks, and these handlers do what Django does around a request:
`close_old_connections()` drops a connection older than CONN_MAX_AGE or one that saw an error and no longer answers,
and CONN_HEALTH_CHECKS checks a reused connection before a task's first query (a PostgreSQL restart costs one
reconnect, not a failed task). Eager runs (the in-process runner of `make run`, tests) are left alone: the runner
closes its own connections, and a test's transaction must not be closed under it.
"""

from __future__ import annotations

from typing import Any

from celery.signals import task_postrun, task_prerun
from django.db import close_old_connections


def _worker_task(task: Any) -> bool:
    return task is not None and not getattr(getattr(task, "request", None), "is_eager", False)


@task_prerun.connect(weak=False)
def _connections_checked_before(task: Any = None, **_: Any) -> None:
    if _worker_task(task):
        close_old_connections()


@task_postrun.connect(weak=False)
def _connections_checked_after(task: Any = None, **_: Any) -> None:
    if _worker_task(task):
        close_old_connections()
