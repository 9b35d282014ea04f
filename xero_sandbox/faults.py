"""Fault injection for the Accounting API (and optionally identity), driven by the admin API.

A rule has a kind, and applies either to the next ``count`` matching calls or to a ``share``
(probability 0..1) of them, optionally filtered by HTTP method, path prefix and tenant.

Kinds:
  500                 answer 500 before doing anything (cached under an Idempotency-Key like Xero does)
  503                 answer 503 before doing anything (not cached)
  429                 a forced rate-limit answer (X-Rate-Limit-Problem from ``problem``, default minute)
  timeout             hold the connection ``hold`` seconds (default 30) and close it; nothing applied
  timeout_after_write apply the request, then hold and close without answering
  drop_after_write    apply the request, then close the connection at once without answering
"""

from __future__ import annotations

import itertools
import random
import threading

KINDS = ("500", "503", "429", "timeout", "timeout_after_write", "drop_after_write")
ALIASES = {
    "drop": "drop_after_write",
    "dropped": "drop_after_write",
    "after_write": "drop_after_write",
    "timeout-after-write": "timeout_after_write",
    "drop-after-write": "drop_after_write",
}


class FaultError(ValueError):
    pass


def normalise_rule(rule: dict) -> dict:
    kind = str(rule.get("kind", "")).strip().lower()
    kind = ALIASES.get(kind, kind)
    if kind not in KINDS:
        raise FaultError(f"unknown fault kind {rule.get('kind')!r}; known: {', '.join(KINDS)}")
    count = rule.get("count")
    share = rule.get("share")
    if count is None and share is None:
        count = 1
    out = {
        "kind": kind,
        "count": None if count is None else int(count),
        "share": None if share is None else float(share),
        "method": (rule.get("method") or "").upper() or None,
        "path": rule.get("path") or None,
        "tenant": (rule.get("tenant") or rule.get("tenant_id") or "").lower() or None,
        "hold": float(rule.get("hold", 30.0)),
        "problem": rule.get("problem", "minute"),
        "fired": 0,
    }
    if out["share"] is not None and not 0 <= out["share"] <= 1:
        raise FaultError("share must be between 0 and 1")
    return out


def parse_spec(spec: str) -> dict:
    """'503,share=0.1,path=/api.xro/2.0/Invoices' -> rule dict."""
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    if not parts:
        raise FaultError("empty fault spec")
    rule: dict = {"kind": parts[0]}
    for part in parts[1:]:
        key, _, value = part.partition("=")
        rule[key.strip()] = value.strip()
    return normalise_rule(rule)


class FaultInjector:
    def __init__(self, seed: int | None = None):
        self.lock = threading.Lock()
        self.rules: dict = {}
        self.ids = itertools.count(1)
        self.random = random.Random(seed)

    def add(self, rule: dict) -> dict:
        rule = normalise_rule(rule) if "fired" not in rule else rule
        with self.lock:
            rule["id"] = next(self.ids)
            self.rules[rule["id"]] = rule
        return rule

    def remove(self, rule_id: int) -> bool:
        with self.lock:
            return self.rules.pop(int(rule_id), None) is not None

    def clear(self) -> None:
        with self.lock:
            self.rules.clear()

    def list(self) -> list:
        with self.lock:
            return [dict(rule) for rule in self.rules.values()]

    def pick(self, method: str, path: str, tenant: str | None):
        """The rule that fires for this call, if any (consumes one count)."""
        with self.lock:
            for rule in list(self.rules.values()):
                if rule["method"] and rule["method"] != method:
                    continue
                if rule["path"] and not path.lower().startswith(rule["path"].lower()):
                    continue
                if rule["tenant"] and rule["tenant"] != (tenant or ""):
                    continue
                if rule["count"] is not None:
                    if rule["fired"] >= rule["count"]:
                        continue
                    if rule["share"] is not None and self.random.random() >= rule["share"]:
                        continue
                elif self.random.random() >= rule["share"]:
                    continue
                rule["fired"] += 1
                if rule["count"] is not None and rule["fired"] >= rule["count"]:
                    del self.rules[rule["id"]]
                return dict(rule)
        return None
