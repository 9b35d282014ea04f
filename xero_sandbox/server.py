"""HTTP plumbing: requests, responses, routing, the threaded server and the App that ties it together."""

from __future__ import annotations

import json
import re
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from .util import dumps, new_id


class Request:
    def __init__(self, method: str, target: str, headers, body: bytes, client: str = ""):
        parts = urlsplit(target)
        self.method = method.upper()
        self.path = parts.path or "/"
        self.raw_query = parts.query
        self.query = {k: v for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        self.headers = headers
        self.body = body
        self.client = client
        self.correlation_id = new_id()
        self.tenant_id = None

    def q(self, name: str, default: str | None = None) -> str | None:
        """First value of a query parameter, matched case-insensitively like Xero does."""
        for key, values in self.query.items():
            if key.lower() == name.lower():
                return values[0]
        return default

    def header(self, name: str, default: str | None = None) -> str | None:
        value = self.headers.get(name)
        return value if value is not None else default

    def form(self) -> dict:
        return {k: v[0] for k, v in parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True).items()}

    def form_lists(self) -> dict:
        return parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)

    def cookie(self, name: str) -> str | None:
        raw = self.headers.get("Cookie") or ""
        for part in raw.split(";"):
            key, _, value = part.strip().partition("=")
            if key == name:
                return value
        return None


class Response:
    def __init__(
        self,
        status: int = 200,
        body: bytes | str = b"",
        content_type: str | None = None,
        headers: list | None = None,
    ):
        self.status = status
        self.body = body.encode("utf-8") if isinstance(body, str) else body
        self.headers: list = list(headers or [])
        if content_type:
            self.headers.append(("Content-Type", content_type))
        self.action: str | None = None  # "drop" closes without a response; "hold" waits first
        self.hold_seconds = 0.0

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def set_header(self, name: str, value: str) -> None:
        self.headers = [(k, v) for k, v in self.headers if k.lower() != name.lower()]
        self.headers.append((name, value))


def json_response(data, status: int = 200, headers: list | None = None) -> Response:
    return Response(status, dumps(data), "application/json; charset=utf-8", headers)


def plain_json(data, status: int = 200) -> Response:
    return Response(status, json.dumps(data, default=str, indent=1), "application/json; charset=utf-8")


def html_response(text: str, status: int = 200, headers: list | None = None) -> Response:
    return Response(status, text, "text/html; charset=utf-8", headers)


def redirect(location: str, status: int = 302, headers: list | None = None) -> Response:
    response = Response(status, b"", None, headers)
    response.headers.append(("Location", location))
    return response


class Router:
    def __init__(self):
        self.routes: list = []

    def add(self, method: str, pattern: str, handler) -> None:
        regex = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", re.escape(pattern).replace(r"\{", "{").replace(r"\}", "}"))
        self.routes.append((method.upper(), re.compile(regex + "/?$", re.IGNORECASE), handler))

    def match(self, method: str, path: str):
        allowed = False
        for route_method, regex, handler in self.routes:
            found = regex.match(path)
            if found:
                if route_method == method or (route_method == "GET" and method == "HEAD"):
                    return handler, found.groupdict()
                allowed = True
        return None, allowed


