"""No secret in plaintext anywhere, after the full journey against xero_sandbox (a subprocess, over real HTTP):
connect through our pages and the sandbox's consent screens (PKCE), refresh, choose the mapping, upload a batch
and push it, pay an invoice in Xero and take Xero's signed webhook delivery, then disconnect.

The secrets are the real values, read off the wire (every HTTP exchange is recorded): the authorization code, the
PKCE verifier, every access, refresh and id token the sandbox issued, the client secret (and its Basic header),
the webhook key and the OAuth state. Searched for, whole and in fragments, in: a pg_dump of the test database
(taken with the tokens still held, and again after the disconnect), the decoded sessions, the cache and limiter
values in Redis, every log record before redaction and the JSON stdout handler's output, every task message that
would have gone to the broker, the pages of the portal and support console, and the Django admin (as a superuser,
every registered model's list and change page).

Tasks run in this process, like a worker would (tests/support has real-worker fixtures; this journey needs none of
their timing, and in-process every log line reaches the handlers scanned here).
"""

from __future__ import annotations

import base64
import io
import json
import logging
import secrets
import subprocess
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
import redis
import requests
from cryptography.fernet import Fernet
from django.conf import settings as django_settings
from django.contrib import admin
from django.contrib.sessions.models import Session
from django.urls import reverse

from integrations.models import XeroConnection
from integrations.xero import tokens
from invoices.models import Invoice
from tests.factories import make_membership, make_organisation, make_user, mfa_verify_client
from tests.support.live import database_url
from tests.support.xero_live import point_settings_at_sandbox

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

REDIRECT_URI = "http://testserver/integrations/xero/callback/"
CLIENT_ID = "coordinoter-security-scan"
CLIENT_SECRET = "scan-client-secret-" + secrets.token_hex(16)
WEBHOOK_KEY = "scan-webhook-key-" + secrets.token_hex(16)
DEAD_RECEIVER = "http://127.0.0.1:9/hooks"  # nothing listens: the sandbox keeps each signed delivery for us
CSV = b"""invoice_number,customer_name,customer_email,issue_date,due_date,currency,reference,status,line_amount_types,\
description,quantity,unit_amount,account_code,tax_type
SCAN-0001,Harbour View Aged Care,accounts@harbourview.example,2026-11-01,2026-11-15,AUD,PO 1,AUTHORISED,Exclusive,\
Care coordination,2,85.00,,
SCAN-0002,Wattle Street Clinic,ap@wattle.example,2026-11-01,2026-11-30,AUD,,AUTHORISED,Exclusive,Monthly,1,99.95,,
"""


@pytest.fixture(scope="module")
def sandbox():
    from xero_sandbox.testing import start_sandbox

    handle = start_sandbox(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        redirect_uris=[REDIRECT_URI],
        webhook_url=DEAD_RECEIVER,
        webhook_key=WEBHOOK_KEY,
        webhook_batch_ms=50,
    )
    yield handle
    handle.stop()


@pytest.fixture
def xero(sandbox, settings):
    sandbox.reset(keep_settings=True)
    point_settings_at_sandbox(settings, sandbox, redirect_uri=REDIRECT_URI)
    settings.XERO_WEBHOOK_KEY = WEBHOOK_KEY
    settings.XERO_INVOICE_DEEP_LINK = sandbox.url + "/app/{short_code}/invoicing/view/{invoice_id}"
    settings.TOKEN_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    return sandbox


class Wire(list):
    """Every HTTP exchange the product (and the consent helper) made: the real secrets are read from here."""

    def secrets(self, sandbox) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {
            k: set()
            for k in (
                "authorization code",
                "PKCE verifier",
                "access token",
                "refresh token",
                "id_token",
                "client credentials",
            )
        }
        for request, response in self:
            if request.url.startswith(sandbox.token_endpoint):
                form = {
                    k: v[0]
                    for k, v in parse_qs(
                        request.body if isinstance(request.body, str) else (request.body or b"").decode()
                    ).items()
                }
                found["authorization code"] |= {form["code"]} if "code" in form else set()
                found["PKCE verifier"] |= {form["code_verifier"]} if "code_verifier" in form else set()
                found["refresh token"] |= {form["refresh_token"]} if "refresh_token" in form else set()
                auth = request.headers.get("Authorization", "")
                if auth.startswith("Basic "):
                    found["client credentials"].add(auth.split(" ", 1)[1])
                if response.status_code == 200:
                    body = response.json()
                    for field, kind in (
                        ("access_token", "access token"),
                        ("refresh_token", "refresh token"),
                        ("id_token", "id_token"),
                    ):
                        if body.get(field):
                            found[kind].add(body[field])
        return found


@pytest.fixture
def wire(monkeypatch) -> Wire:
    exchanges = Wire()
    real_send = requests.Session.send

    def spy(self, request, **kwargs):
        response = real_send(self, request, **kwargs)
        exchanges.append((request, response))
        return response

    monkeypatch.setattr(requests.Session, "send", spy)
    return exchanges


