"""Webhook delivery as Xero does it.

Events (INVOICE / CONTACT, CREATE / UPDATE) are collected for ``webhook_batch_ms`` and sent as one
delivery: {"events": [...], "firstEventSequence", "lastEventSequence", "entropy"}, with header
x-xero-signature = base64(HMAC-SHA256(raw body, webhook key)). A delivery succeeds only on HTTP 200
within ``webhook_timeout`` seconds (5). Otherwise it is retried at once, then every
``webhook_retry_interval`` (15 min) divided by the time scale, for ``webhook_retry_for`` (24 h)
divided by the time scale; then the webhook is disabled until re-enabled through the admin API.
Deliveries go out in order, one at a time; later ones wait behind a failing one (and are sent in
order once it succeeds). Switches: ``webhook_duplicate`` (share of deliveries sent twice) and
``webhook_out_of_order`` (newer deliveries overtake older ones).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import secrets
import threading
import time
import urllib.error
import urllib.request

from .util import entropy, iso_utc_ms


def sign(body: bytes, key: str) -> str:
    return base64.b64encode(hmac.new(key.encode("utf-8"), body, hashlib.sha256).digest()).decode("ascii")


def post(url: str, body: bytes, signature: str, timeout: float) -> dict:
    """POST a delivery; returns {"status", "ms", "error"} (status None on network errors/timeouts)."""
    if not url.lower().startswith(("http://", "https://")):
        return {"status": None, "ms": 0.0, "error": "webhook URL must be http(s)"}
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json; charset=utf-8",
            "x-xero-signature": signature,
            "User-Agent": "Xero-Webhooks-Sandbox/1.0",
        },
    )
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            response.read()
            status = response.status
        error = None
    except urllib.error.HTTPError as exc:
        status, error = exc.code, None
    except Exception as exc:  # noqa: BLE001 - any network failure is a failed attempt
        status, error = None, f"{type(exc).__name__}: {exc}"
    elapsed = time.monotonic() - started
    if status is not None and elapsed > timeout:
        error, status = f"answered after {elapsed:.2f}s (limit {timeout}s)", None
    return {"status": status, "ms": round(elapsed * 1000, 1), "error": error}


class WebhookDispatcher:
    def __init__(self, app):
        self.app = app
        self.cond = threading.Condition()
        self.thread = None
        self.stopped = False
        self.random = random.Random()
        self.clear()

    # ------------------------------------------------------------ state
    def clear(self) -> None:
        with self.cond:
            self.pending: list = []  # events waiting to be batched
            self.first_pending_at = None
            self.queue: list = []  # deliveries not yet delivered, in order
            self.deliveries: list = []  # every delivery (log)
            self.sequence = 0
            self.enabled = True
            self.skipped = 0
            self.last_intent = None
            self.cond.notify_all()

    def start(self) -> None:
        self.thread = threading.Thread(target=self.run, name="xero-sandbox-webhooks", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        with self.cond:
            self.stopped = True
            self.cond.notify_all()

    # ------------------------------------------------------------ producing
    def event(self, tenant_id: str, category: str, event_type: str, resource_id: str) -> None:
        """Queue an event once the surrounding store transaction commits."""
        at = self.app.clock.now()
        self.app.store.on_commit(lambda: self._add(tenant_id, category, event_type, resource_id, at))

    def _add(self, tenant_id, category, event_type, resource_id, at) -> None:
        s = self.app.settings.s
        if category not in s.webhook_categories:
            return
        if not s.webhook_url:
            with self.cond:
                self.skipped += 1
            return
        path = "Invoices" if category == "INVOICE" else "Contacts"
        event = {
            "resourceUrl": f"{self.app.base_url}/api.xro/2.0/{path}/{resource_id}",
            "resourceId": resource_id,
            "tenantId": tenant_id,
            "tenantType": "ORGANISATION",
            "eventCategory": category,
            "eventType": event_type,
            "eventDateUtc": iso_utc_ms(at),
        }
        with self.cond:
            self.pending.append(event)
            if self.first_pending_at is None:
                self.first_pending_at = time.monotonic()
            self.cond.notify_all()

    def _cut(self, force: bool = False) -> None:
        """Turn pending events into deliveries once the batch window has passed (cond held)."""
        s = self.app.settings.s
        if not self.pending:
            return
        if not force and time.monotonic() - self.first_pending_at < s.webhook_batch_ms / 1000.0:
            return
        events, self.pending, self.first_pending_at = self.pending, [], None
        size = max(1, int(s.webhook_batch_max))
        for start in range(0, len(events), size):
            chunk = events[start : start + size]
            first = self.sequence + 1
            self.sequence += len(chunk)
            payload = {
                "events": chunk,
                "firstEventSequence": first,
                "lastEventSequence": self.sequence,
                "entropy": entropy(),
            }
            body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
            delivery = {
                "id": len(self.deliveries) + 1,
                "created": time.monotonic(),
                "created_at": time.time(),
                "body": body,
                "payload": payload,
                "state": "pending",
                "attempts": [],
                "next_attempt": 0.0,
                "first_attempt": None,
            }
            self.deliveries.append(delivery)
            self.queue.append(delivery)

    def flush(self) -> None:
        with self.cond:
            self._cut(force=True)
            self.cond.notify_all()

    # ------------------------------------------------------------ delivering
    def run(self) -> None:
        while True:
            with self.cond:
                if self.stopped:
                    return
                self._cut()
                delivery = self._next_ready()
                if delivery is None:
                    self.cond.wait(timeout=0.02)
                    continue
            self._attempt(delivery)

    def _next_ready(self):
        s = self.app.settings.s
        if not self.enabled or not self.queue or not s.webhook_url:
            return None
        now = time.monotonic()
        head = self.queue[0]
        if s.webhook_out_of_order and not head["attempts"]:
            if len(self.queue) >= 2:
                self.queue[0], self.queue[1] = self.queue[1], self.queue[0]
                self.queue[0]["overtook"] = self.queue[1]["id"]
                return self.queue[0]
            hold = max(0.5, 3 * s.webhook_batch_ms / 1000.0)
            if now - head["created"] < hold:
                return None
        if head["next_attempt"] > now:
            return None
        return head

    def _attempt(self, delivery: dict) -> None:
        s = self.app.settings.s
        url, key = s.webhook_url, s.webhook_key or ""
        signature = sign(delivery["body"], key)
        result = post(url, delivery["body"], signature, s.webhook_timeout)
        result.update(at=time.time(), url=url)
        duplicate = None
        if result["status"] == 200 and s.webhook_duplicate > 0 and self.random.random() < s.webhook_duplicate:
            duplicate = post(url, delivery["body"], signature, s.webhook_timeout)
            duplicate.update(at=time.time(), url=url, duplicate=True)
        now = time.monotonic()
        with self.cond:
            delivery["attempts"].append(result)
            if duplicate is not None:
                delivery["attempts"].append(duplicate)
            if delivery["first_attempt"] is None:
                delivery["first_attempt"] = now
            if result["status"] == 200:
                delivery["state"] = "delivered"
                if delivery in self.queue:
                    self.queue.remove(delivery)
            else:
                delivery["state"] = "retrying"
                if len(delivery["attempts"]) == 1:
                    delivery["next_attempt"] = now  # Xero retries once straight away
                else:
                    delivery["next_attempt"] = now + s.webhook_retry_interval / s.time_scale
                if now - delivery["first_attempt"] > s.webhook_retry_for / s.time_scale:
                    delivery["state"] = "failed"
                    self.enabled = False
            self.cond.notify_all()

    def enable(self) -> None:
        with self.cond:
            self.enabled = True
            for delivery in self.queue:
                delivery["next_attempt"] = 0.0
                delivery["first_attempt"] = None
                delivery["state"] = "pending"
            self.cond.notify_all()

    def retry_now(self) -> None:
        with self.cond:
            for delivery in self.queue:
                delivery["next_attempt"] = 0.0
            self.cond.notify_all()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until nothing is pending or queued (for tests)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while self.pending or self.queue:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.cond.wait(timeout=min(remaining, 0.05))
        return True

    # ------------------------------------------------------------ intent to receive
    def intent_to_receive(self, url: str | None = None, key: str | None = None, rounds: int = 2) -> dict:
        s = self.app.settings.s
        url = url or s.webhook_url
        key = s.webhook_key if key is None else key
        if not url:
            return {"ok": False, "url": "", "checks": [], "error": "no webhook URL configured"}
        checks = []
        plan = []
        for _ in range(max(1, int(rounds))):
            plan += [True, False]
        self.random.shuffle(plan)
        for correct in plan:
            payload = {"events": [], "firstEventSequence": 0, "lastEventSequence": 0, "entropy": entropy()}
            body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
            signature = sign(body, key if correct else secrets.token_urlsafe(32))
            result = post(url, body, signature, s.webhook_timeout)
            expected = 200 if correct else 401
            checks.append(
                {
                    "correctly_signed": correct,
                    "expected": expected,
                    "status": result["status"],
                    "ms": result["ms"],
                    "error": result["error"],
                    "ok": result["status"] == expected,
                }
            )
        outcome = {
            "ok": all(c["ok"] for c in checks),
            "url": url,
            "checks": checks,
            "at": time.time(),
            "status": "OK" if all(c["ok"] for c in checks) else "FAILED",
        }
        with self.cond:
            self.last_intent = outcome
        return outcome

    # ------------------------------------------------------------ reporting
    def snapshot(self, include_bodies: bool = True) -> dict:
        s = self.app.settings.s
        with self.cond:
            deliveries = []
            for d in self.deliveries:
                item = {k: v for k, v in d.items() if k not in ("body", "created", "next_attempt", "first_attempt")}
                if include_bodies:
                    item["body"] = d["body"].decode("utf-8")
                    item["signature"] = sign(d["body"], s.webhook_key or "")
                deliveries.append(item)
            return {
                "url": s.webhook_url,
                "enabled": self.enabled,
                "pending_events": len(self.pending),
                "queued_deliveries": len(self.queue),
                "last_sequence": self.sequence,
                "skipped_events_without_url": self.skipped,
                "last_intent_to_receive": self.last_intent,
                "deliveries": deliveries,
            }
