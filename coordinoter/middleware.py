import logging
import re
import uuid

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import add_never_cache_headers

from coordinoter.logging import request_id_var
from organisations.throttle import rate_limit_take

logger = logging.getLogger("coordinoter.http")

# Everything is served from our own origin: no CDN, no inline script.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self' {form_action}; frame-ancestors 'none'; base-uri 'self'; "
    "object-src 'none'"
)


class RequestIdMiddleware:
    """Tags every log line of a request with one id, and echoes it as X-Request-Id."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-Id", "")
        request_id = incoming if 0 < len(incoming) <= 64 and incoming.isprintable() else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-Id"] = request_id
        return response


class SecurityHeadersMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    @staticmethod
    def policy() -> str:
        # Read per request: settings may change at run time (tests point XERO_AUTHORIZE_URL at the sandbox).
        authorize = getattr(settings, "XERO_AUTHORIZE_URL", "")
        origin = "/".join(authorize.split("/")[:3]) if authorize.startswith("http") else ""
        return CONTENT_SECURITY_POLICY.format(form_action=origin).replace("  ", " ")

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", self.policy())
        response.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and not response.has_header("Cache-Control"):
            # A signed-in page holds one tenant's data: no shared cache keeps it, the back button after sign-out
            # asks the server again.
            add_never_cache_headers(response)
        return response


class RequestBoundsMiddleware:
    """Refuses, before any view or form reads the request, what no page accepts:

    - a declared body (Content-Length) larger than the path's cap: 413, without reading a byte of it. Caps are in
      settings.REQUEST_BODY_CAPS by path prefix (the CSV upload's is larger; the webhook receiver enforces its own
      WEBHOOK_MAX_BODY_BYTES and logs it), REQUEST_MAX_BODY_BYTES elsewhere. Django's DATA_UPLOAD_MAX_MEMORY_SIZE
      and DATA_UPLOAD_MAX_NUMBER_FIELDS bound what is parsed after that.
    - a query string carrying control characters (NUL and the like): 400. No filter or id ever contains one, and
      PostgreSQL refuses NUL in text, so a search for it would otherwise be a 500.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    @staticmethod
    def body_cap(path: str) -> int | None:
        caps = settings.REQUEST_BODY_CAPS
        prefix = max((p for p in caps if path.startswith(p)), key=len, default=None)
        return caps[prefix] if prefix is not None else settings.REQUEST_MAX_BODY_BYTES

    def __call__(self, request: HttpRequest) -> HttpResponse:
        cap = self.body_cap(request.path_info)
        if cap is not None:
            declared = request.META.get("CONTENT_LENGTH") or "0"
            if not (declared.isascii() and declared.isdigit()):
                return _refusal(request, 400, "That request's length could not be read.")
            if int(declared) > cap:
                return _refusal(
                    request,
                    413,
                    f"That request is too large ({int(declared) // 1024:,} KB; this page accepts up to "
                    f"{cap // 1024:,} KB).",
                )
        if any(
            _CONTROL.search(key) or _CONTROL.search(value) for key, values in request.GET.lists() for value in values
        ):
            return _refusal(request, 400, "That address contains characters no page here accepts.")
        return self.get_response(request)


# C0 controls but tab, line feed and carriage return (a textarea's value may carry those), DEL, C1 controls.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _refusal(request: HttpRequest, status: int, message: str) -> HttpResponse:
    logger.warning(
        "http.request.refused",
        extra={"event": "http.request.refused", "status": status, "path": request.path_info[:200]},
    )
    response = render(request, "error.html", {"status": status, "message": message}, status=status)
    response["Connection"] = "close"  # the unread body stays unread
    return response


class WriteRateLimitMiddleware:
    """Every signed-in write (POST, PUT, PATCH, DELETE) counts against its person: WRITE_RATE_LIMIT per
    WRITE_RATE_WINDOW_SECONDS, then 429 with a clear message. Far above what a person clicks (the batch page's polls
    are GETs), it stops a script replaying one form: retries, invoice changes, OAuth starts, renames. Tighter limits
    where one write costs more (support requests, password reset) live in their views; sign-in has its throttle."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if (
            request.method in ("POST", "PUT", "PATCH", "DELETE")
            and user is not None
            and user.is_authenticated
            and not rate_limit_take(
                scope="write",
                subject=str(user.pk),
                limit=settings.WRITE_RATE_LIMIT,
                window_seconds=settings.WRITE_RATE_WINDOW_SECONDS,
            )
        ):
            return _refusal(
                request,
                429,
                "You're sending changes faster than anyone can click. Wait a minute, then try again.",
            )
        return self.get_response(request)
