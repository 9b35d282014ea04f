"""A task's log lines carry the request id of the HTTP request that queued it (a header set at publish, read by
a real worker), or `task:<id>` when nothing did."""

import pytest

from coordinoter.logging import request_id_var
from coordinoter.task_context import HEADER, _request_id_sent
from integrations.tasks import xero_housekeeping_task
from tests.support.live import CeleryProcesses, live_env, wait_until


def test_the_request_id_is_put_in_the_message_headers():
    token = request_id_var.set("req-123")
    try:
        headers: dict = {}
        _request_id_sent(headers=headers)
        assert headers == {HEADER: "req-123"}
    finally:
        request_id_var.reset(token)
    headers = {}
    _request_id_sent(headers=headers)  # outside a request: nothing to carry
    assert headers == {}


@pytest.mark.integration
def test_a_worker_logs_with_the_request_id_of_the_request_that_queued_the_task(transactional_db, settings):
    workers = CeleryProcesses(env=live_env(settings))
    try:
        workers.start_workers(1, queues="default")
        token = request_id_var.set("req-from-the-web")
        try:
            queued = xero_housekeeping_task.delay()
        finally:
            request_id_var.reset(token)
        beat_like = xero_housekeeping_task.delay()  # queued outside a request

        def logged(request_id: str) -> bool:
            return any(
                f'"request_id": "{request_id}"' in line and "succeeded" in line
                for line in workers.log_text().splitlines()
            )

        wait_until(
            lambda: logged("req-from-the-web") and logged(f"task:{beat_like.id}"),
            timeout=60,
            message="worker log lines with the request ids:\n" + workers.log_text()[-3000:],
        )
        assert queued.id
    finally:
        workers.stop()
