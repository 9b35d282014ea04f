"""The one front door for every Xero HTTP call (the token endpoint aside, which is oauth.py's).

    client = XeroClient(connection_id, rate_limiter=limiter)       # limiter: see types.RateLimiter
    response = client.request("PUT", "/Invoices", params={"summarizeErrors": "false"},
                              json={"Invoices": [...]}, idempotency_key=chunk.idempotency_key)
    response.body, response.status, response.correlation_id, response.min_remaining, response.duration_ms

Each call gets a fresh access token from tokens.py, adds Authorization, xero-tenant-id and Accept, passes the
rate limiter, logs `xero.http.request` (organisation, tenant, status, duration, correlation id; never a token)
and maps failures to integrations.xero.exceptions. On 401 TokenExpired it forces one refresh and retries once.
On 403 AuthenticationUnsuccessful it raises XeroTenantDisconnected and reports it (integrations.registry.xero_report);
the service listening queues a check of /connections, which marks the connection disconnected-in-Xero if the tenant
is really gone. The front door imports no task and enqueues nothing. Every call, answered or not, is counted
per organisation and minute by integrations.usage (calls, 429s, failures, the remaining quotas Xero reported): the
support console's usage chart and /metrics read it. Nothing else here writes to the database except through
tokens.py.
"""

import codecs
import functools
import logging
import os
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import orjson
import requests
from django.conf import settings

from integrations.registry import XeroReport, xero_report
from integrations.usage import record as usage_record
from integrations.xero import ratelimit, tokens
from integrations.xero.exceptions import (
    XeroAuthError,
    XeroInsufficientScope,
    XeroNotFound,
    XeroRateLimited,
    XeroRequestError,
    XeroServerError,
    XeroTenantDisconnected,
    XeroTimeout,
    XeroValidationError,
)
from integrations.xero.types import RateLimiter, XeroResponse, XeroTenantConnection

if TYPE_CHECKING:
    from integrations.models import XeroConnection

logger = logging.getLogger(__name__)

USER_AGENT = "Coordinoter/1.0 (+https://coordinoter.test)"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
_local = threading.local()


def _http() -> requests.Session:
    # requests.Session is not guaranteed thread-safe: one per thread, reused for keep-alive.
    session = getattr(_local, "session", None)
    if session is None:
        session = requests.Session()
        # The environment is read once per origin (_environment), not by requests at every request. Nor is ~/.netrc
        # read: every call carries its own Authorization, which a netrc entry would replace.
        session.trust_env = False
        _local.session = session
    return session


@functools.lru_cache(maxsize=32)
def _environment(origin: str) -> tuple[dict[str, str], bool | str]:
    """The proxies (no_proxy honoured) and CA bundle that requests would take from the environment for `origin`, as
    it does with trust_env. It reads them at every request, scanning every variable (a few per cent of a chunk's CPU);
    a process's environment does not change while it runs."""
    verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    return requests.utils.get_environ_proxies(origin), verify


