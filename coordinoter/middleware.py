import uuid

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers

from coordinoter.logging import request_id_var

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
