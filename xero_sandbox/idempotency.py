"""Idempotency-Key handling like Xero's: the first response to a key is kept and replayed.

Keys are scoped to the app and tenant, at most 128 characters, and kept for 6 minutes divided by
the time scale. The same key with a different request (method, path, query or body) is a 400. A
concurrent duplicate waits for the first request and gets its response. 500s are kept too.
"""

from __future__ import annotations

import hashlib
import threading
import time


class Entry:
    def __init__(self, fingerprint: str):
        self.fingerprint = fingerprint
        self.created = time.monotonic()
        self.done = threading.Event()
        self.response = None  # (status, headers, body)


class IdempotencyCache:
    def __init__(self, settings_box):
        self.box = settings_box
        self.lock = threading.Lock()
        self.entries: dict = {}

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()

    def window(self) -> float:
        s = self.box.s
        return s.idempotency_window / s.time_scale

    @staticmethod
    def fingerprint(method: str, path: str, query: str, body: bytes) -> str:
        digest = hashlib.sha256()
        for part in (method.encode(), path.lower().encode(), query.encode(), body):
            digest.update(part)
            digest.update(b"\0")
        return digest.hexdigest()

    def begin(self, scope: tuple, fingerprint: str):
        """Returns ("new", entry) | ("replay", entry) | ("conflict", None)."""
        now = time.monotonic()
        window = self.window()
        with self.lock:
            for key in [k for k, e in self.entries.items() if now - e.created > window]:
                del self.entries[key]
            entry = self.entries.get(scope)
            if entry is None:
                entry = Entry(fingerprint)
                self.entries[scope] = entry
                return "new", entry
        if entry.fingerprint != fingerprint:
            return "conflict", None
        entry.done.wait(timeout=120)
        return "replay", entry

    def finish(self, scope: tuple, entry: Entry, response) -> None:
        entry.response = response
        entry.done.set()

    def abandon(self, scope: tuple, entry: Entry) -> None:
        """Forget a key whose request produced nothing worth replaying (e.g. a 503 or 429)."""
        with self.lock:
            if self.entries.get(scope) is entry:
                del self.entries[scope]
        entry.done.set()

    def snapshot(self) -> list:
        now = time.monotonic()
        with self.lock:
            return [
                {"scope": list(k), "age_seconds": round(now - e.created, 3), "complete": e.done.is_set()}
                for k, e in self.entries.items()
            ]
