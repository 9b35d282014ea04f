"""State in SQLite: one connection shared by all threads, guarded by a re-entrant lock.

Resources are JSON documents in one table, with a few indexed key columns per kind:
  kind        k1                      k2               k3
  org         short code              -                -
  user        email (lower)           -                -
  account     code (upper)            -                -
  taxrate     tax type                -                -
  contact     name (lower)            contact number   status
  invoice     number (upper, ACCREC,  contact id       status
              not DELETED)
  session, authreq, code, grant, refresh, access, connection: identity records.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from contextlib import contextmanager

from .util import plain, revive

SCHEMA = """
CREATE TABLE IF NOT EXISTS docs (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    tenant TEXT,
    k1 TEXT,
    k2 TEXT,
    k3 TEXT,
    updated REAL,
    data TEXT NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE INDEX IF NOT EXISTS docs_k1 ON docs (kind, tenant, k1);
CREATE INDEX IF NOT EXISTS docs_k2 ON docs (kind, tenant, k2);
CREATE INDEX IF NOT EXISTS docs_updated ON docs (kind, tenant, updated);
-- Lookups by k1/k2 without a tenant (a user's connections, a tenant's connections) stay fast with 10,000 tenants.
CREATE INDEX IF NOT EXISTS docs_kind_k1 ON docs (kind, k1);
CREATE INDEX IF NOT EXISTS docs_kind_k2 ON docs (kind, k2);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class Clock:
    """Real time plus an offset the admin API can advance (for token, code and grace expiry tests)."""

    def __init__(self):
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> float:
        self.offset += float(seconds)
        return self.offset


class Store:
    def __init__(self, path: str = ":memory:"):
        self.path = path
        self.lock = threading.RLock()
        self._depth = 0
        self._after_commit: list = []
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        if path != ":memory:":
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)

    # ------------------------------------------------------------ transactions
    @contextmanager
    def tx(self):
        """Atomic unit of work; nests (inner blocks join the outer transaction)."""
        with self.lock:
            outer = self._depth == 0
            if outer:
                self.db.execute("BEGIN")
            self._depth += 1
            try:
                yield self
            except BaseException:
                self._depth -= 1
                if outer:
                    self.db.execute("ROLLBACK")
                    self._after_commit.clear()
                raise
            self._depth -= 1
            if outer:
                self.db.execute("COMMIT")
                callbacks, self._after_commit = self._after_commit, []
                for callback in callbacks:
                    callback()

    @contextmanager
    def element(self):
        """One element of a batch, inside the batch's transaction: undone on its own if it fails (a savepoint),
        its after-commit callbacks with it; committed with the batch otherwise (one COMMIT, not one per element)."""
        with self.lock:
            if not self._depth:
                raise RuntimeError("element() runs inside tx()")
            queued = len(self._after_commit)
            self.db.execute("SAVEPOINT element")
            self._depth += 1
            try:
                yield self
            except BaseException:
                self._depth -= 1
                self.db.execute("ROLLBACK TO SAVEPOINT element")
                self.db.execute("RELEASE SAVEPOINT element")
                del self._after_commit[queued:]
                raise
            self._depth -= 1
            self.db.execute("RELEASE SAVEPOINT element")

    def on_commit(self, callback) -> None:
        """Run callback after the current transaction commits (at once outside a transaction)."""
        with self.lock:
            if self._depth:
                self._after_commit.append(callback)
                return
        callback()

    # ------------------------------------------------------------ documents
    def put(
        self,
        kind: str,
        doc_id: str,
        data: dict,
        tenant: str | None = None,
        k1: str | None = None,
        k2: str | None = None,
        k3: str | None = None,
        updated: float | None = None,
    ) -> None:
        with self.lock:
            self.db.execute(
                "INSERT OR REPLACE INTO docs (kind, id, tenant, k1, k2, k3, updated, data) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (kind, doc_id, tenant, k1, k2, k3, updated, json.dumps(plain(data))),
            )

    def get(self, kind: str, doc_id: str) -> dict | None:
        with self.lock:
            row = self.db.execute("SELECT data FROM docs WHERE kind=? AND id=?", (kind, doc_id)).fetchone()
        return revive(json.loads(row[0])) if row else None

    def delete(self, kind: str, doc_id: str) -> None:
        with self.lock:
            self.db.execute("DELETE FROM docs WHERE kind=? AND id=?", (kind, doc_id))

    def find(self, kind: str, tenant: str | None = None, **where) -> list[dict]:
        """Documents of a kind, optionally filtered on tenant and k1/k2/k3 (value or list of values)
        and updated__gt; ordered by insertion."""
        sql = "SELECT data FROM docs WHERE kind=?"
        args: list = [kind]
        if tenant is not None:
            sql += " AND tenant=?"
            args.append(tenant)
        for key, value in where.items():
            if key == "updated__gt":
                sql += " AND updated > ?"
                args.append(value)
            elif key == "ids":
                values = list(value)
                sql += f" AND id IN ({','.join('?' * len(values))})" if values else " AND 0"
                args.extend(values)
            elif isinstance(value, (list, tuple, set)):
                values = list(value)
                sql += f" AND {key} IN ({','.join('?' * len(values))})" if values else " AND 0"
                args.extend(values)
            else:
                sql += f" AND {key}=?"
                args.append(value)
        sql += " ORDER BY rowid"
        with self.lock:
            rows = self.db.execute(sql, args).fetchall()
        return [revive(json.loads(row[0])) for row in rows]

    def count(self, kind: str, tenant: str | None = None) -> int:
        with self.lock:
            if tenant is None:
                return self.db.execute("SELECT COUNT(*) FROM docs WHERE kind=?", (kind,)).fetchone()[0]
            return self.db.execute("SELECT COUNT(*) FROM docs WHERE kind=? AND tenant=?", (kind, tenant)).fetchone()[0]

    # ------------------------------------------------------------ meta
    def meta_get(self, key: str, default=None):
        with self.lock:
            row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def meta_set(self, key: str, value) -> None:
        with self.lock:
            self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, json.dumps(value)))

    def next_counter(self, name: str) -> int:
        with self.tx():
            value = int(self.meta_get("counter:" + name, 0)) + 1
            self.meta_set("counter:" + name, value)
            return value

    def wipe(self, keep_meta: tuple = ()) -> None:
        with self.tx():
            saved = {key: self.meta_get(key) for key in keep_meta}
            self.db.execute("DELETE FROM docs")
            self.db.execute("DELETE FROM meta")
            for key, value in saved.items():
                if value is not None:
                    self.meta_set(key, value)
