"""Typed values passed across the Xero front door. Token fields are excluded from repr."""

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class TokenSet:
    """What Xero's token endpoint returned (code exchange or refresh)."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_at: dt.datetime
    scopes: tuple[str, ...] = ()
    # From the access token's JWT claims (empty when the token is not a JWT).
    authentication_event_id: str = ""
    xero_user_id: str = ""
    # Only with the openid scope; checked by integrations/xero/openid.py, never stored.
    id_token: str = field(default="", repr=False)


@dataclass(frozen=True)
class AccessGrant:
    """A usable access token for one connection, as handed to the client by the token store."""

    access_token: str = field(repr=False)
    connection_id: int
    organisation_id: int
    tenant_id: str
    expires_at: dt.datetime | None


@dataclass(frozen=True)
class XeroTenantConnection:
    """One entry of GET /connections (https://developer.xero.com/documentation/guides/oauth2/tenants)."""

    id: str
    tenant_id: str
    tenant_type: str
    tenant_name: str
    auth_event_id: str
    created_date_utc: dt.datetime | None
    updated_date_utc: dt.datetime | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "XeroTenantConnection":
        return cls(
            id=str(data.get("id") or "").lower(),
            tenant_id=str(data.get("tenantId") or "").lower(),
            tenant_type=str(data.get("tenantType") or ""),
            tenant_name=str(data.get("tenantName") or ""),
            auth_event_id=str(data.get("authEventId") or "").lower(),
            created_date_utc=_parse_utc(data.get("createdDateUtc")),
            updated_date_utc=_parse_utc(data.get("updatedDateUtc")),
        )

    def as_json(self) -> dict[str, str]:
        return {
            "id": self.id,
            "tenant_id": self.tenant_id,
            "tenant_type": self.tenant_type,
            "tenant_name": self.tenant_name,
            "auth_event_id": self.auth_event_id,
        }


def _parse_utc(value: Any) -> dt.datetime | None:
    # Xero writes 7 fractional digits and no zone ("2019-07-09T23:40:30.1833130"); the value is UTC.
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class XeroResponse:
    """One Xero answer: status, parsed JSON body (None when empty), headers, correlation id, duration."""

    status: int
    body: Any
    headers: Mapping[str, str]
    correlation_id: str
    duration_ms: int
    method: str = ""
    path: str = ""

    def _int_header(self, name: str) -> int | None:
        raw = self.headers.get(name)
        try:
            return int(raw) if raw is not None else None
        except ValueError:
            return None

    @property
    def min_remaining(self) -> int | None:
        return self._int_header("X-MinLimit-Remaining")

    @property
    def day_remaining(self) -> int | None:
        return self._int_header("X-DayLimit-Remaining")

    @property
    def app_min_remaining(self) -> int | None:
        return self._int_header("X-AppMinLimit-Remaining")

    @property
    def retry_after(self) -> int | None:
        return self._int_header("Retry-After")

    @property
    def rate_limit_problem(self) -> str:
        return self.headers.get("X-Rate-Limit-Problem", "") or ""


class RateLimiter(Protocol):
    """The hook the push pipeline supplies (integrations/xero/ratelimit.py). `acquire` may raise
    XeroRateLimited to refuse without calling Xero; `release` always follows a successful `acquire`;
    `observe` sees every response (remaining-quota headers, 429s). `priority` is the call's class
    (ratelimit.Priority: customer, webhook, reconcile, health)."""

    def acquire(self, *, tenant_id: str, priority: str = "customer") -> Any: ...

    def release(self, *, tenant_id: str, ticket: Any) -> None: ...

    def observe(self, *, tenant_id: str, response: XeroResponse) -> None: ...


class NoRateLimit:
    def acquire(self, *, tenant_id: str, priority: str = "customer") -> None:
        return None

    def release(self, *, tenant_id: str, ticket: Any) -> None:
        return None

    def observe(self, *, tenant_id: str, response: XeroResponse) -> None:
        return None
