"""Reading a signed webhook delivery: its events, each made storable, with the reason when one cannot be used.

https://developer.xero.com/documentation/guides/webhooks/overview/
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Any

_FIELD_LIMITS = {"tenantId": 64, "resourceId": 64, "eventCategory": 20, "eventType": 20, "tenantType": 20}


class MalformedDelivery(ValueError):
    """A validly signed body that is not a Xero webhook payload at all (nothing in it can be stored)."""


@dataclass(frozen=True)
class IncomingEvent:
    tenant_id: str
    tenant_type: str
    category: str
    event_type: str
    resource_id: str
    event_date: dt.datetime | None  # None only for an unusable event: stored with the delivery's time
    sequence: int | None = None
    problem: str = ""  # why this event cannot be used: stored as ignored ("unusable") with this reason


# Bounds on what a signed delivery may hold. Xero's ids are GUIDs and its sequence numbers fit a bigint; events
# are from the last days. Anything outside is not Xero's and is stored as ignored rather than breaking the insert.
_MAX_SEQUENCE = 2**63 - 1
_EARLIEST_EVENT = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
_LATEST_EVENT = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
# C0 and C1 controls (PostgreSQL refuses NUL in text) and lone surrogates (not encodable as UTF-8).
_UNSTORABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def webhook_delivery_parse(*, body: bytes) -> list[IncomingEvent]:
    """The events of a delivery (an empty list for an intent-to-receive check). Raises MalformedDelivery when the
    body is not a webhook payload at all; an event that cannot be used comes back with `problem` set, its text
    fields made storable, so it is recorded as ignored with the reason and the delivery is still answered 200."""
    try:
        payload = json.loads(body)
    except RecursionError:
        raise MalformedDelivery("JSON nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedDelivery(f"not JSON ({type(exc).__name__})") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("events"), list):
        raise MalformedDelivery("no events list")
    raw_events = payload["events"]
    first_sequence = payload.get("firstEventSequence")
    if not (
        isinstance(first_sequence, int)
        and not isinstance(first_sequence, bool)
        and 0 <= first_sequence <= _MAX_SEQUENCE - len(raw_events)
    ):
        first_sequence = None  # informational only: an out-of-range number is dropped, the events are kept
    return [
        _event_parse(index, raw, sequence=first_sequence + index if first_sequence is not None else None)
        for index, raw in enumerate(raw_events)
    ]


def _storable(value: Any, limit: int) -> str:
    text = value if isinstance(value, str) else ""
    return _UNSTORABLE.sub("\ufffd", text.strip())[:limit]


def _event_parse(index: int, raw: Any, *, sequence: int | None) -> IncomingEvent:
    if not isinstance(raw, dict):
        return IncomingEvent(
            tenant_id="",
            tenant_type="",
            category="",
            event_type="",
            resource_id="",
            event_date=None,
            sequence=sequence,
            problem=f"event {index} is not an object",
        )
    problems = []
    values = {}
    for name in ("tenantId", "resourceId", "eventCategory", "eventType", "eventDateUtc", "tenantType"):
        value = raw.get(name)
        limit = _FIELD_LIMITS.get(name, 64)
        values[name] = _storable(value, limit)
        if value is None and name == "tenantType":
            continue
        if not isinstance(value, str) or not value.strip():
            problems.append(f"lacks {name}")
        elif _UNSTORABLE.search(value):
            problems.append(f"{name} holds control characters or broken Unicode")
        elif len(value.strip()) > limit:
            problems.append(f"{name} is longer than {limit} characters")
    event_date = _parse_event_date(values["eventDateUtc"]) if values["eventDateUtc"] else None
    if values["eventDateUtc"] and event_date is None:
        problems.append("eventDateUtc is not a date and time Xero would send")
    return IncomingEvent(
        tenant_id=values["tenantId"].lower(),
        tenant_type=values["tenantType"].upper(),
        category=values["eventCategory"].upper(),
        event_type=values["eventType"].upper(),
        resource_id=values["resourceId"].lower(),
        event_date=event_date,
        sequence=sequence,
        problem="; ".join(problems)[:500],
    )


def _parse_event_date(value: str) -> dt.datetime | None:
    # eventDateUtc comes without a zone ("2024-06-21T01:15:39.902") and is UTC.
    # https://developer.xero.com/documentation/guides/webhooks/overview/
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
        if not _EARLIEST_EVENT <= parsed <= _LATEST_EVENT:
            return None
    except (ValueError, OverflowError):
        return None
    return parsed
