"""Helpers for test suites: run the sandbox as a subprocess and drive it over real HTTP.

    from xero_sandbox.testing import start_sandbox, complete_consent

    sandbox = start_sandbox(time_scale=60, webhook_url="http://127.0.0.1:9000/hooks")
    url = sandbox.authorize_url(scope="offline_access openid accounting.invoices", state="xyz")
    callback = complete_consent(url, tenants=["Koala Coffee Roasters (AU)"])  # -> redirect URL with code
    ...
    sandbox.stop()

Only the standard library and ``requests`` are used here.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import requests

from .config import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_REDIRECT_URIS
from .seed import AU_ID, DEMO_EMAIL, DEMO_PASSWORD, UK_ID

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SCOPE = "offline_access openid profile email accounting.invoices accounting.contacts accounting.settings"

__all__ = [
    "SandboxHandle",
    "start_sandbox",
    "complete_consent",
    "pkce_pair",
    "AU_ID",
    "UK_ID",
    "DEMO_EMAIL",
    "DEMO_PASSWORD",
    "DEFAULT_SCOPE",
    "SandboxError",
]


class SandboxError(RuntimeError):
    pass


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge)."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


# ---------------------------------------------------------------- consent without a browser


class _Forms(HTMLParser):
    def __init__(self):
        super().__init__()
        self.forms: list = []
        self._current = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self._current = {"action": attrs.get("action", ""), "id": attrs.get("id"), "inputs": []}
            self.forms.append(self._current)
        elif tag == "input" and self._current is not None:
            self._current["inputs"].append(attrs)

    def handle_endtag(self, tag):
        if tag == "form":
            self._current = None


def _form(html: str, form_id: str) -> dict | None:
    parser = _Forms()
    parser.feed(html)
    for form in parser.forms:
        if form["id"] == form_id:
            return form
    return None


def _error_text(html: str) -> str:
    match = re.search(r'class="error">(.*?)<', html, re.S)
    return match.group(1).strip() if match else html[:300]


def complete_consent(
    authorize_url: str,
    email: str = DEMO_EMAIL,
    password: str = DEMO_PASSWORD,
    tenants=None,
    allow: bool = True,
    session: requests.Session | None = None,
    timeout: float = 10.0,
) -> str:
    """Log in, consent and pick organisations on the sandbox's authorize pages, over HTTP.

    ``tenants``: None picks every organisation offered; otherwise a list of tenant ids, organisation
    names, or case-insensitive parts of names (e.g. "Koala", "(UK)"). ``allow=False`` presses Cancel.
    Returns the redirect URL the browser would be sent to (with code and state, or error=access_denied).
    Raises SandboxError if the sandbox shows an error page instead of redirecting.
    """
    http = session or requests.Session()
    page = http.get(authorize_url, allow_redirects=False, timeout=timeout)
    if page.is_redirect:
        return page.headers["Location"]
    login = _form(page.text, "login-form")
    if login is not None:
        fields = {i["name"]: i.get("value", "") for i in login["inputs"] if i.get("type") == "hidden"}
        fields.update(email=email, password=password)
        page = http.post(urljoin(authorize_url, login["action"]), data=fields, allow_redirects=False, timeout=timeout)
        if page.is_redirect:
            return page.headers["Location"]
    consent = _form(page.text, "consent-form")
    if consent is None:
        raise SandboxError(f"sandbox did not show the consent page: {_error_text(page.text)}")
    fields: dict = {i["name"]: i.get("value", "") for i in consent["inputs"] if i.get("type") == "hidden"}
    offered = [i for i in consent["inputs"] if i.get("name") == "tenant"]
    if tenants is None:
        chosen = [i["value"] for i in offered]
        if offered and offered[0].get("type") == "radio":
            chosen = chosen[:1]
    else:
        chosen = []
        for wanted in tenants:
            text = str(wanted).lower()
            matches = [i["value"] for i in offered if text in (i["value"].lower(), i.get("data-name", "").lower())]
            matches = matches or [i["value"] for i in offered if text in i.get("data-name", "").lower()]
            if not matches:
                raise SandboxError(f"organisation {wanted!r} is not offered on the consent page")
            chosen.append(matches[0])
    data = list(fields.items()) + [("tenant", value) for value in chosen]
    data.append(("action", "allow" if allow else "cancel"))
    result = http.post(urljoin(authorize_url, consent["action"]), data=data, allow_redirects=False, timeout=timeout)
    if not result.is_redirect:
        raise SandboxError(f"consent was not accepted: {_error_text(result.text)}")
    return result.headers["Location"]


# ---------------------------------------------------------------- the subprocess handle


class SandboxHandle:
    def __init__(self, process: subprocess.Popen, url: str, options: dict, log_path: str):
        self.process = process
        self.url = url.rstrip("/")
        self.options = options
        self.log_path = log_path
        self.client_id = options.get("client_id", DEFAULT_CLIENT_ID)
        self.client_secret = options.get("client_secret", DEFAULT_CLIENT_SECRET)
        self.redirect_uris = list(options.get("redirect_uris") or DEFAULT_REDIRECT_URIS)
        self.http = requests.Session()
        admin_token = options.get("admin_token")
        if admin_token:
            self.http.headers["X-Sandbox-Admin-Token"] = admin_token

    # endpoints (Xero's paths on one host)
    @property
    def authorize_endpoint(self) -> str:
        return self.url + "/identity/connect/authorize"

    @property
    def token_endpoint(self) -> str:
        return self.url + "/connect/token"

    @property
    def revocation_endpoint(self) -> str:
        return self.url + "/connect/revocation"

    @property
    def connections_url(self) -> str:
        return self.url + "/connections"

    @property
    def api_url(self) -> str:
        return self.url + "/api.xro/2.0"

    # ------------------------------------------------------------ admin API
    def admin(self, method: str, path: str, json=None, expected: int | tuple = (200, 201, 204)):
        """Call /_sandbox{path}; returns parsed JSON (or None for 204)."""
        response = self.http.request(method, self.url + "/_sandbox" + path, json=json, timeout=30)
        expected = (expected,) if isinstance(expected, int) else expected
        if response.status_code not in expected:
            raise SandboxError(f"{method} {path} -> {response.status_code}: {response.text[:500]}")
        return response.json() if response.content else None

    def reset(self, keep_settings: bool = False) -> dict:
        return self.admin("POST", "/reset", {"keep_settings": keep_settings})

    def state(self) -> dict:
        return self.admin("GET", "/state")

    def settings(self, **changes) -> dict:
        return self.admin("POST", "/settings", changes) if changes else self.admin("GET", "/settings")

    def tenants(self) -> list:
        return self.admin("GET", "/tenants")

    def tenant_id(self, key: str) -> str:
        """Tenant id from a name, short code, country code (AU / GB) or id."""
        for tenant in self.tenants():
            if key.lower() in (
                tenant["tenantId"],
                tenant["name"].lower(),
                tenant["shortCode"].lower(),
                tenant["countryCode"].lower(),
            ):
                return tenant["tenantId"]
        raise SandboxError(f"unknown tenant {key!r}")

    def invoices(self, tenant: str) -> list:
        return self.admin("GET", f"/tenants/{tenant}/invoices")

    def contacts(self, tenant: str) -> list:
        return self.admin("GET", f"/tenants/{tenant}/contacts")

    def inject_fault(
        self,
        kind: str,
        count: int | None = None,
        share: float | None = None,
        method: str | None = None,
        path: str | None = None,
        tenant: str | None = None,
        hold: float | None = None,
        problem: str | None = None,
    ) -> dict:
        rule = {
            "kind": kind,
            "count": count,
            "share": share,
            "method": method,
            "path": path,
            "tenant": tenant,
            "problem": problem,
        }
        if hold is not None:
            rule["hold"] = hold
        return self.admin("POST", "/faults", {k: v for k, v in rule.items() if v is not None})

    def clear_faults(self) -> None:
        self.admin("DELETE", "/faults")

    def faults(self) -> list:
        return self.admin("GET", "/faults")

    def expire_tokens(self, tenant_id: str | None = None, user: str | None = None) -> int:
        body = {k: v for k, v in (("tenant_id", tenant_id), ("user", user)) if v}
        return self.admin("POST", "/tokens/expire", body)["expired"]

    def advance_clock(self, seconds: float) -> dict:
        return self.admin("POST", "/clock", {"advance_seconds": seconds})

    def set_webhook(self, url: str | None = None, key: str | None = None, **more) -> dict:
        changes = dict(more)
        if url is not None:
            changes["webhook_url"] = url
        if key is not None:
            changes["webhook_key"] = key
        return self.settings(**changes)

    def intent_to_receive(self, url: str | None = None, key: str | None = None) -> dict:
        return self.admin("POST", "/webhooks/intent-to-receive", {k: v for k, v in (("url", url), ("key", key)) if v})

    def webhook_deliveries(self) -> list:
        return self.admin("GET", "/webhooks/deliveries")

    def flush_webhooks(self, timeout: float = 10.0) -> dict:
        return self.admin("POST", "/webhooks/flush", {"timeout": timeout})

    def disconnect_tenant(self, tenant_id: str) -> int:
        return self.admin("POST", "/connections/disconnect", {"tenant_id": tenant_id})["disconnected"]

    def requests_log(self) -> list:
        return self.admin("GET", "/requests")

    # ------------------------------------------------------------ OAuth helpers
    def authorize_url(
        self,
        scope: str = DEFAULT_SCOPE,
        state: str | None = None,
        redirect_uri: str | None = None,
        code_challenge: str | None = None,
        **extra,
    ) -> str:
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": redirect_uri or self.redirect_uris[0],
            "scope": scope,
            "state": state or secrets.token_urlsafe(8),
        }
        if code_challenge:
            params.update(code_challenge=code_challenge, code_challenge_method="S256")
        params.update(extra)
        return self.authorize_endpoint + "?" + urlencode(params)

    def connect(
        self,
        scope: str = DEFAULT_SCOPE,
        tenants=None,
        email: str = DEMO_EMAIL,
        password: str = DEMO_PASSWORD,
        redirect_uri: str | None = None,
    ) -> dict:
        """Run the whole authorization-code flow (with PKCE) and return the token response, plus
        ``connections`` (GET /connections filtered by this consent's authEventId)."""
        verifier, challenge = pkce_pair()
        redirect_uri = redirect_uri or self.redirect_uris[0]
        callback = complete_consent(self.authorize_url(scope, "s", redirect_uri, challenge), email, password, tenants)
        params = {k: v[0] for k, v in parse_qs(urlsplit(callback).query).items()}
        if "code" not in params:
            raise SandboxError(f"no code in redirect: {callback}")
        response = requests.post(
            self.token_endpoint,
            auth=(self.client_id, self.client_secret),
            timeout=10,
            data={
                "grant_type": "authorization_code",
                "code": params["code"],
                "redirect_uri": redirect_uri,
                "code_verifier": verifier,
            },
        )
        if response.status_code != 200:
            raise SandboxError(f"token exchange failed: {response.status_code} {response.text}")
        tokens = response.json()
        claims = decode_jwt_unverified(tokens["access_token"])
        connections = requests.get(
            self.connections_url,
            timeout=10,
            params={"authEventId": claims["authentication_event_id"]},
            headers={"Authorization": f"Bearer {tokens['access_token']}"},
        ).json()
        tokens["connections"] = connections
        return tokens

    # ------------------------------------------------------------ lifecycle
    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def decode_jwt_unverified(token: str) -> dict:
    import json

    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


FLAG_OPTIONS = {
    "client_id": "--client-id",
    "client_secret": "--client-secret",
    "webhook_url": "--webhook-url",
    "webhook_key": "--webhook-key",
    "time_scale": "--time-scale",
    "state": "--state",
    "latency_ms": "--latency-ms",
    "latency_per_invoice_ms": "--latency-per-invoice-ms",
    "access_token_lifetime": "--access-token-lifetime",
    "extra_orgs": "--extra-orgs",
    "scope_set": "--scope-set",
    "app_name": "--app-name",
    "admin_token": "--admin-token",
    "webhook_batch_ms": "--webhook-batch-ms",
    "public_url": "--public-url",
}


def start_sandbox(host: str = "127.0.0.1", port: int = 0, startup_timeout: float = 20.0, **options) -> SandboxHandle:
    """Start ``python -m xero_sandbox`` in its own process on a free loopback port and wait until it
    answers. Options: client_id, client_secret, redirect_uris (list), webhook_url, webhook_key,
    time_scale, state, latency_ms, latency_per_invoice_ms, access_token_lifetime, scope_set,
    app_name, admin_token, webhook_batch_ms, public_url, rate_limits (dict), faults (list of specs),
    extra_args (list), env (dict), quiet (default True)."""
    args = [sys.executable, "-m", "xero_sandbox", "--host", host, "--port", str(port)]
    for name, flag in FLAG_OPTIONS.items():
        if options.get(name) is not None:
            args += [flag, str(options[name])]
    for uri in options.get("redirect_uris") or []:
        args += ["--redirect-uri", uri]
    if options.get("rate_limits"):
        args += ["--rate-limits", ",".join(f"{k}={v}" for k, v in options["rate_limits"].items())]
    for spec in options.get("faults") or []:
        args += ["--fault", spec]
    if options.get("quiet", True):
        args.append("--quiet")
    args += list(options.get("extra_args") or [])
    env = {k: v for k, v in os.environ.items() if not k.startswith("XERO_SANDBOX_")}
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    env.update(options.get("env") or {})
    log = tempfile.NamedTemporaryFile(prefix="xero-sandbox-", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen(
        args, cwd=str(REPO_ROOT), env=env, stdout=subprocess.PIPE, stderr=log, text=True, bufsize=1
    )
    found: dict = {}
    ready = threading.Event()

    def reader():
        for line in process.stdout:
            if "url" not in found:
                match = re.search(r"listening on (\S+)", line)
                if match:
                    found["url"] = match.group(1)
                    ready.set()
        ready.set()

    threading.Thread(target=reader, daemon=True, name="xero-sandbox-stdout").start()
    ready.wait(startup_timeout)
    if "url" not in found:
        process.kill()
        raise SandboxError(f"sandbox did not start; log: {Path(log.name).read_text()[-2000:]}")
    handle = SandboxHandle(process, found["url"], options, log.name)
    deadline = time.monotonic() + startup_timeout
    while True:
        try:
            handle.admin("GET", "/health")
            return handle
        except (requests.ConnectionError, SandboxError):
            if time.monotonic() > deadline:
                handle.stop()
                raise
            time.sleep(0.05)