class XeroClient:
    """Calls Xero for one organisation's connection (XeroConnection.pk)."""

    def __init__(
        self,
        connection_id: int,
        *,
        rate_limiter: RateLimiter | None = None,
        timeout: float | None = None,
        check_on_forbidden: bool = True,
        priority: ratelimit.Priority = ratelimit.Priority.CUSTOMER,
        loaded: "XeroConnection | None" = None,
    ) -> None:
        self.connection_id = connection_id
        # The connection's row, tokens included, as the caller just read it: the first call's token comes from it.
        self._loaded = loaded
        # Who waits for these calls (the limiter serves customers first; background shares a capped part).
        self.priority = ratelimit.Priority(priority)
        # No call path goes unlimited: a client given no limiter takes the process's (Redis, or in-process).
        self.rate_limiter = rate_limiter or ratelimit.rate_limiter()
        self.timeout = timeout or settings.XERO_HTTP_TIMEOUT_SECONDS
        # The connection check itself turns this off, so a 403 there cannot queue another check.
        self.check_on_forbidden = check_on_forbidden

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        tenant_scoped: bool = True,
    ) -> XeroResponse:
        """path: relative to XERO_API_URL ("/Invoices"), or an absolute Xero URL. Raises XeroError subclasses."""
        method = method.upper()
        url = path if path.startswith(("http://", "https://")) else settings.XERO_API_URL.rstrip("/") + path
        call = {
            "json": json,
            "params": params,
            "headers": headers,
            "idempotency_key": idempotency_key,
            "tenant_scoped": tenant_scoped,
        }
        loaded, self._loaded = self._loaded, None
        grant = tokens.access_token_get(connection_id=self.connection_id, loaded=loaded)
        for may_refresh in (True, False):
            response = self._attempt(method, url, grant, **call)
            if not (may_refresh and response.status == 401 and _token_expired(response)):
                break
            # Xero says expired although we thought it fresh (clock skew, revocation of that token): one forced
            # refresh, unless another worker already replaced the token (https://github.com/XeroAPI/xero-node/issues/370),
            # then the same request once more with only the token changed.
            grant = tokens.access_token_get(connection_id=self.connection_id, rejected_token=grant.access_token)
        try:
            return raise_for_status(response)
        except XeroServerError as exc:
            exc.keyed = bool(call["idempotency_key"])
            raise
        except XeroTenantDisconnected:
            if self.check_on_forbidden:
                # At once, not on commit: a service queues the check of /connections even if the caller rolls back.
                xero_report(XeroReport.TENANT_FORBIDDEN, connection_id=self.connection_id, at_once=True)
            raise

    def _attempt(self, method, url, grant, *, json, params, headers, idempotency_key, tenant_scoped):
        tenant_id = grant.tenant_id if tenant_scoped else ""
        ticket = self.rate_limiter.acquire(tenant_id=grant.tenant_id, priority=self.priority)
        try:
            response = send(
                method,
                url,
                access_token=grant.access_token,
                tenant_id=tenant_id,
                json=json,
                params=params,
                headers=headers,
                idempotency_key=idempotency_key,
                timeout=self.timeout,
                log_context={"organisation_id": grant.organisation_id, "tenant_id": grant.tenant_id},
                priority=self.priority,
            )
        finally:
            self.rate_limiter.release(tenant_id=grant.tenant_id, ticket=ticket)
        self.rate_limiter.observe(tenant_id=grant.tenant_id, response=response)
        return response

    def get(self, path: str, **kwargs: Any) -> XeroResponse:
        return self.request("GET", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> XeroResponse:
        return self.request("PUT", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> XeroResponse:
        return self.request("POST", path, **kwargs)

    def organisation(self) -> dict[str, Any]:
        """GET /Organisation: name, ShortCode, BaseCurrency... (accounting.settings scope)."""
        from integrations.xero import accounting

        return accounting.first(accounting.organisation_get(self), "Organisations")

    def tenant_connections(self) -> list[XeroTenantConnection]:
        """GET /connections with this connection's token: every tenant the Xero user has connected."""
        response = self.request("GET", settings.XERO_CONNECTIONS_URL, tenant_scoped=False)
        return [XeroTenantConnection.from_json(item) for item in (response.body or [])]


def xero_request(
    connection_id: int,
    method: str,
    path: str,
    *,
    json: Any = None,
    params: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    idempotency_key: str | None = None,
    rate_limiter: RateLimiter | None = None,
) -> XeroResponse:
    return XeroClient(connection_id, rate_limiter=rate_limiter).request(
        method, path, json=json, params=params, headers=headers, idempotency_key=idempotency_key
    )


# ---------------------------------------------------------------- calls made with a bare access token
# The connect flow uses these before any XeroConnection holds the token (and to clean up unchosen tenants).


def connections_list(
    *, access_token: str, log_context: Mapping[str, Any] | None = None, auth_event_id: str = ""
) -> list[XeroTenantConnection]:
    params = {"authEventId": auth_event_id} if auth_event_id else None
    response = raise_for_status(
        send("GET", settings.XERO_CONNECTIONS_URL, access_token=access_token, params=params, log_context=log_context)
    )
    return [XeroTenantConnection.from_json(item) for item in (response.body or [])]


def connection_delete(*, access_token: str, connection_id: str, log_context: Mapping[str, Any] | None = None) -> bool:
    """DELETE /connections/{id} (the connection id, never the tenant id: that gets a 403,
    https://github.com/XeroAPI/xero-node/issues/403). True when deleted, False when it was already gone."""
    url = settings.XERO_CONNECTIONS_URL.rstrip("/") + "/" + connection_id
    response = send("DELETE", url, access_token=access_token, log_context=log_context)
    if response.status == 404:
        return False
    raise_for_status(response)
    return True


def organisation_get(
    *, access_token: str, tenant_id: str, log_context: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    response = raise_for_status(
        send(
            "GET",
            settings.XERO_API_URL.rstrip("/") + "/Organisation",
            access_token=access_token,
            tenant_id=tenant_id,
            log_context=log_context,
        )
    )
    organisations = (response.body or {}).get("Organisations") or [{}]
    return organisations[0]


# ---------------------------------------------------------------- the wire


def _json_body(raw: requests.Response) -> Any:
    """The answer's JSON, or None when it is not JSON (an HTML error page). orjson reads UTF-8, which Xero sends (a
    byte-order mark before it is skipped); another charset goes through requests' own detection."""
    try:
        return orjson.loads(raw.content.removeprefix(codecs.BOM_UTF8))
    except orjson.JSONDecodeError:
        pass
    try:
        return raw.json()
    except ValueError:
        return None


def send(
    method: str,
    url: str,
    *,
    access_token: str,
    tenant_id: str = "",
    json: Any = None,
    params: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    idempotency_key: str | None = None,
    timeout: float | None = None,
    log_context: Mapping[str, Any] | None = None,
    priority: str = "customer",
) -> XeroResponse:
    """One HTTP exchange with Xero. Returns the response whatever its status; raises XeroTimeout only. `priority`
    (the call's class) is counted in the usage rows."""
    method = method.upper()
    outgoing = {"Accept": "application/json", "User-Agent": USER_AGENT, **(headers or {})}
    outgoing["Authorization"] = f"Bearer {access_token}"
    if tenant_id:
        outgoing["xero-tenant-id"] = tenant_id
    if idempotency_key:
        # Xero keeps a key for about 6 minutes and allows at most 128 characters
        # (https://developer.xero.com/documentation/guides/idempotent-requests/idempotency/).
        if len(idempotency_key) > 128:
            raise ValueError("Xero's Idempotency-Key is at most 128 characters.")
        outgoing["Idempotency-Key"] = idempotency_key
    data = None
    if json is not None:
        # orjson: a chunk's 50 invoices encode in a tenth of the standard library's time (and its answer, below,
        # decodes in a third). Compact, and UTF-8 as it is rather than \u escapes: the same JSON to Xero.
        data = orjson.dumps(json)
        outgoing["Content-Type"] = "application/json"
    parts = urlsplit(url)
    path = parts.path
    proxies, verify = _environment(f"{parts.scheme}://{parts.netloc}")
    context = dict(log_context or {})
    started = time.monotonic()
    try:
        raw = _http().request(
            method,
            url,
            data=data,
            params=params,
            headers=outgoing,
            timeout=timeout or settings.XERO_HTTP_TIMEOUT_SECONDS,
            allow_redirects=False,
            proxies=dict(proxies),  # requests may add to it
            verify=verify,
        )
    except requests.RequestException as exc:
        duration_ms = int((time.monotonic() - started) * 1000)
        unknown = method not in SAFE_METHODS and not _never_sent(exc)
        logger.warning(
            "xero.http.no_response",
            extra={
                "event": "xero.http.no_response",
                "method": method,
                "path": path,
                "duration_ms": duration_ms,
                "error": type(exc).__name__,
                "outcome_unknown": unknown,
                **context,
            },
        )
        usage_record.xero_call_recorded(organisation_id=context.get("organisation_id"), status=None, priority=priority)
        raise XeroTimeout(
            f"Xero did not answer {method} {path} ({type(exc).__name__}).", outcome_unknown=unknown
        ) from None
    duration_ms = int((time.monotonic() - started) * 1000)
    body: Any = None
    if raw.content:
        body = _json_body(raw)
    response = XeroResponse(
        status=raw.status_code,
        body=body,
        headers=dict(raw.headers),
        correlation_id=raw.headers.get("Xero-Correlation-Id", ""),
        duration_ms=duration_ms,
        method=method,
        path=path,
    )
    logger.info(
        "xero.http.request",
        extra={
            "event": "xero.http.request",
            "method": method,
            "path": path,
            "status": raw.status_code,
            "duration_ms": duration_ms,
            "correlation_id": response.correlation_id,
            "min_remaining": response.min_remaining,
            "day_remaining": response.day_remaining,
            "app_min_remaining": response.app_min_remaining,
            "priority": str(priority),
            **context,
        },
    )
    usage_record.xero_call_recorded(
        organisation_id=context.get("organisation_id"),
        status=raw.status_code,
        min_remaining=response.min_remaining,
        day_remaining=response.day_remaining,
        priority=priority,
    )
    return response


def _never_sent(exc: requests.RequestException) -> bool:
    """True when the request certainly never reached Xero (no connection was made)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if isinstance(exc, requests.ConnectionError):
        reason = str(exc.args[0] if exc.args else exc)
        return "NewConnectionError" in reason or "Failed to establish" in reason or "NameResolution" in reason
    return False


def _detail(response: XeroResponse) -> str:
    body = response.body
    if isinstance(body, dict):
        for key in ("Detail", "detail", "Message", "message", "Title", "title"):
            if body.get(key):
                return str(body[key])[:300]
    return ""


def _token_expired(response: XeroResponse) -> bool:
    # Xero's expired-token 401 carries "TokenExpired" in Detail (https://github.com/XeroAPI/xero-node/issues/370).
    return "TokenExpired" in _detail(response) or "token expired" in response.headers.get("WWW-Authenticate", "")


def raise_for_status(response: XeroResponse) -> XeroResponse:
    status = response.status
    if status < 400:
        return response
    detail = _detail(response)
    where = f"{response.method} {response.path}".strip()
    kwargs = {"status": status, "correlation_id": response.correlation_id, "detail": detail}
    challenge = response.headers.get("WWW-Authenticate", "")
    if "insufficient_scope" in challenge:
        raise XeroInsufficientScope(f"Xero says the grant lacks a scope for {where}.", **kwargs)
    if status == 400:
        body = response.body if isinstance(response.body, dict) else {}
        if body.get("Type") == "ValidationException" or body.get("Elements"):
            raise XeroValidationError(
                f"Xero rejected {where}: {body.get('Message') or 'validation failed'}",
                elements=list(body.get("Elements") or []),
                error_number=body.get("ErrorNumber"),
                correlation_id=response.correlation_id,
                body=body,
            )
        raise XeroRequestError(f"Xero answered 400 to {where}: {detail}", **kwargs)
    if status == 401:
        raise XeroAuthError(f"Xero refused the access token for {where}: {detail}", **kwargs)
    if status == 403:
        if "AuthenticationUnsuccessful" in detail:
            # Tenant disconnected, org deleted, demo company reset, or a wrong tenant header
            # (https://github.com/XeroAPI/Xero-OpenAPI/issues/585).
            raise XeroTenantDisconnected(
                f"Xero refused {where} for this tenant (AuthenticationUnsuccessful).", **kwargs
            )
        raise XeroAuthError(f"Xero answered 403 to {where}: {detail}", **kwargs)
    if status == 404:
        raise XeroNotFound(f"Xero found nothing at {where}.", **kwargs)
    if status == 429:
        raise XeroRateLimited(
            f"Xero rate limit hit ({response.rate_limit_problem or 'unknown'}) on {where}.",
            retry_after=response.retry_after if response.retry_after is not None else 60,
            problem=response.rate_limit_problem,
            correlation_id=response.correlation_id,
        )
    if status >= 500:
        raise XeroServerError(f"Xero answered {status} to {where}.", retry_after=response.retry_after, **kwargs)
    raise XeroRequestError(f"Xero answered {status} to {where}: {detail}", **kwargs)
