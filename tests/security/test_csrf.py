"""CSRF: every POST form on every page (each person, each state the world puts pages in) carries the token; htmx
requests carry it in the X-CSRFToken header set on <body>; every URL refuses a POST without the token; and the
only view exempt from CSRF is Xero's webhook receiver (it is authenticated by its HMAC signature instead)."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from organisations.roles import SUPPORT_GROUP
from tests.factories import make_membership, make_user, mfa_verify_client
from tests.security.conftest import client_for
from tests.security.matrix import run
from tests.security.routes import all_routes
from tests.security.world import ROLES

pytestmark = pytest.mark.django_db

HTMX_WRITES = ("hx-post", "hx-put", "hx-patch", "hx-delete")


class Forms(HTMLParser):
    """Forms (method, action, hidden token, htmx attributes), htmx elements that write, and <body>'s hx-headers."""

    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []
        self.htmx_writes: list[dict] = []
        self.body_headers = ""
        self._form: dict | None = None

    def handle_starttag(self, tag, attrs):
        attrs = {k: v or "" for k, v in attrs}
        if tag == "body":
            self.body_headers = attrs.get("hx-headers", "")
        if tag == "form":
            self._form = {
                "method": attrs.get("method", "get").lower(),
                "action": attrs.get("action", ""),
                "token": "",
                "htmx": any(a in attrs for a in HTMX_WRITES),
            }
            self.forms.append(self._form)
        elif tag == "input" and self._form is not None and attrs.get("name") == "csrfmiddlewaretoken":
            self._form["token"] = attrs.get("value", "")
        if tag != "form" and any(a in attrs for a in HTMX_WRITES):
            self.htmx_writes.append(attrs)

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None


def parse(html: str) -> Forms:
    parser = Forms()
    parser.feed(html)
    return parser


def form_problems(url: str, html: str) -> list[str]:
    parser = parse(html)
    problems = []
    for form in parser.forms:
        where = f"{url}: form action={form['action']!r}"
        if form["method"] == "post" and not form["token"]:
            problems.append(f"{where} posts without csrfmiddlewaretoken")
        if form["method"] != "post" and form["token"]:
            problems.append(f"{where} puts the CSRF token in a GET query string")
        if form["action"].startswith(("http:", "https:", "//")):
            problems.append(f"{where} posts to another origin")
    if (parser.htmx_writes or any(f["htmx"] for f in parser.forms)) and "X-CSRFToken" not in parser.body_headers:
        problems.append(f"{url}: htmx writes without <body hx-headers X-CSRFToken>")
    if parser.body_headers and '"X-CSRFToken": ""' in parser.body_headers:
        problems.append(f"{url}: empty X-CSRFToken in hx-headers")
    return problems


def rendered_pages(world, role: str):
    client = client_for(world, role)
    for row, url, response in run(world, client, role):
        if response.get("Content-Type", "").startswith("text/html") and response.content:
            yield f"{row.method} {url}", response.content.decode()


# On every page: sign out and the help panel's support form. Pages with forms of their own, at least (a control
# that the pages rendered their real content, not an error page):
OWN_FORM_PAGES = {"anonymous": 2, "accountant": 4, "admin": 12, "other_admin": 5, "support": 4, "support_member": 8}
EVERY_PAGE = ("/accounts/logout/", "/support-requests/new/")


@pytest.mark.parametrize("role", ROLES)
def test_every_post_form_carries_the_csrf_token_when_each_person_renders_every_page(world, role):
    problems, with_forms = [], set()
    for where, html in rendered_pages(world, role):
        problems += form_problems(where, html)
        if any(f["method"] == "post" and f["action"] not in EVERY_PAGE for f in parse(html).forms):
            with_forms.add(where)
    assert not problems, "\n".join(problems)
    assert len(with_forms) >= OWN_FORM_PAGES[role], sorted(with_forms)


def test_the_organisation_switcher_carries_the_csrf_token_when_a_user_belongs_to_two(world):
    make_membership(user=world.a.admin, organisation=world.b.organisation, role="accountant")
    html = client_for(world, "admin").get("/portal/").content.decode()
    assert 'action="/organisations/switch/"' in html
    assert not form_problems("/portal/", html)


def everything_user(world):
    """Staff, support, superuser and an admin of A: no guard stops this user, so a 403 can only be CSRF."""
    user = make_user(email="root@coordinoter.test")
    user.is_staff = user.is_superuser = True
    user.save(update_fields=["is_staff", "is_superuser"])
    user.groups.add(Group.objects.get_or_create(name=SUPPORT_GROUP)[0])
    make_membership(user=user, organisation=world.a.organisation, role="admin")
    return user


def test_every_url_refuses_a_post_without_the_csrf_token_when_checks_are_enforced(world):
    from tests.security.keys import fill

    client = Client(enforce_csrf_checks=True)
    user = everything_user(world)
    client.force_login(user)
    mfa_verify_client(client, user)
    client.get("/portal/")  # the CSRF cookie is set: only the token in the request is missing
    assert "csrftoken" in client.cookies
    wrong = []
    for route in all_routes():
        url = route.url(**fill(route, world.a)) if route.kwargs else route.url()
        response = client.post(url, {"name": "x", "reason": "csrf"})
        exempt = getattr(route.callback, "csrf_exempt", False)
        refused = response.status_code == 403 and b"CSRF" in response.content
        if refused == exempt:
            wrong.append(f"{route.label} {url}: {response.status_code}")
    assert not wrong, "POST without a CSRF token not refused (or an exempt view refused):\n" + "\n".join(wrong)


def test_sign_in_and_password_reset_refuse_a_post_without_the_token_when_anonymous(db):
    client = Client(enforce_csrf_checks=True)
    client.get("/accounts/login/")
    for url, data in (
        ("/accounts/login/", {"username": "a@b.test", "password": "x"}),
        ("/accounts/password_reset/", {"email": "a@b.test"}),
    ):
        response = client.post(url, data)
        assert response.status_code == 403 and b"CSRF" in response.content, url


def test_the_webhook_receiver_is_the_only_csrf_exempt_view_when_the_urlconf_is_walked():
    exempt = {route.label for route in all_routes() if getattr(route.callback, "csrf_exempt", False)}
    assert exempt == {"webhooks:xero_receive"}