def not_found() -> Response:
    return json_response(
        {
            "Type": None,
            "Title": "NotFound",
            "Status": 404,
            "Detail": "The resource you're looking for cannot be found",
        },
        404,
    )


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "XeroSandbox/1.0"
    disable_nagle_algorithm = True
    wbufsize = 65536  # headers and body leave in one write
    app = None  # set by make_server

    def log_message(self, fmt, *args):  # noqa: D401 - stdlib signature
        if not self.app.config.quiet:
            sys.stderr.write(f"{self.address_string()} - {fmt % args}\n")

    def _handle(self):
        app = self.app
        length = int(self.headers.get("Content-Length") or 0)
        limit = app.settings.s.max_body_bytes
        if length > limit:
            response = json_response(
                {
                    "Title": "Request Entity Too Large",
                    "Status": 413,
                    "Detail": f"The request body exceeds the {limit} byte limit",
                },
                413,
            )
            response.set_header("Connection", "close")
            self.close_connection = True
            request = Request(self.command, self.path, self.headers, b"", self.client_address[0])
            self._send(request, response)
            return
        body = self.rfile.read(length) if length else b""
        request = Request(self.command, self.path, self.headers, body, self.client_address[0])
        try:
            response = app.dispatch(request)
        except Exception as exc:  # pragma: no cover - defensive
            import traceback

            traceback.print_exc()
            response = json_response({"Title": "An error occurred", "Status": 500, "Detail": str(exc)}, 500)
        if response.action == "hold":
            time.sleep(response.hold_seconds)
            self.close_connection = True
            self._abort()
            return
        if response.action == "drop":
            self.close_connection = True
            self._abort()
            return
        self._send(request, response)

    def _abort(self):
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _send(self, request: Request, response: Response):
        self.send_response(response.status)
        if not response.header("Xero-Correlation-Id"):
            response.headers.append(("Xero-Correlation-Id", request.correlation_id))
        for key, value in response.headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD" and response.body:
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle


class SandboxHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class App:
    """Owns the state, the settings and every component; dispatches requests to the router."""

    def __init__(self, config):
        from . import accounting, admin, faults, idempotency, identity, ratelimit, seed, ui, webhooks
        from .config import SettingsBox
        from .jwt import SigningKeys
        from .store import Clock, Store

        self.config = config
        self.settings = SettingsBox(config.settings)
        self.clock = Clock()
        self.store = Store(config.state)
        self.base_url = config.base_url()
        self.keys = SigningKeys(self.store)
        self.limiter = ratelimit.RateLimiter(self.settings)
        self.faults = faults.FaultInjector()
        for spec in config.faults:
            self.faults.add(faults.parse_spec(spec))
        self.idempotency = idempotency.IdempotencyCache(self.settings)
        self.webhooks = webhooks.WebhookDispatcher(self)
        self.request_log: list = []
        self.request_log_lock = threading.Lock()
        self.router = Router()
        identity.register(self)
        accounting.register(self)
        admin.register(self)
        ui.register(self)
        if self.store.meta_get("seeded") is None:
            seed.seed(self)

    def dispatch(self, request: Request) -> Response:
        handler, params = self.router.match(request.method, request.path)
        if handler is None:
            if params:
                return json_response({"Title": "Method Not Allowed", "Status": 405}, 405)
            return not_found()
        return handler(request, **params)

    def log_request(self, request: Request, response: Response, started: float) -> None:
        entry = {
            "at": time.time(),
            "method": request.method,
            "path": request.path,
            "query": request.raw_query,
            "tenant_id": request.tenant_id,
            "status": response.status if response.action is None else response.action,
            "correlation_id": request.correlation_id,
            "idempotency_key": request.header("Idempotency-Key"),
            "ms": round((time.time() - started) * 1000, 1),
        }
        with self.request_log_lock:
            self.request_log.append(entry)
            if len(self.request_log) > 5000:
                del self.request_log[:1000]

    def reset(self) -> None:
        from . import seed

        self.faults.clear()
        self.limiter.reset()
        self.idempotency.clear()
        self.webhooks.clear()
        with self.request_log_lock:
            self.request_log.clear()
        self.clock.offset = 0.0
        self.store.wipe(keep_meta=("signing_key",))
        seed.seed(self)


def make_server(config):
    app = App(config)

    class BoundHandler(Handler):
        pass

    BoundHandler.app = app
    httpd = SandboxHTTPServer((config.host, config.port), BoundHandler)
    port = httpd.server_address[1]
    app.base_url = config.base_url(port)
    app.webhooks.start()
    return app, httpd
