"""Small shared helpers: Xero-style JSON (Decimal money, /Date()/ values), ids and times."""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
import string
import uuid
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

UTC = dt.UTC
TWO = Decimal("0.01")
FOUR = Decimal("0.0001")
SIX = Decimal("0.000001")


def new_id() -> str:
    return str(uuid.uuid4())


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def random_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def entropy(length: int = 20) -> str:
    return "".join(secrets.choice(string.ascii_uppercase) for _ in range(length))


def round_money(value: Decimal, places: Decimal = TWO) -> Decimal:
    """Xero rounds half away from zero (ROUND_HALF_UP on Decimal)."""
    return Decimal(value).quantize(places, rounding=ROUND_HALF_UP)


def to_decimal(value) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise InvalidOperation("boolean is not a number")
    if isinstance(value, Decimal):
        return value
    return Decimal(str(value))


# ---------------------------------------------------------------- dates


def ms_date(value: dt.date) -> str:
    """A calendar date as Xero renders it: /Date(ms+0000)/ at midnight UTC."""
    midnight = dt.datetime(value.year, value.month, value.day, tzinfo=UTC)
    return f"/Date({int(midnight.timestamp() * 1000)}+0000)/"


def date_string(value: dt.date) -> str:
    return f"{value.isoformat()}T00:00:00"


def ms_datetime(epoch: float, offset: bool = True) -> str:
    ms = int(round(epoch * 1000))
    return f"/Date({ms}+0000)/" if offset else f"/Date({ms})/"


def iso_utc(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_utc_ms(epoch: float) -> str:
    """Webhook eventDateUtc format, e.g. 2024-06-21T01:15:39.902 (UTC, no zone designator)."""
    value = dt.datetime.fromtimestamp(epoch, UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}"


def iso_utc_7(epoch: float) -> str:
    """/connections timestamp format, e.g. 2019-12-07T18:46:19.5165400."""
    value = dt.datetime.fromtimestamp(epoch, UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond:06d}0"


_MS_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")


def parse_date(value) -> dt.date | None:
    """Parse an invoice date as Xero accepts it: YYYY-MM-DD, an ISO datetime, or /Date(ms)/.

    Returns None for empty values; raises ValueError for anything unparseable.
    """
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError("not a string")
    text = value.strip()
    match = _MS_DATE.match(text)
    if match:
        epoch = int(match.group(1)) / 1000
        return dt.datetime.fromtimestamp(epoch, UTC).date()
    if len(text) >= 10 and text[4] == "-" and text[7] == "-":
        return dt.date.fromisoformat(text[:10])
    raise ValueError(f"unrecognised date {value!r}")


def parse_http_datetime(value: str) -> float | None:
    """Parse an If-Modified-Since value (ISO-8601 or RFC 1123). Naive values are UTC."""
    from email.utils import parsedate_to_datetime

    text = (value or "").strip()
    if not text:
        return None
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


# ---------------------------------------------------------------- JSON


# A Decimal goes through json's C encoder (ten times the speed of walking the document in Python) as a string marked
# with this process's random nonce, then the marks and quotes come off: the number as written, scale kept. No text
# can pass for a mark without knowing the nonce.
_NONCE = secrets.token_hex(8)
_DECIMAL_MARK = re.compile(r'"\\u0000' + _NONCE + r'(-?[0-9.]+)\\u0000"')


def _decimal_marked(value):
    if isinstance(value, Decimal):
        return f"\x00{_NONCE}{format(value, 'f')}\x00"
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(value) -> str:
    """JSON like Xero's: Decimal money keeps its scale (40.00, 2.0000)."""
    if isinstance(value, Decimal):
        return format(value, "f")
    text = json.dumps(value, default=_decimal_marked, separators=(",", ":"))
    return _DECIMAL_MARK.sub(r"\1", text)


def loads(data: bytes | str):
    """Parse request JSON with numbers as Decimal."""
    return json.loads(data, parse_float=Decimal, parse_int=Decimal)


def plain(value):
    """Convert Decimals to strings so the stdlib json module can store a document."""
    if isinstance(value, Decimal):
        return {"$d": format(value, "f")}
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dt.date):
        return {"$date": value.isoformat()}
    return value


def revive(value):
    if isinstance(value, dict):
        if len(value) == 1 and "$d" in value:
            return Decimal(value["$d"])
        if len(value) == 1 and "$date" in value:
            return dt.date.fromisoformat(value["$date"])
        return {k: revive(v) for k, v in value.items()}
    if isinstance(value, list):
        return [revive(v) for v in value]
    return value
