"""What one chunk costs the worker that sends it, in CPU and in instructions (not a test).

Usage:
  .venv/bin/python bench/chunk_cost.py                    # CPU ms per chunk, in process
  .venv/bin/python bench/chunk_cost.py --instructions     # the same under valgrind: instructions per chunk

Runs the push's own code in this process: 600 pending invoices of one tenant, dispatched (five chunks of 50), then
each chunk sent with push_chunk_send, which also builds the tenant's next chunk (the refill), until every invoice is
in "Xero". Xero is `responses` echoing every element as created; the queue is a recorder (nothing published); the
rate limiter, PostgreSQL and Redis are real. The first chunk warms the process up and is not counted, nor is the
time spent in the echo.

CPU time on a shared VM moves by 10-15% from one run to the next, more than most single changes save. With
--instructions the script runs itself twice at once under `valgrind --tool=callgrind` (4 chunks and 11, the second
on BENCH_DATABASE_URL with "_11" added and the next Redis database) and reports the difference over the 7 chunks: a
count that does not depend on the machine's neighbours (about 20 minutes; needs valgrind, `apt-get install -y
valgrind`). Write the bytecode first (`python -m compileall`, as scripts/run.sh does): a module compiled during the
measured chunks would count.

Needs PostgreSQL and Redis (`make services`): BENCH_DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/coordinoter_bench_chunk, created and migrated if missing, emptied at each run) and
BENCH_REDIS_URL (default redis://127.0.0.1:6379/8, flushed). Prints one JSON object as its last line.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

INVOICES = 600
DATABASE_URL = "postgres://postgres@127.0.0.1:5432/coordinoter_bench_chunk"
REDIS_URL = "redis://127.0.0.1:6379/8"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=1000, help="chunks to count after the first (at most 11)")
    parser.add_argument("--instructions", action="store_true", help="count instructions under valgrind")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    result = _instructions() if args.instructions else _measure(args.chunks)
    print(json.dumps(result))


def _instructions() -> dict:
    """Both runs at once, each with a database and a Redis database of its own (instruction counts do not mind)."""
    database_url = os.environ.get("BENCH_DATABASE_URL", DATABASE_URL)
    redis_url = os.environ.get("BENCH_REDIS_URL", REDIS_URL)
    with tempfile.TemporaryDirectory() as directory:
        runs = {}
        for index, chunks in enumerate((4, 11)):
            env = {
                **os.environ,
                "BENCH_DATABASE_URL": f"{database_url}_{chunks}",
                "BENCH_REDIS_URL": f"{redis_url.rsplit('/', 1)[0]}/{int(redis_url.rsplit('/', 1)[1]) + index}",
            }
            out = Path(directory) / f"callgrind-{chunks}.out"
            command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, __file__]
            runs[chunks] = subprocess.Popen(
                [*command, "--chunks", str(chunks)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        counts = {}
        for chunks, process in runs.items():
            stdout, stderr = process.communicate()
            if process.returncode:
                raise SystemExit(f"the run of {chunks} chunks failed:\n{stderr[-3000:]}")
            measured = json.loads(stdout.strip().splitlines()[-1])
            if measured["chunks"] != chunks:
                raise SystemExit(f"asked for {chunks} chunks, sent {measured['chunks']}")
            counts[chunks] = int(re.findall(r"Collected : (\d+)", stderr)[-1])
    return {
        "chunks": 7,
        "instructions_per_chunk": round((counts[11] - counts[4]) / 7),
        "instructions_total": counts,
    }


def _measure(limit: int) -> dict:
    database_url = os.environ.get("BENCH_DATABASE_URL", DATABASE_URL)
    from bench.common import bench_env, create_database

    os.environ.update(
        {
            **bench_env(database_url=database_url, redis_url=os.environ.get("BENCH_REDIS_URL", REDIS_URL)),
            "XERO_API_URL": "https://api.xero.com/api.xro/2.0",
            "XERO_RATE_LIMIT_PREFIX": f"bench:{uuid.uuid4().hex[:8]}",
            "LOG_LEVEL": "INFO",
        }
    )
    create_database(database_url)
    import django

    django.setup()
    import redis
    import responses
    from celery.app.task import Task
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    from invoices.services.push import push_chunk_send, push_organisation_dispatch
    from invoices.services.push.common import chunks
    from organisations.models import Organisation
    from tests.factories import echo_invoices, make_connected_organisation, make_organisation

    call_command("migrate", verbosity=0)
    redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()
    with connection.cursor() as cursor:  # the bench's own database: start from nothing
        cursor.execute(f"TRUNCATE {Organisation._meta.db_table} CASCADE")
    Task.apply_async = lambda self, args=None, kwargs=None, **options: None  # queued work is not run here
    echo_seconds = [0.0]

    def echo(request):
        started = time.process_time()
        try:
            return echo_invoices(request)
        finally:
            echo_seconds[0] += time.process_time() - started

    with responses.RequestsMock(assert_all_requests_are_fired=False) as xero:
        xero.add_callback(responses.PUT, f"{settings.XERO_API_URL}/Invoices", callback=echo)
        organisation = make_organisation(name="Bench Chunk Cost")
        make_connected_organisation(organisation=organisation, invoices=INVOICES)
        push_organisation_dispatch(organisation_id=organisation.pk)
        pending = chunks().filter(organisation=organisation, state="pending").order_by("pk")
        push_chunk_send(chunk_id=pending.values_list("pk", flat=True).first())  # warm-up
        echo_seconds[0], sent, started = 0.0, 0, time.process_time()
        while sent < limit and (chunk_id := pending.values_list("pk", flat=True).first()) is not None:
            if push_chunk_send(chunk_id=chunk_id).state != "done":
                raise SystemExit(f"chunk {chunk_id} was not done")
            sent += 1
        spent = time.process_time() - started - echo_seconds[0]
    return {"chunks": sent, "cpu_ms_per_chunk": round(spent / max(sent, 1) * 1000, 2)}


if __name__ == "__main__":
    main()
