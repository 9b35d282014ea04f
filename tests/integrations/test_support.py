"""The support console: every tenant's connection, filter and search, the audit trail, and support's actions."""

import pytest
import responses
from django.urls import reverse

from integrations.models import IntegrationAuditEvent, XeroConnection
from tests.factories import CONNECTION_ID, make_connection, make_organisation, token_response
from tests.integrations.conftest import xero_json

pytestmark = pytest.mark.django_db

TOKEN_URL = "https://identity.xero.com/connect/token"


@pytest.fixture
def connected(org_a):
    return make_connection(organisation=org_a)


def test_console_lists_each_organisation_with_its_xero_state_tenant_and_token_times(
    login_as, support_user, connected, org_b
):
    XeroConnection.objects.filter(pk=connected.pk).update(last_error="Token refresh failed: XeroTimeout.")
    body = login_as(support_user).get(reverse("integrations:support_console")).content.decode()
    assert "Org A" in body and "Org B" in body
    assert "Maple Florists Ltd" in body and "Connected" in body and "Not connected" in body
    assert connected.access_token_expires_at.strftime("%Y-%m-%d") in body
    assert "Token refresh failed: XeroTimeout." in body
    assert connected.access_token not in body and connected.refresh_token not in body


def test_console_filters_by_state_and_searches_by_xero_name(login_as, support_user, connected, org_b):
    make_connection(
        organisation=make_organisation(name="Org C"),
        status="needs_reconnect",
        tenant_id="e0da6937-de07-4a14-adee-37abfac298ce",
        tenant_name="Rose Garden Supplies",
        connection_id="32587c85-a9b3-4306-ac30-b416e8f2c841",
    )
    client = login_as(support_user)

    def listed(**params):
        page = client.get(reverse("integrations:support_console"), params).context["page"]
        return [org.name for org in page.object_list]

    assert listed(state="needs_reconnect") == ["Org C"]
    assert listed(state="problems") == ["Org C"]
    assert listed(state="not_connected") == ["Org B"]
    assert listed(state="active") == ["Org A"]
    assert listed(q="rose garden") == ["Org C"]
    assert listed(q="org b") == ["Org B"]


def test_console_and_actions_are_403_when_user_is_not_support(login_as, admin_a, connected, org_a):
    client = login_as(admin_a)
    assert client.get(reverse("integrations:support_console")).status_code == 403
    assert client.get(reverse("integrations:support_organisation", args=[org_a.pk])).status_code == 403
    for name in ("support_xero_disconnect", "support_xero_refresh", "support_xero_request_reconnect"):
        assert client.post(reverse(f"integrations:{name}", args=[org_a.pk])).status_code == 403
    assert XeroConnection.objects.get(organisation=org_a).status == "active"


def test_organisation_page_shows_the_tenant_and_the_audit_trail(login_as, support_user, connected, org_a, admin_a):
    IntegrationAuditEvent.objects.create(
        organisation=org_a, actor=admin_a, action="connected", detail={"tenant_name": "Maple Florists Ltd"}
    )
    body = login_as(support_user).get(reverse("integrations:support_organisation", args=[org_a.pk])).content.decode()
    assert "Maple Florists Ltd" in body and connected.tenant_id in body and connected.connection_id in body
    assert "Audit trail" in body and "connected" in body and "admin@a.test" in body
    assert connected.access_token not in body and connected.refresh_token not in body


def test_ask_admins_to_reconnect_emails_them_shows_a_banner_and_is_audited(
    login_as, support_user, connected, org_a, admin_a, enqueued, mailoutbox, django_capture_on_commit_callbacks
):
    client = login_as(support_user)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("integrations:support_xero_request_reconnect", args=[org_a.pk]),
            {"reason": "Please reconnect to grant the new granular scopes."},
        )
    event = IntegrationAuditEvent.objects.get(action="reconnect_requested")
    assert (event.actor, event.actor_kind) == (support_user, "support")
    enqueued.run_all()
    assert mailoutbox[0].to == ["admin@a.test"] and "grant the new granular scopes" in mailoutbox[0].body
    client.logout()
    page = login_as(admin_a).get(reverse("integrations:manage")).content.decode()
    assert "Coordinoter support asks an admin to reconnect Xero" in page  # banner
    assert "Reconnect" in page and 'class="xero-button"' in page


@responses.activate
def test_force_refresh_refreshes_now_and_records_the_support_user(login_as, support_user, connected, org_a):
    responses.post(TOKEN_URL, json=token_response(refresh_token="rt-forced"))
    response = login_as(support_user).post(reverse("integrations:support_xero_refresh", args=[org_a.pk]), follow=True)
    assert "Token refreshed." in response.content.decode()
    assert XeroConnection.objects.get(organisation=org_a).refresh_token == "rt-forced"
    event = IntegrationAuditEvent.objects.get(action="token_refreshed")
    assert (event.outcome, event.actor, event.actor_kind) == ("success", support_user, "support")


@responses.activate
def test_force_refresh_reports_a_dead_grant(login_as, support_user, connected, org_a):
    responses.post(TOKEN_URL, json=xero_json("invalid_grant.json"), status=400)
    response = login_as(support_user).post(reverse("integrations:support_xero_refresh", args=[org_a.pk]), follow=True)
    assert "needs a reconnect" in response.content.decode()
    assert XeroConnection.objects.get(organisation=org_a).status == "needs_reconnect"
    assert IntegrationAuditEvent.objects.filter(action="token_refreshed", outcome="failure").exists()


@responses.activate
def test_support_disconnect_runs_the_same_steps_and_records_the_support_user(login_as, support_user, connected, org_a):
    responses.delete(f"https://api.xero.com/connections/{CONNECTION_ID}", status=204)
    responses.post("https://identity.xero.com/connect/revocation", status=200)
    login_as(support_user).post(reverse("integrations:support_xero_disconnect", args=[org_a.pk]))
    assert XeroConnection.objects.get(organisation=org_a).status == "disconnected"
    events = IntegrationAuditEvent.objects.filter(organisation=org_a).order_by("pk")
    assert [e.action for e in events] == [
        "disconnect_requested",
        "xero_connection_deleted",
        "token_revoked",
        "disconnected",
    ]
    assert {e.actor_kind for e in events} == {"support"}
