"""Request ids across Celery: a task's log lines carry the id of the request that queued it.

The web request's id (RequestIdMiddleware) travels in a message header; the worker sets it for the task's
duration, so `grep <request id>` finds the HTTP request and every task it caused (a batch's push, a webhook's
processing). A task queued by beat or by another task without one gets `task:<task id>`. In-process tasks
(`make run` without Redis) keep the id of the request they run in.
"""

from __future__ import annotations

import contextvars
from typing import Any

from celery.signals import before_task_publish, task_postrun, task_prerun

from coordinoter.logging import request_id_var

HEADER = "coordinoter_request_id"
_tokens: dict[str, contextvars.Token] = {}


@before_task_publish.connect(weak=False)
def _request_id_sent(headers: dict | None = None, **_: Any) -> None:
    current = request_id_var.get()
    if headers is not None and current != "-" and HEADER not in headers:
        headers[HEADER] = current


@task_prerun.connect(weak=False)
def _request_id_set(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    sent = getattr(getattr(task, "request", None), HEADER, None)
    current = request_id_var.get()
    request_id = str(sent) if sent else (current if current != "-" else f"task:{task_id}")
    if task_id:
        _tokens[task_id] = request_id_var.set(request_id[:80])


@task_postrun.connect(weak=False)
def _request_id_reset(task_id: str | None = None, **_: Any) -> None:
    token = _tokens.pop(task_id, None) if task_id else None
    if token is not None:
        try:
            request_id_var.reset(token)
        except ValueError:  # set in another context (a thread pool): nothing of ours to undo there
            request_id_var.set("-")
