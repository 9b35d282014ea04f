"""Sandbox web UI (placeholder until the full UI lands)."""

from __future__ import annotations

from .pages import esc, layout
from .server import html_response


def home(app, request):
    s = app.settings.s
    body = (
        f"<p>Base URL: <code>{esc(app.base_url)}</code></p><p>Client id: <code>{esc(s.client_id)}</code></p>"
    )
    return html_response(layout("Xero sandbox", body))


def register(app) -> None:
    app.router.add("GET", "/", lambda req: home(app, req))
