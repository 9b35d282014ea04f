"""Real Celery workers (and beat) as subprocesses against the pytest test database and Redis.

    workers = CeleryProcesses(env=live_env(settings, XERO_API_URL=...))
    workers.start_workers(3, queues="xero")
    workers.start_beat()
    ...
    workers.kill(pid)            # SIGKILL one mid-task
    workers.stop()               # always, before the test database is flushed

    redis = PrivateRedis()       # a redis-server of the test's own (broker, cache, limiter) on a free port
    redis.start(); redis.kill(); redis.start()   # a real Redis restart; everything it held is gone

Each process logs to its own file (JSON lines); `log_events("xero.token.refreshed")` counts an event across them.
Reusable by any live test: the environment is the test process's settings plus what the caller overrides.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

REPO_ROOT = Path(__file__).resolve().parents[2]


def database_url(settings) -> str:
    """The pytest test database (test_<name>) as a DATABASE_URL the workers can use."""
    db = settings.DATABASES["default"]
    user = quote(db.get("USER") or "")
    password = quote(db.get("PASSWORD") or "")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    return f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def live_env(settings, **overrides) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "XERO_SANDBOX_"))}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "coordinoter.settings",
            "DJANGO_DEBUG": "true",
            "DATABASE_URL": database_url(settings),
            "REDIS_URL": settings.REDIS_URL,
            "TOKEN_ENCRYPTION_KEYS": ",".join(settings.TOKEN_ENCRYPTION_KEYS),
            "PYTHONUNBUFFERED": "1",
            "LOG_LEVEL": "INFO",
        }
    )
    env.update({k: str(v) for k, v in overrides.items()})
    return env


class CeleryProcesses:
    def __init__(self, *, env: dict[str, str], workdir: str | None = None) -> None:
        self.env = env
        self.dir = Path(workdir or tempfile.mkdtemp(prefix="coordinoter-live-"))
        self.processes: dict[int, subprocess.Popen] = {}
        self.logs: dict[int, Path] = {}
        self._count = 0

    # ------------------------------------------------------------ start
    def _spawn(self, args: list[str], name: str) -> subprocess.Popen:
        self._count += 1
        log = self.dir / f"{self._count:02d}-{name}.log"
        handle = log.open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "coordinoter", *args],
            cwd=str(REPO_ROOT),
            env=self.env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        handle.close()
        self.processes[process.pid] = process
        self.logs[process.pid] = log
        return process

    def start_workers(
        self, count: int, *, queues: str = "xero", ready_timeout: float = 30.0, concurrency: int = 1
    ) -> list[int]:
        """Solo-pool workers (one process each: the pid that claims a chunk is the pid to kill); with `concurrency`
        above 1, prefork workers of that many children each, as scripts/run.sh starts them (the children fork from
        a parent that has already imported everything)."""
        pool = ["-P", "solo"] if concurrency <= 1 else ["-P", "prefork", "-c", str(concurrency)]
        started = []
        for _ in range(count):
            name = f"w{self._count + 1}-{os.getpid()}@%h"
            process = self._spawn(
                [
                    "worker",
                    "-Q",
                    queues,
                    *pool,
                    "-n",
                    name,
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                    "--loglevel",
                    "INFO",
                ],
                "worker",
            )
            started.append(process.pid)
        deadline = time.monotonic() + ready_timeout
        for pid in started:
            while "ready." not in self.log_text(pid):
                if self.processes[pid].poll() is not None:
                    raise RuntimeError(f"worker {pid} exited:\n{self.log_text(pid)[-3000:]}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"worker {pid} not ready:\n{self.log_text(pid)[-3000:]}")
                time.sleep(0.1)
        return started

    def start_beat(self) -> int:
        schedule = self.dir / "beat-schedule"
        process = self._spawn(
            ["beat", "--loglevel", "INFO", "--schedule", str(schedule), "--pidfile", str(self.dir / "beat.pid")], "beat"
        )
        return process.pid

    # ------------------------------------------------------------ control
    def worker_pids(self) -> list[int]:
        return [
            pid for pid, process in self.processes.items() if process.poll() is None and "worker" in self.logs[pid].name
        ]

    def kill(self, pid: int, sig: int = signal.SIGKILL) -> None:
        os.kill(pid, sig)
        self.processes[pid].wait(10)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for process in self.processes.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)

    def rss_mb(self, pid: int) -> float:
        """Resident memory of one process (VmRSS), in MB."""
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    # ------------------------------------------------------------ logs
    def log_text(self, pid: int | None = None) -> str:
        paths = [self.logs[pid]] if pid is not None else list(self.logs.values())
        return "\n".join(path.read_text(errors="replace") for path in paths if path.exists())

    def log_events(self, event: str) -> list[dict]:
        found = []
        for line in self.log_text().splitlines():
            if f'"{event}"' in line:
                try:
                    found.append(json.loads(line))
                except ValueError:
                    continue
        return found


def wait_until(predicate: Callable[[], bool], *, timeout: float, interval: float = 0.2, message: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s: {message}")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PrivateRedis:
    """A redis-server process of the test's own, on a free port, persisting nothing: `kill()` (SIGKILL) then
    `start()` on the same port is a real Redis restart that loses every queued task and every limiter key.
    The machine's Redis is shared with other test sessions and is never touched."""

    def __init__(self, *, port: int | None = None) -> None:
        self.port = port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="coordinoter-redis-"))
        self.process: subprocess.Popen | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    @property
    def env(self) -> dict[str, str]:
        """For live_env(): broker and limiter in database 0, the cache in database 1."""
        return {"REDIS_URL": self.url(0), "CACHE_REDIS_URL": self.url(1)}

    def start(self, *, timeout: float = 10.0) -> None:
        import redis

        with (self.dir / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(
                [
                    "redis-server",
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(self.dir),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if client.ping():
                    return
            except redis.RedisError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"redis-server on {self.port} did not start: "
                    f"{(self.dir / 'redis.log').read_text(errors='replace')[-2000:]}"
                )
            time.sleep(0.05)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
