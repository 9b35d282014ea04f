"""Xero's API limits: per tenant 5 concurrent, 60 a minute, 5,000 a day; per app 10,000 a minute.

Windows are fixed: each starts with the first call of a tenant (or the app) and is followed by
windows of the same length, so tenants reset at different times like Xero's. Window lengths are
divided by the time scale. Rejected calls do not count. Every Accounting response carries
X-DayLimit-Remaining, X-MinLimit-Remaining and X-AppMinLimit-Remaining; a 429 carries
X-Rate-Limit-Problem (minute, day, appminute or concurrent) and, except for concurrent,
Retry-After in whole seconds (at least 1) plus X-Sandbox-Retry-After-Ms with the exact wait.
"""

from __future__ import annotations

import math
import threading
import time


class Window:
    __slots__ = ("start", "count")

    def __init__(self):
        self.start = None
        self.count = 0

    def roll(self, now: float, length: float) -> None:
        if self.start is None:
            self.start, self.count = now, 0
        elif now >= self.start + length:
            self.start += math.floor((now - self.start) / length) * length
            self.count = 0

    def reset_in(self, now: float, length: float) -> float:
        return max(0.0, self.start + length - now)


class RateLimiter:
    def __init__(self, settings_box):
        self.box = settings_box
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with getattr(self, "lock", threading.Lock()):
            self.minute: dict = {}
            self.day: dict = {}
            self.app_minute: dict = {}
            self.in_flight: dict = {}
            self.totals: dict = {}

    def acquire(self, tenant: str, app_id: str, force_problem: str | None = None):
        """Count a call. Returns (allowed, headers, problem, retry_after_seconds)."""
        s = self.box.s
        limits = s.limits
        minute_len = 60.0 / s.time_scale
        day_len = 86400.0 / s.time_scale
        now = time.monotonic()
        with self.lock:
            minute = self.minute.setdefault(tenant, Window())
            day = self.day.setdefault(tenant, Window())
            app_minute = self.app_minute.setdefault(app_id, Window())
            minute.roll(now, minute_len)
            day.roll(now, day_len)
            app_minute.roll(now, minute_len)
            in_flight = self.in_flight.get(tenant, 0)
            problem, wait = force_problem, 1.0
            if problem is None:
                if day.count >= limits["day"]:
                    problem, wait = "day", day.reset_in(now, day_len)
                elif minute.count >= limits["minute"]:
                    problem, wait = "minute", minute.reset_in(now, minute_len)
                elif app_minute.count >= limits["app_minute"]:
                    problem, wait = "appminute", app_minute.reset_in(now, minute_len)
                elif in_flight >= limits["concurrent"]:
                    problem, wait = "concurrent", 0.0
            else:
                wait = minute.reset_in(now, minute_len) if problem == "minute" else 1.0
            if problem is None:
                minute.count += 1
                day.count += 1
                app_minute.count += 1
                self.in_flight[tenant] = in_flight + 1
                self.totals[tenant] = self.totals.get(tenant, 0) + 1
            headers = [
                ("X-DayLimit-Remaining", str(max(0, limits["day"] - day.count))),
                ("X-MinLimit-Remaining", str(max(0, limits["minute"] - minute.count))),
                ("X-AppMinLimit-Remaining", str(max(0, limits["app_minute"] - app_minute.count))),
            ]
        if problem is None:
            return True, headers, None, 0.0
        headers.append(("X-Rate-Limit-Problem", problem))
        if problem != "concurrent":
            headers.append(("Retry-After", str(max(1, math.ceil(wait)))))
            headers.append(("X-Sandbox-Retry-After-Ms", str(max(1, math.ceil(wait * 1000)))))
        return False, headers, problem, wait

    def release(self, tenant: str) -> None:
        with self.lock:
            self.in_flight[tenant] = max(0, self.in_flight.get(tenant, 0) - 1)

    def snapshot(self) -> dict:
        s = self.box.s
        now = time.monotonic()
        with self.lock:
            out = {}
            for tenant, minute in self.minute.items():
                day = self.day.get(tenant)
                out[tenant] = {
                    "minute_used": minute.count,
                    "day_used": day.count if day else 0,
                    "in_flight": self.in_flight.get(tenant, 0),
                    "total_calls": self.totals.get(tenant, 0),
                    "minute_resets_in": round(minute.reset_in(now, 60.0 / s.time_scale), 3),
                }
            return {"limits": dict(s.limits), "time_scale": s.time_scale, "tenants": out}
