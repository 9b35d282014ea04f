"""The small, typed family of errors every Xero call can raise.

Messages carry the HTTP status, Xero's own error text and the Xero-Correlation-Id: never a token, a code or
a request body. Catch `XeroError` for "anything Xero", or the subclasses for what you can act on:

    XeroError
    ├── XeroNotConnected        no usable connection (never connected, disconnected, mid-disconnect)
    ├── XeroAuthError           401 that a refresh did not cure, or a scope the grant lacks
    │   ├── XeroNeedsReconnect  the refresh token is dead (invalid_grant): an admin must reconnect
    │   ├── XeroTenantDisconnected  403 AuthenticationUnsuccessful: the tenant is no longer connected
    │   └── XeroInsufficientScope   the grant lacks a scope this call needs
    ├── XeroOAuthError          the token or revocation endpoint answered an OAuth error (error code kept)
    ├── XeroRateLimited         429: retry_after seconds, problem = minute | day | concurrent | appminute
    ├── XeroServerError         5xx or an unreadable answer
    ├── XeroTimeout             no answer; outcome_unknown says whether a write may have happened
    ├── XeroValidationError     400 ValidationException, with Xero's Elements
    ├── XeroNotFound            404
    └── XeroRequestError        any other 4xx
"""

from typing import Any


class XeroError(Exception):
    def __init__(self, message: str, *, status: int | None = None, correlation_id: str = "", detail: str = "") -> None:
        self.status = status
        self.correlation_id = correlation_id
        self.detail = detail
        suffix = f" (Xero-Correlation-Id {correlation_id})" if correlation_id else ""
        super().__init__(message + suffix)


class XeroNotConnected(XeroError):
    pass


class XeroAuthError(XeroError):
    pass


class XeroNeedsReconnect(XeroAuthError):
    pass


class XeroTenantDisconnected(XeroAuthError):
    pass


class XeroInsufficientScope(XeroAuthError):
    pass


class XeroOAuthError(XeroError):
    def __init__(self, message: str, *, error: str, status: int | None = None, description: str = "") -> None:
        self.error = error
        self.description = description
        super().__init__(message, status=status, detail=description)


class XeroRateLimited(XeroError):
    def __init__(
        self, message: str, *, retry_after: int, problem: str = "", status: int | None = 429, correlation_id: str = ""
    ) -> None:
        self.retry_after = retry_after
        self.problem = problem
        super().__init__(message, status=status, correlation_id=correlation_id)


class XeroServerError(XeroError):
    def __init__(self, message: str, *, retry_after: int | None = None, keyed: bool = False, **kwargs: Any) -> None:
        self.retry_after = retry_after
        # The request carried an Idempotency-Key: Xero keeps its answer (a 500 too) under it for six minutes.
        self.keyed = keyed
        super().__init__(message, **kwargs)


class XeroTimeout(XeroError):
    def __init__(self, message: str, *, outcome_unknown: bool) -> None:
        self.outcome_unknown = outcome_unknown
        super().__init__(message)


class XeroValidationError(XeroError):
    def __init__(
        self,
        message: str,
        *,
        elements: list[dict],
        error_number: int | None = None,
        status: int | None = 400,
        correlation_id: str = "",
        body: Any = None,
    ) -> None:
        self.elements = elements
        self.error_number = error_number
        self.body = body
        super().__init__(message, status=status, correlation_id=correlation_id, detail=message)


class XeroNotFound(XeroError):
    pass


class XeroRequestError(XeroError):
    pass
