"""Tenant isolation, crawled: every URL pattern that takes an object key, filled with organisation B's ids and
requested (GET and POST) as organisation A's admin. Tenant pages answer 404 and change nothing of B's.

The exceptions, each for a reason:
- support console views (integrations.support, integrations.webhooks.support, integrations.outbound.views,
  invoices.support.views) are not tenant-owned (the outbound retry still 404s an operation of another organisation
  than the one in the URL): they span
  tenants for Coordinoter staff, so a customer gets 403 before any id is looked at;
- Django's admin site is staff-only: a customer is sent to the admin login (302) before any id is looked at;
- the password reset confirmation's key is the signed token, not the user id: with B's user id and no valid
  token it shows "this link is invalid" (200) and no password form;
- a view that does not accept the method answers 405 before looking anything up (e.g. POST to a progress
  partial, GET to a retry action); at least one method of every tenant URL must reach the lookup and 404.

A new URL pattern with a key that tests/security/keys.py does not know how to fill fails
test_every_keyed_url_pattern_is_filled_when_the_urlconf_changes, so a new view cannot escape the crawl.
"""

from __future__ import annotations

from urllib.parse import parse_qs, quote_plus, urlsplit

import pytest

from integrations.connections.connect import xero_connect_start
from integrations.models import WebhookEvent, XeroConnection
from invoices.created_in_xero.models import XeroCreatedInvoice
from invoices.models import Customer
from organisations.models import Organisation, SupportRequest
from tests.security.keys import fill
from tests.security.routes import Route, all_routes, product_routes
from tests.security.world import Tenant, World, snapshot, tenant_models

pytestmark = pytest.mark.django_db

SUPPORT_MODULES = {
    "integrations.support",
    "integrations.webhooks.support",
    "integrations.outbound.views",
    "invoices.support.views",
}


def keyed_routes() -> list[Route]:
    return [r for r in all_routes() if r.kwargs]


def test_every_keyed_url_pattern_is_filled_when_the_urlconf_changes(world):
    unknown = []
    for route in keyed_routes():
        try:
            values = fill(route, world.b)
            assert set(values) == set(route.kwargs)
            route.url(**values)
        except (KeyError, StopIteration, AssertionError, TypeError):
            unknown.append(route.label)
    assert not unknown, (
        f"URL patterns with a key the tenant crawl cannot fill: {unknown}. Add them to FILL in "
        "tests/security/keys.py (and a row to tests/security/test_role_matrix.py)."
    )


def test_every_tenant_model_has_a_row_in_the_world_when_models_change(world):
    missing = [m._meta.label for m in tenant_models() if m not in world.b.objects]
    assert not missing, f"tests/security/world.py builds no row of these tenant models: {missing}"


def expected(route: Route) -> str:
    if route.is_admin:
        return "admin_login"
    if route.module in SUPPORT_MODULES:
        return "403"
    if route.name == "password_reset_confirm":
        return "invalid_link"
    return "404"


def check(route: Route, responses: dict[str, object]) -> str | None:
    """None when the answers are what the route's kind promises, else what was wrong."""
    codes = {method: r.status_code for method, r in responses.items()}
    kind = expected(route)
    if kind == "admin_login":
        ok = all(r.status_code == 302 and r["Location"].startswith("/admin/login/") for r in responses.values())
    elif kind == "403":
        ok = set(codes.values()) == {403}
    elif kind == "invalid_link":
        ok = all(r.status_code == 200 and b"new_password1" not in r.content for r in responses.values())
    else:
        ok = set(codes.values()) <= {404, 405} and 404 in codes.values()
    return None if ok else f"{route.label}: expected {kind}, got {codes}"


def crawl(client, world: World, owner: Tenant) -> list[str]:
    problems = []
    for route in keyed_routes():
        url = route.url(**fill(route, owner))
        answers = {"GET": client.get(url), "POST": client.post(url, {"reason": "crawl", "tenant_id": "x"})}
        problem = check(route, answers)
        if problem:
            problems.append(f"{problem} ({url})")
        for method, response in answers.items():
            if owner.marker.encode() in response.getvalue().upper():
                problems.append(f"{route.label} {method} {url}: the answer shows {owner.marker}'s data")
    return problems


def test_every_keyed_url_answers_404_when_another_organisations_ids_are_used(world, clients):
    before = snapshot(world.b)
    problems = crawl(clients["admin"], world, world.b)
    assert not problems, "\n".join(problems)
    assert snapshot(world.b) == before, "a request of organisation A's admin changed organisation B's rows"