class Logs:
    """Every record before redaction (a handler placed first), and the JSON stdout handler's actual output."""

    def __init__(self):
        self.raw: list[str] = []
        self.output = io.StringIO()

    def text(self) -> tuple[str, str]:
        return "\n".join(self.raw), self.output.getvalue()


@pytest.fixture
def logs(caplog):
    captured = Logs()

    class Raw(logging.Handler):
        def emit(self, record):
            extra = {k: v for k, v in record.__dict__.items() if k not in ("args", "msg")}
            captured.raw.append(f"{record.getMessage()} {extra!r} {record.exc_text or ''}")
            if record.exc_info and record.exc_info[1] is not None:
                captured.raw.append(logging.Formatter().formatException(record.exc_info))

    root = logging.getLogger()
    stdout = next(h for h in root.handlers if getattr(h, "name", "") == "stdout")
    previous_stream = stdout.setStream(captured.output)
    raw = Raw(level=logging.DEBUG)
    root.handlers.insert(0, raw)
    # Everything of ours at DEBUG; urllib3 stays at its configured WARNING (at DEBUG it logs the URLs the test's
    # stand-in browser opens on the sandbox, state included; the product's own calls carry no secret in a URL).
    levels = {name: logging.getLogger(name).level for name in ("", "celery", "django")}
    for name in levels:
        logging.getLogger(name).setLevel(logging.DEBUG)
    with caplog.at_level(logging.DEBUG):
        yield captured
    root.handlers.remove(raw)
    stdout.setStream(previous_stream)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def run_tasks(enqueued, history: list, *, rounds: int = 60) -> None:
    """Run what was queued, like a worker (countdowns are not waited for), until nothing is left. `history` keeps
    every message, as the broker would have carried it."""
    while enqueued and rounds:
        history.append(enqueued[0])
        enqueued.run_all(limit=1)
        rounds -= 1


def fragments(secret: str) -> set[str]:
    """The secret, and pieces of it a careless log line might hold (a JWT's payload and signature, the two ends of
    an opaque value)."""
    pieces = {secret}
    if secret.count(".") == 2:
        pieces |= {part for part in secret.split(".")[1:] if len(part) >= 16}
    elif len(secret) >= 32:
        pieces |= {secret[:16], secret[-16:]}
    return pieces


def pg_dump() -> str:
    result = subprocess.run(
        ["pg_dump", "--data-only", "--no-owner", database_url(django_settings)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def sessions_decoded() -> str:
    return "\n".join(json.dumps(s.get_decoded(), default=str) for s in Session.objects.all())


def redis_values() -> str:
    """The cache (pickled values, searched as bytes) and this test's limiter keys."""
    chunks = []
    for url, pattern in (
        (django_settings.CACHES["default"]["LOCATION"], "*"),
        (django_settings.REDIS_URL, f"{django_settings.XERO_RATE_LIMIT_PREFIX}:*"),
    ):
        client = redis.Redis.from_url(url)
        for key in client.scan_iter(pattern, count=500):
            if client.type(key) == b"string":
                chunks.append((client.get(key) or b"").decode("latin-1"))
            else:
                chunks.append(repr(client.dump(key)))
    return "\n".join(chunks)


def admin_pages(client) -> str:
    """Every registered model's changelist and the change page of its first row, as a superuser."""
    html = []
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        changelist = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
        assert changelist.status_code == 200, opts.label
        html.append(changelist.content.decode())
        first = model.objects.order_by("pk").first()
        if first is not None:
            change = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[first.pk]))
            assert change.status_code == 200, opts.label
            html.append(change.content.decode())
    return "\n".join(html)


