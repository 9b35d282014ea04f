"""Security headers and the Content-Security-Policy on every answer (every URL of the role matrix, for every
person, errors and redirects included); pages that the CSP would break (inline script, inline style, handlers,
foreign resources); session and CSRF cookie flags in development and in production settings.

`manage.py check --deploy` on production settings is tests/test_settings.py::
test_check_deploy_is_clean_when_production_secrets_are_set.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest
from django.test import Client

from tests.factories import PASSWORD
from tests.security.conftest import client_for
from tests.security.matrix import run
from tests.security.world import ROLES
from tests.test_settings import PRODUCTION_ENV, run_manage

pytestmark = pytest.mark.django_db

CSP_DIRECTIVES = {
    "default-src": {"'self'"},
    "script-src": {"'self'"},
    "style-src": {"'self'"},
    "img-src": {"'self'", "data:"},
    "connect-src": {"'self'"},
    "frame-ancestors": {"'none'"},
    "base-uri": {"'self'"},
    "object-src": {"'none'"},
    "form-action": {"'self'", "https://login.xero.com"},
}


def csp(header: str) -> dict[str, set[str]]:
    parts = [p.strip().split() for p in header.split(";") if p.strip()]
    return {p[0]: set(p[1:]) for p in parts}


def header_problems(where: str, response, *, signed_in: bool) -> list[str]:
    expected = {
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "same-origin",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    }
    problems = [
        f"{where}: {name} is {response.get(name)!r}, not {value!r}"
        for name, value in expected.items()
        if response.get(name) != value
    ]
    if csp(response.get("Content-Security-Policy", "")) != CSP_DIRECTIVES:
        problems.append(f"{where}: CSP is {response.get('Content-Security-Policy')!r}")
    if not re.fullmatch(r"[0-9a-f]{32}", response.get("X-Request-Id", "")):
        problems.append(f"{where}: no X-Request-Id")
    if signed_in and "no-store" not in response.get("Cache-Control", ""):
        problems.append(f"{where}: a signed-in answer may be cached ({response.get('Cache-Control')!r})")
    return problems


class InlineContent(HTMLParser):
    """What a CSP of 'self' without 'unsafe-inline' blocks: inline <script>/<style>, style="", on* handlers,
    javascript: URLs, and scripts, styles or images from another origin."""

    def __init__(self):
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = {k: v or "" for k, v in attrs}
        if tag == "script" and not attrs.get("src"):
            self.found.append("inline <script>")
        if tag == "style":
            self.found.append("<style> block")
        for name, value in attrs.items():
            if name == "style":
                self.found.append(f'<{tag} style="{value[:40]}">')
            if name.startswith("on"):
                self.found.append(f"<{tag} {name}=...>")
            if value.strip().lower().startswith("javascript:"):
                self.found.append(f"<{tag} {name}=javascript:...>")
        for name in ("src", "href"):
            if (tag in ("script", "img") or (tag == "link" and attrs.get("rel") == "stylesheet")) and attrs.get(
                name, ""
            ).startswith(("http:", "https:", "//")):
                self.found.append(f"<{tag} {name}={attrs[name]}> from another origin")


@pytest.mark.parametrize("role", ROLES)
def test_every_answer_carries_the_headers_and_no_page_needs_what_the_csp_blocks_when_each_person_opens_every_url(
    world, role
):
    problems, count = [], 0
    for row, url, response in run(world, client_for(world, role), role):
        count += 1
        where = f"{row.method} {url}"
        problems += header_problems(where, response, signed_in=role != "anonymous")
        if response.get("Content-Type", "").startswith("text/html"):
            parser = InlineContent()
            parser.feed(response.content.decode())
            problems += [f"{where}: {what}" for what in parser.found]
    assert count >= 140  # every row of the matrix
    assert not problems, "\n".join(problems)


def test_session_cookie_is_httponly_and_samesite_lax_and_rotated_when_signing_in(world):
    client = Client()
    client.get("/accounts/login/")
    before = client.session.session_key
    response = client.post("/accounts/login/", {"username": world.a.admin.email, "password": PASSWORD})
    assert response.status_code == 302
    session = response.cookies["sessionid"]
    assert session["httponly"] is True and session["samesite"] == "Lax" and session["path"] == "/"
    assert session.value != before  # a new session on sign-in: a planted session id is worthless
    csrf = response.cookies.get("csrftoken") or client.cookies["csrftoken"]
    assert csrf["samesite"] == "Lax"


def test_cookies_are_secure_and_hsts_is_sent_when_production_security_settings_apply(world, settings):
    production = production_settings()
    for name in (
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "SECURE_HSTS_SECONDS",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS",
        "SECURE_HSTS_PRELOAD",
    ):
        setattr(settings, name, production[name])
    client = Client()
    response = client.post("/accounts/login/", {"username": world.a.admin.email, "password": PASSWORD}, secure=True)
    assert response.cookies["sessionid"]["secure"] is True
    assert client.cookies["csrftoken"]["secure"] is True
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"


def production_settings() -> dict:
    code = (
        "import json; from django.conf import settings as s; print(json.dumps({n: getattr(s, n, None) for n in "
        "['DEBUG', 'SESSION_COOKIE_SECURE', 'SESSION_COOKIE_HTTPONLY', 'SESSION_COOKIE_SAMESITE', "
        "'CSRF_COOKIE_SECURE', 'CSRF_COOKIE_SAMESITE', 'SECURE_SSL_REDIRECT', 'SECURE_HSTS_SECONDS', "
        "'SECURE_HSTS_INCLUDE_SUBDOMAINS', 'SECURE_HSTS_PRELOAD', 'X_FRAME_OPTIONS', "
        "'SECURE_CONTENT_TYPE_NOSNIFF', 'SECURE_REFERRER_POLICY', 'SESSION_COOKIE_AGE', 'ALLOWED_HOSTS']}))"
    )
    result = run_manage("shell", "-c", code, env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_production_settings_set_every_cookie_and_transport_flag_when_debug_is_off():
    values = production_settings()
    assert values == {
        "DEBUG": False,
        "SESSION_COOKIE_SECURE": True,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "CSRF_COOKIE_SECURE": True,
        "CSRF_COOKIE_SAMESITE": "Lax",
        "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 31536000,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_HSTS_PRELOAD": True,
        "X_FRAME_OPTIONS": "DENY",
        "SECURE_CONTENT_TYPE_NOSNIFF": True,
        "SECURE_REFERRER_POLICY": "same-origin",
        "SESSION_COOKIE_AGE": 43200,
        "ALLOWED_HOSTS": ["portal.coordinoter.example"],
    }


def test_webhook_receiver_sets_no_cookie_and_no_cache_header_when_xero_delivers(db, settings):
    response = Client().post("/integrations/xero/webhooks/", data=b'{"events":[]}', content_type="application/json")
    assert response.status_code == 401 and not response.cookies and response.content == b""
