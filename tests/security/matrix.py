"""The role matrix as data: for every named URL and method, what each person gets.

People (tests/security/world.py): anonymous; accountant and admin of organisation A; other_admin (organisation B's
admin: keyed URLs carry A's objects, so B's admin must get 404 there); support (Coordinoter support staff, member of
nothing); support_member (support staff who is also an accountant of A: customer pages as an accountant).

Outcomes: "ok" (the view ran: 2xx, 3xx elsewhere than a guard, or 422 for a form with errors), "login" (sent to
sign in), "admin_login" (sent to the admin's sign-in), "console" (support staff without a membership are sent to
the support console), or a status code (401, 403, 404, 405).

Used by test_role_matrix.py (the outcomes), test_headers_cookies.py (headers on every answer) and test_csrf.py
(the forms on every page).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib import admin
from django.test import Client
from django.urls import reverse

from tests.security.conftest import isolated
from tests.security.keys import fill
from tests.security.routes import Route, all_routes
from tests.security.world import ROLES, World

OK, LOGIN, ADMIN_LOGIN, CONSOLE = "ok", "login", "admin_login", "console"


def _all(outcome) -> dict:
    return dict.fromkeys(ROLES, outcome)


PUBLIC = _all(OK)
SIGNED_IN = {**_all(OK), "anonymous": LOGIN}
# Customer pages: members only; support staff who belong to no organisation go to their console.
MEMBER = {
    "anonymous": LOGIN,
    "accountant": OK,
    "admin": OK,
    "other_admin": OK,
    "support": CONSOLE,
    "support_member": OK,
}
MEMBER_OBJECT = {**MEMBER, "other_admin": 404}
ADMIN_ONLY = {**MEMBER, "accountant": 403, "support_member": 403}
ADMIN_OBJECT = {**ADMIN_ONLY, "other_admin": 404}
SUPPORT_ONLY = {
    "anonymous": LOGIN,
    "accountant": 403,
    "admin": 403,
    "other_admin": 403,
    "support": OK,
    "support_member": OK,
}


def refused(base: dict, code: int = 405, *roles: str) -> dict:
    """The same guard, then the method refused for the roles that pass it."""
    passing = roles or tuple(role for role, outcome in base.items() if outcome == OK or outcome == 404)
    return {**base, **dict.fromkeys(passing, code)}


@dataclass(frozen=True)
class Row:
    name: str
    method: str
    expect: dict
    data: dict = field(default_factory=dict)
    query: str = ""


ROWS: list[Row] = [
    # Public: health, sign-in, password reset; the webhook receiver (Xero signs, nobody signs in).
    Row("healthz", "GET", PUBLIC),
    Row("readyz", "GET", PUBLIC),
    # Prometheus: production without METRICS_TOKEN (as here) answers 404 to everyone; with it, only the bearer
    # token opens it (tests/operations/test_metrics.py).
    Row("metrics", "GET", _all(404)),
    Row("login", "GET", PUBLIC),
    Row("login", "POST", PUBLIC, {"username": "nobody@example.test", "password": "wrong"}),
    Row("logout", "GET", _all(405)),
    Row("logout", "POST", _all(LOGIN)),  # signed out (or never in): back to the sign-in page
    # The staff second factor (organisations.mfa): customers are sent home, verified staff on to their console.
    Row("mfa:verify", "GET", {**SIGNED_IN, "support": CONSOLE, "support_member": CONSOLE}),
    Row("mfa:verify", "POST", {**SIGNED_IN, "support": CONSOLE, "support_member": CONSOLE}, {"code": "000000"}),
    Row("mfa:enrol", "GET", SIGNED_IN),  # staff with a device are sent to verify
    Row("mfa:enrol", "POST", SIGNED_IN, {"code": "000000"}),
    Row("password_change", "GET", SIGNED_IN),
    Row("password_change_done", "GET", SIGNED_IN),
    Row("password_reset", "GET", PUBLIC),
    Row("password_reset", "POST", PUBLIC, {"email": "admin@alphaqx.test"}),
    Row("password_reset_done", "GET", PUBLIC),
    Row("password_reset_confirm", "GET", PUBLIC),
    Row("password_reset_complete", "GET", PUBLIC),
    Row("webhooks:xero_receive", "GET", _all(405)),
    Row("webhooks:xero_receive", "POST", _all(401), {"events": []}),
    # organisations
    Row("organisations:home", "GET", MEMBER),
    Row("organisations:no_organisation", "GET", SIGNED_IN),
    Row("organisations:switch", "POST", SIGNED_IN, {"organisation": "0"}),
    Row("organisations:settings", "GET", ADMIN_ONLY),
    Row("organisations:settings", "POST", ADMIN_ONLY, {"name": "ALPHAQX Holdings"}),
    Row("organisations:support_request_new", "POST", SIGNED_IN, {"subject": "Help", "message": "Please"}),
    # people (admins): invite, change roles, remove, withdraw invitations, the audit trail, the failure emails
    Row("organisations:people", "GET", ADMIN_ONLY),
    Row("organisations:people_invite", "POST", ADMIN_ONLY, {"email": "new.person@example.test", "role": "accountant"}),
    Row("organisations:people_invite", "GET", refused(ADMIN_ONLY)),
    Row("organisations:people_role", "POST", ADMIN_OBJECT, {"role": "accountant"}),
    Row("organisations:people_role", "GET", refused(ADMIN_OBJECT)),
    Row("organisations:people_remove", "POST", ADMIN_OBJECT),
    Row("organisations:people_remove", "GET", refused(ADMIN_OBJECT)),
    Row("organisations:people_invitation_revoke", "POST", ADMIN_OBJECT),
    Row("organisations:people_invitation_revoke", "GET", refused(ADMIN_OBJECT)),
    Row("organisations:audit", "GET", ADMIN_ONLY),
    Row("organisations:failure_emails", "POST", ADMIN_ONLY, {"enabled": "on"}),
    Row("organisations:failure_emails", "GET", refused(ADMIN_ONLY)),
    # the emailed invitation link: anyone holding it (a made-up token is not found)
    Row("organisations:invitation", "GET", _all(404)),
    Row("organisations:invitation", "POST", _all(404)),
    Row("organisations:support_request_new", "GET", refused(SIGNED_IN)),
    # integrations: Manage Integrations, connect, callback, choose, disconnect
    Row("integrations:manage", "GET", MEMBER),
    Row("integrations:xero_connect", "POST", ADMIN_ONLY),
    Row("integrations:xero_connect", "GET", refused(ADMIN_ONLY)),
    Row("integrations:xero_callback", "GET", ADMIN_ONLY, query="state=unknown&code=x"),
    Row("integrations:xero_callback", "POST", refused(ADMIN_ONLY)),
    Row("integrations:xero_choose", "GET", ADMIN_OBJECT),
    Row("integrations:xero_choose", "POST", ADMIN_OBJECT, {"tenant_id": "not-offered"}),
    Row("integrations:xero_disconnect", "GET", ADMIN_ONLY),
    Row("integrations:xero_disconnect", "POST", ADMIN_ONLY),
    # sign in / sign up / link with Xero: the round trip starts from the sign-in page (anyone) or the account page
    Row("xero_signin:sign_in", "POST", PUBLIC),
    Row("xero_signin:sign_in", "GET", _all(405)),
    Row("xero_signin:sign_up", "POST", PUBLIC),
    Row("xero_signin:sign_up", "GET", _all(405)),
    Row("xero_signin:callback", "GET", SIGNED_IN, query="state=unknown&code=x"),  # refused: back to sign-in
    Row("xero_signin:callback", "POST", _all(405)),
    Row("xero_signin:account", "GET", SIGNED_IN),
    Row("xero_signin:link", "POST", SIGNED_IN),
    Row("xero_signin:link", "GET", refused(SIGNED_IN)),
    Row("xero_signin:unlink", "POST", SIGNED_IN),
    Row("xero_signin:unlink", "GET", refused(SIGNED_IN)),
    # a sign-up's open choice belongs to the person who signed up (A's admin in the world), nobody else
    Row("xero_signin:choose", "GET", {**_all(404), "anonymous": LOGIN, "admin": OK}),
    Row("xero_signin:choose", "POST", {**_all(404), "anonymous": LOGIN, "admin": OK}, {"tenant_id": "not-offered"}),
    # support console (staff only: spans tenants)
    Row("integrations:support_console", "GET", SUPPORT_ONLY),
    Row("integrations:support_xero_usage", "GET", SUPPORT_ONLY),
    Row("integrations:support_organisation", "GET", SUPPORT_ONLY),
    Row("integrations:support_xero_disconnect", "POST", SUPPORT_ONLY, {"reason": "matrix"}),
    Row("integrations:support_xero_disconnect", "GET", refused(SUPPORT_ONLY)),
    Row("integrations:support_xero_refresh", "POST", SUPPORT_ONLY),
    Row("integrations:support_xero_refresh", "GET", refused(SUPPORT_ONLY)),
    Row("integrations:support_xero_request_reconnect", "POST", SUPPORT_ONLY, {"reason": "matrix"}),
    Row("integrations:support_xero_request_reconnect", "GET", refused(SUPPORT_ONLY)),
    Row(
        "integrations:support_request_resolve",
        "POST",  # resolving lands back on the console
        {**SUPPORT_ONLY, "support": CONSOLE, "support_member": CONSOLE},
    ),
    Row("integrations:support_request_resolve", "GET", refused(SUPPORT_ONLY)),
    Row("integrations:support_operation_retry", "POST", SUPPORT_ONLY),
    Row("integrations:support_operation_retry", "GET", refused(SUPPORT_ONLY)),
    Row("integrations:support_request", "GET", SUPPORT_ONLY),
    Row("integrations:support_request", "POST", SUPPORT_ONLY, {"message": "We've fixed it."}),
    Row("invoices_support:batches", "GET", SUPPORT_ONLY),
    Row("invoices_support:batches", "GET", SUPPORT_ONLY, query="q=INV"),
    Row("invoices_support:batches", "POST", refused(SUPPORT_ONLY)),
    Row("invoices_support:batch", "GET", SUPPORT_ONLY),
    Row("invoices_support:batch", "POST", refused(SUPPORT_ONLY)),
    Row("invoices_support:invoice", "GET", SUPPORT_ONLY),
    Row("invoices_support:invoice", "POST", refused(SUPPORT_ONLY)),
    Row("webhooks:support_inbox", "GET", SUPPORT_ONLY),
    Row("webhooks:support_organisation_inbox", "GET", SUPPORT_ONLY),
    Row("webhooks:support_retry_failed", "POST", SUPPORT_ONLY),
    Row("webhooks:support_retry_failed", "GET", refused(SUPPORT_ONLY)),
    Row("webhooks:support_reconcile", "POST", SUPPORT_ONLY),
    Row("webhooks:support_reconcile", "GET", refused(SUPPORT_ONLY)),
    # invoices: dashboard, batches, creating batches (admins), retries (admins and accountants), mapping (admins)
    Row("invoices:dashboard", "GET", MEMBER),
    Row("invoices:batch_list", "GET", MEMBER),
    Row("invoices:batch_list", "GET", MEMBER, query="q=ALPHAQX&state=failed"),
    Row("invoices:batch_new", "GET", ADMIN_ONLY),
    Row("invoices:batch_new", "POST", ADMIN_ONLY, {"action": "create"}),
    Row("invoices:batch_upload", "GET", ADMIN_ONLY),
    Row("invoices:batch_upload", "POST", ADMIN_ONLY, {"name": "CSV"}),
    Row("invoices:batch_sample_csv", "GET", MEMBER),
    Row("invoices:batch_detail", "GET", MEMBER_OBJECT),
    Row("invoices:batch_progress", "GET", MEMBER_OBJECT),
    Row("invoices:batch_progress", "POST", refused(MEMBER_OBJECT)),
    Row("invoices:batch_retry", "POST", MEMBER_OBJECT),
    Row("invoices:batch_retry", "GET", refused(MEMBER_OBJECT)),
    Row("invoices:invoice_retry", "POST", MEMBER_OBJECT),
    Row("invoices:invoice_retry", "GET", refused(MEMBER_OBJECT)),
    # fix and resend an invoice not in Xero (members), send a not-synced batch (admins), the invoice list
    Row("invoices:invoice_fix", "GET", MEMBER_OBJECT),
    Row("invoices:invoice_fix", "POST", MEMBER_OBJECT, {"customer_name": "ALPHAQX Customer"}),
    Row("invoices:invoice_cancel", "GET", MEMBER_OBJECT),
    Row("invoices:invoice_cancel", "POST", MEMBER_OBJECT),
    Row("invoices:invoice_resend", "POST", MEMBER_OBJECT),
    Row("invoices:invoice_resend", "GET", refused(MEMBER_OBJECT)),
    Row("invoices:credit_note_fix", "GET", MEMBER_OBJECT),
    Row("invoices:credit_note_fix", "POST", MEMBER_OBJECT, {"customer_name": "ALPHAQX Customer"}),
    Row("invoices:credit_note_cancel", "GET", MEMBER_OBJECT),
    Row("invoices:credit_note_cancel", "POST", MEMBER_OBJECT),
    Row("invoices:credit_note_resend", "POST", MEMBER_OBJECT),
    Row("invoices:credit_note_resend", "GET", refused(MEMBER_OBJECT)),
    Row("invoices:credit_note_allocation_retry", "POST", MEMBER_OBJECT),
    Row("invoices:credit_note_allocation_retry", "GET", refused(MEMBER_OBJECT)),
    Row("invoices:credit_note_allocation_remove", "GET", MEMBER_OBJECT),
    Row("invoices:credit_note_allocation_remove", "POST", MEMBER_OBJECT),
    Row("invoices:batch_send", "GET", ADMIN_OBJECT),
    Row("invoices:batch_send", "POST", ADMIN_OBJECT),
    Row("invoices:invoice_list", "GET", MEMBER),
    Row("invoices:invoice_list", "GET", MEMBER, query="status=failed&customer=ALPHAQX&sort=-total"),
    Row("invoices:invoice_export", "GET", MEMBER),
    Row("invoices:invoice_export", "POST", refused(MEMBER)),
    Row("invoices:mapping", "GET", ADMIN_ONLY),
    Row("invoices:mapping", "POST", ADMIN_ONLY, {"revenue_account_code": "200", "tax_type": "OUTPUT"}),
    # the two-way sync: Created in Xero, edit / void / delete in Xero (members: accountants fix invoices too)
    Row("invoices_xero:created_in_xero", "GET", MEMBER),
    Row("invoices_xero:invoice_void", "GET", MEMBER_OBJECT),
    Row("invoices_xero:invoice_void", "POST", MEMBER_OBJECT),
    Row("invoices_xero:invoice_delete", "GET", MEMBER_OBJECT),
    Row("invoices_xero:invoice_delete", "POST", MEMBER_OBJECT),
    Row("invoices_xero:invoice_edit", "GET", MEMBER_OBJECT),
    Row(
        "invoices_xero:invoice_edit",
        "POST",
        MEMBER_OBJECT,
        {"reference": "x", "issue_date": "2026-11-01", "due_date": "2026-11-30"},
    ),
    Row("invoices_xero:invoice_xero_states", "GET", MEMBER, query="ids=1,2,3"),
]

# Django's admin site: staff only. Support staff hold no model permissions, so they see tenant data through the
# console alone (every action audited), never through the admin.
CUSTOMERS_TO_ADMIN_LOGIN = {
    "anonymous": ADMIN_LOGIN,
    "accountant": ADMIN_LOGIN,
    "admin": ADMIN_LOGIN,
    "other_admin": ADMIN_LOGIN,
}
STAFF_WITHOUT_PERMISSIONS = {"support": 403, "support_member": 403}
ADMIN_SPECIAL = {
    "admin:index": {"support": OK, "support_member": OK},
    "admin:login": {**PUBLIC},
    "admin:logout": {
        "anonymous": OK,
        "accountant": OK,
        "admin": OK,
        "other_admin": OK,
        "support": 405,
        "support_member": 405,
    },
    "admin:password_change": {"support": OK, "support_member": OK},
    "admin:password_change_done": {"support": OK, "support_member": OK},
    "admin:jsi18n": {"support": OK, "support_member": OK},
    "admin:view_on_site": {"support": 404, "support_member": 404},
    "admin:app_list": {"support": 404, "support_member": 404},
}


def admin_rows() -> list[Row]:
    rows = []
    for route in all_routes():
        if route.is_admin and route.name:
            rows.append(
                Row(
                    route.name,
                    "GET",
                    {**CUSTOMERS_TO_ADMIN_LOGIN, **STAFF_WITHOUT_PERMISSIONS, **ADMIN_SPECIAL.get(route.name, {})},
                )
            )
    return rows


def every_row() -> list[Row]:
    return ROWS + admin_rows()


def row_url(row: Row, world: World) -> str:
    route = next(r for r in all_routes() if r.name == row.name)
    url = route.url(**fill(route, world.a)) if route.kwargs else reverse(row.name)
    return f"{url}?{row.query}" if row.query else url


def outcome(response) -> str | int:
    location = response.get("Location", "") if response.status_code in (301, 302, 303) else ""
    if location.startswith("/accounts/login/"):
        return LOGIN
    if location.startswith("/admin/login/"):
        return ADMIN_LOGIN
    if location == "/support/":
        return CONSOLE
    if response.status_code < 400 or response.status_code == 422:
        return OK
    return response.status_code


def request(client: Client, row: Row, url: str):
    """One request whose writes (rows, the session, the client's cookies) are undone afterwards."""
    cookies = {key: morsel.value for key, morsel in client.cookies.items()}
    if row.method == "GET":
        response = isolated(lambda: client.get(url))
    elif row.name == "webhooks:xero_receive":
        response = isolated(lambda: client.post(url, data=b'{"events":[]}', content_type="application/json"))
    else:
        response = isolated(lambda: client.post(url, row.data))
    client.cookies.clear()
    for key, value in cookies.items():
        client.cookies[key] = value
    return response


def run(world: World, client: Client, role: str, rows: list[Row] | None = None):
    """(row, url, response) for every row, as `role`."""
    for row in rows or every_row():
        url = row_url(row, world)
        yield row, url, request(client, row, url)


def admin_registry_models() -> list:
    return list(admin.site._registry)


def covered_names() -> set[str]:
    return {row.name for row in every_row()}


def named_routes() -> list[Route]:
    return [r for r in all_routes() if r.name]
