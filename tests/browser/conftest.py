"""Playwright driving Debian's Chromium against Django's live server.

Playwright is installed from PyPI but never downloads a browser: we launch /usr/bin/chromium.
"""

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from tests.browser.helpers import WEBHOOK_KEY
from tests.factories import totp_code_for

# Playwright's sync API keeps an event loop in this thread; the ORM calls in tests are still synchronous.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

ROOT = Path(__file__).resolve().parents[2]
# Every run takes its screenshots; only `UPDATE_SCREENSHOTS=1 make test` replaces the ones the docs show.
SCREENSHOTS = ROOT / ("docs/screenshots" if os.environ.get("UPDATE_SCREENSHOTS") == "1" else "test-results/screenshots")
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="session")
def browser() -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _context(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 820})
    context.set_default_timeout(10_000)
    return context


@pytest.fixture
def page(browser) -> Iterator:
    context = _context(browser)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def another_page(browser) -> Iterator[Callable]:
    """Pages for other people: each call opens a browser context of its own (its own cookies, so its own
    sign-in), closed after the test."""
    contexts = []

    def open_page():
        context = _context(browser)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def screenshot() -> Callable:
    def take(page, name: str, *, full_page: bool = False) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path

    return take


@pytest.fixture
def demo_data(transactional_db) -> None:
    call_command("seed_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115


@pytest.fixture
def login(live_server) -> Callable:
    def sign_in(page, email: str, password: str = "demo") -> None:
        page.goto(f"{live_server.url}/accounts/login/")
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in", exact=True).click()
        page.wait_for_url(lambda url: "/accounts/login/" not in url)
        # Staff: the real second step, the code computed with pyotp from the stored (seeded or just shown) secret.
        if "/accounts/mfa/enrol/" in page.url:
            page.get_by_label("Code from your app").fill(totp_code_for(get_user_model().objects.get(email=email)))
            page.get_by_role("button", name="Confirm").click()
            page.get_by_role("link", name="Continue").click()
        elif "/accounts/mfa/verify/" in page.url:
            page.get_by_label("Code").fill(totp_code_for(get_user_model().objects.get(email=email)))
            page.get_by_role("button", name="Verify").click()
        page.wait_for_url(lambda url: "/accounts/mfa/" not in url)

    return sign_in


@pytest.fixture(scope="module")
def webhook_sandbox() -> Iterator:
    """xero_sandbox signing its webhooks with WEBHOOK_KEY and sending them in 100 ms batches (one per module;
    `helpers.sandbox_for_live_server` points it and the product at each other)."""
    from xero_sandbox.testing import start_sandbox

    handle = start_sandbox(webhook_key=WEBHOOK_KEY, webhook_batch_ms=100)
    yield handle
    handle.stop()


# ---------------------------------------------------------------- real workers beside the live server
# For journeys whose pushes, outbound operations and webhook inbox run in REAL Celery workers (subprocesses on the
# run's PostgreSQL and Redis database), with the sandbox delivering signed webhooks to the live server. A test module
# that needs other queues defines its own `workers`.
LIVE_QUEUES = "xero,webhooks,default"


@pytest.fixture
def broker(settings):
    from coordinoter import queue
    from tests.browser.helpers import broker_queues_emptied

    broker_queues_emptied(LIVE_QUEUES)
    queue.fail_fast_connection_drop()
    yield settings.REDIS_URL
    queue.fail_fast_connection_drop()


@pytest.fixture
def xero(webhook_sandbox, settings, live_server, monkeypatch):
    from integrations.webhooks import fetch
    from tests.browser.helpers import sandbox_for_live_server

    sandbox_for_live_server(webhook_sandbox, settings, live_server, webhook_key=WEBHOOK_KEY)
    monkeypatch.setattr(fetch, "xero_rate_limiter", lambda: None)
    return webhook_sandbox


@pytest.fixture
def workers(settings, xero, broker, transactional_db):
    import uuid

    from tests.support.live import CeleryProcesses, live_env
    from tests.support.xero_live import sandbox_settings

    processes = CeleryProcesses(
        env=live_env(
            settings,
            **sandbox_settings(xero),
            REDIS_URL=broker,
            XERO_RATE_LIMIT_PREFIX=f"test:browser-live:{uuid.uuid4().hex}",
        )
    )
    processes.start_workers(2, queues=LIVE_QUEUES)
    yield processes
    processes.stop()