def test_mixed_keys_answer_404_when_an_own_batch_is_paired_with_another_organisations_invoice(world, clients):
    client = clients["admin"]
    for batch, invoice in ((world.a.batch, world.b.failed_invoice), (world.b.batch, world.a.failed_invoice)):
        url = f"/batches/{batch.pk}/invoices/{invoice.pk}/retry/"
        assert client.post(url).status_code == 404, url


def test_own_objects_answer_when_the_same_crawl_runs_on_organisation_a(world, clients):
    """The control: the crawl's URLs are real (A's own ids reach the views), so the 404s above mean isolation."""
    client = clients["admin"]
    reached = [
        route.label
        for route in keyed_routes()
        if not route.is_admin
        and expected(route) == "404"
        and client.get(route.url(**fill(route, world.a))).status_code in (200, 302)
    ]
    assert {
        "invoices:batch_detail",
        "invoices:batch_progress",
        "integrations:xero_choose",
        "invoices_xero:invoice_void",
        "invoices_xero:invoice_delete",
        "invoices_xero:invoice_edit",
    } <= set(reached)


SEARCHES = [
    "/batches/?q=BRAVOQX",
    "/batches/?q=BRAVOQX-INV-1",
    "/batches/?q=BRAVOQX+Customer",
    "/batches/?state=failed",
    "/batches/?state=synced",
    "/invoices/created-in-xero/?page=1",
]


def list_pages() -> list[str]:
    return [r.url() for r in product_routes() if not r.kwargs and not r.regex] + SEARCHES


def leaked(tenant: Tenant, body: str, url: str) -> list[str]:
    """The tenant's names found in a page. What was typed in a search is echoed (search box, help form's page
    address): that is not a leak, the rows it finds would be (their batch names, customers, ...)."""
    query = parse_qs(urlsplit(url).query).get("q", [""])[0]
    if query:
        body = body.replace(query, "").replace(quote_plus(query), "")
    names = [
        tenant.organisation.name,
        tenant.batch.name,
        tenant.invoice.number,
        tenant.failed_invoice.number,
        tenant.get(Customer).name,
        tenant.get(XeroCreatedInvoice).number,
        tenant.get(XeroCreatedInvoice).contact_name,
        tenant.get(XeroConnection).tenant_name,
        tenant.get(SupportRequest).subject,
        tenant.admin.email,
        tenant.accountant.email,
        tenant.get(WebhookEvent).resource_id,
        f"{tenant.marker} Sales",
        f"{tenant.marker} Candidate Ltd",
    ]
    return [name for name in names if name.lower() in body.lower()]


@pytest.mark.parametrize("role", ["admin", "accountant"])
def test_no_list_shows_another_organisations_rows_when_it_has_some(world, clients, role):
    leaks = []
    for url in list_pages():
        response = clients[role].get(url)
        found = leaked(world.b, response.getvalue().decode(), url)
        if found:
            leaks.append(f"{url} ({response.status_code}): {found}")
    ids = f"{world.b.invoice.pk},{world.b.failed_invoice.pk},{world.a.invoice.pk}"
    states = clients[role].get(f"/invoices/xero-states/?ids={ids}").content.decode()
    if leaked(world.b, states, "") or f'xero-status-{world.b.invoice.pk}"' in states:
        leaks.append("/invoices/xero-states/ with B's invoice ids")
    assert not leaks, f"organisation B's rows shown to organisation A's {role}: {leaks}"
    # The control: A's own rows are there, so the pages do render their lists.
    assert leaked(world.a, clients[role].get("/batches/?q=ALPHAQX").content.decode(), "/batches/?q=ALPHAQX")
    assert b"ALPHAQX-XC-1" in clients[role].get("/invoices/created-in-xero/").content
    assert f'xero-status-{world.a.invoice.pk}"' in states


def test_callback_with_another_organisations_state_is_refused_when_replayed_by_a(world, clients, xero_mock):
    url = xero_connect_start(organisation=world.b.organisation, user=world.b.admin, session_key="b-session")
    state = parse_qs(urlsplit(url).query)["state"][0]
    connection_b = XeroConnection.objects.get(organisation=world.b.organisation)
    response = clients["admin"].get("/integrations/xero/callback/", {"state": state, "code": "stolen-code"})
    assert response.status_code == 302 and response["Location"] == "/integrations/"
    assert not [c for c in xero_mock.calls if "connect/token" in c.request.url], "the stolen code was exchanged"
    after = XeroConnection.objects.get(organisation=world.b.organisation)
    assert (after.tenant_id, after.refresh_token) == (connection_b.tenant_id, connection_b.refresh_token)
    assert Organisation.objects.get(pk=world.b.organisation.pk).name == "BRAVOQX Holdings"