def test_no_secret_is_stored_logged_queued_or_shown_when_the_full_journey_has_run(
    xero, wire, logs, enqueued, client, settings
):
    from xero_sandbox.testing import AU_ID, complete_consent

    settings.XERO_RATE_LIMIT_PREFIX = f"test:scan:{uuid.uuid4().hex}"
    # The journey runs each step's tasks at once, with no clock between them: the webhook fetch that follows the push
    # must not wait out the tenant's quiet time after its customer calls (tests/integrations/test_ratelimit.py).
    settings.XERO_CUSTOMER_QUIET_SECONDS = 0
    organisation = make_organisation(name="Scan Florists")
    admin_user = make_user(email="admin@scan.test")
    make_membership(user=admin_user, organisation=organisation, role="admin")
    support = make_user(email="support@scan.test", support=True)
    root = make_user(email="root@scan.test")
    root.is_staff = root.is_superuser = True
    root.save(update_fields=["is_staff", "is_superuser"])
    client.force_login(admin_user)
    history: list = []

    # Connect: our Connect button, the sandbox's sign-in and consent, our callback.
    authorize = client.post(reverse("integrations:xero_connect"))["Location"]
    state = parse_qs(urlsplit(authorize).query)["state"][0]
    callback = urlsplit(complete_consent(authorize, tenants=["Koala"]))
    page = client.get(f"{callback.path}?{callback.query}", follow=True).content.decode()
    assert "Connected to <strong>Koala Coffee Roasters (AU)</strong>" in page
    connection = XeroConnection.objects.get(organisation=organisation)

    # Refresh (the refresh token rotates), then the mapping from the tenant's own accounts and tax rates.
    tokens.access_token_get(connection_id=connection.pk, force_refresh=True)
    assert client.get(reverse("invoices:mapping")).status_code == 200
    sales = next(a for a in xero.admin("GET", f"/tenants/{AU_ID}/accounts") if a.get("Code") == "200")
    saved = client.post(reverse("invoices:mapping"), {"revenue_account_code": "200", "tax_type": sales["TaxType"]})
    assert saved.status_code == 302, saved.content.decode()[:2000]

    # A batch from a CSV, pushed by the tasks it queued.
    upload = io.BytesIO(CSV)
    upload.name = "scan.csv"
    created = client.post(reverse("invoices:batch_upload"), {"name": "Scan batch", "file": upload})
    assert created.status_code == 302, created.content.decode()[:2000]
    run_tasks(enqueued, history)
    invoices = Invoice.objects.filter(organisation=organisation)
    assert set(invoices.values_list("sync_state", flat=True)) == {"synced"}

    # Paid in Xero; Xero's own signed webhook delivery reaches our receiver; the inbox is processed.
    paid = invoices.get(number="SCAN-0001")
    response = requests.post(
        f"{xero.url}/orgs/{AU_ID}/invoices/{paid.xero_invoice_id}/payment",
        data={"amount": str(paid.total), "account_code": "090"},
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code in (302, 303)
    xero.flush_webhooks(timeout=0.5)
    deliveries = [d for d in xero.webhook_deliveries() if paid.xero_invoice_id in d["body"]]
    assert deliveries, "the sandbox signed no delivery for the payment"
    for delivery in deliveries:
        received = client.post(
            reverse("webhooks:xero_receive"),
            data=delivery["body"].encode(),
            content_type="application/json",
            HTTP_X_XERO_SIGNATURE=delivery["signature"],
        )
        assert received.status_code == 200
    run_tasks(enqueued, history)
    assert Invoice.objects.get(pk=paid.pk).status == "PAID"

    # Pages people see, and the Django admin, while the tokens are held.
    pages = [
        client.get(url).content.decode()
        for url in (
            "/portal/",
            "/batches/",
            f"/batches/{paid.batch_id}/",
            "/integrations/",
            "/settings/xero-mapping/",
            "/invoices/created-in-xero/",
            f"/invoices/{paid.pk}/xero/void/",
        )
    ]
    client.force_login(support)
    mfa_verify_client(client, support)
    pages += [
        client.get(url).content.decode()
        for url in (
            "/support/",
            f"/support/organisations/{organisation.pk}/",
            "/support/webhooks/",
            f"/support/organisations/{organisation.pk}/webhooks/",
        )
    ]
    client.force_login(root)
    mfa_verify_client(client, root)
    admin_html = admin_pages(client)
    stores = {"database dump (connected)": pg_dump(), "sessions (decoded)": sessions_decoded()}

    # Disconnect: the connection is removed in Xero, the refresh token revoked, the tokens erased.
    client.force_login(admin_user)
    client.post(reverse("integrations:xero_disconnect"))
    run_tasks(enqueued, history)
    connection.refresh_from_db()
    assert (connection.status, connection.disconnect_step, connection.refresh_token) == ("disconnected", "", "")

    found = wire.secrets(xero)
    assert all(found.values()), {k: len(v) for k, v in found.items()}  # each kind was really issued and used
    assert len(found["refresh token"]) >= 2 and len(found["access token"]) >= 2  # rotation happened
    found["client secret"] = {CLIENT_SECRET}
    found["webhook key"] = {WEBHOOK_KEY}
    found["OAuth state"] = {state}
    found["client credentials"] |= {base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()}

    raw_logs, json_logs = logs.text()
    assert "xero.token.refreshed" in json_logs and "xero.webhook.received" in json_logs  # the handlers did log
    stores.update(
        {
            "database dump (after disconnect)": pg_dump(),
            "sessions (after disconnect)": sessions_decoded(),
            "Redis (cache and limiter)": redis_values(),
            "log records (before redaction)": raw_logs,
            "JSON stdout log": json_logs,
            "task messages": json.dumps([(m.name, m.args, m.kwargs) for m in history + list(enqueued)], default=str),
            "portal and support pages": "\n".join(pages),
            "Django admin pages": admin_html,
        }
    )
    leaks = [
        f"{kind} in {where}"
        for kind, values in found.items()
        for value in values
        for where, text in stores.items()
        if any(piece in text for piece in fragments(value))
    ]
    assert not leaks, "secrets in plaintext:\n" + "\n".join(sorted(set(leaks)))
    for field in ("access_token", "refresh_token", "code_verifier", "id_token"):
        assert f'name="{field}"' not in admin_html and f'field-{field}"' not in admin_html
        assert f'class="field-{field} ' not in admin_html
