"""Integration: the real code against xero_sandbox over real HTTP (a subprocess on a loopback port)."""

import threading
from urllib.parse import urlsplit

import pytest
import requests
from django.db import connection as db_connection
from django.urls import reverse

from integrations import services
from integrations.models import XeroConnection
from integrations.xero import tokens
from integrations.xero.client import XeroClient
from integrations.xero.exceptions import XeroNeedsReconnect, XeroTenantDisconnected
from tests.support.xero_live import point_settings_at_sandbox

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

REDIRECT_URI = "http://testserver/integrations/xero/callback/"
CLIENT_ID, CLIENT_SECRET = "coordinoter-test", "sandbox-test-secret"


@pytest.fixture(scope="module")
def sandbox():
    from xero_sandbox import testing

    handle = testing.start_sandbox(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, redirect_uris=[REDIRECT_URI])
    yield handle
    handle.stop()


@pytest.fixture
def xero(sandbox, settings):
    sandbox.reset(keep_settings=True)
    point_settings_at_sandbox(settings, sandbox, redirect_uri=REDIRECT_URI)
    return sandbox


def connect(client, tenants=("Koala",)):
    from xero_sandbox.testing import complete_consent

    authorize = client.post(reverse("integrations:xero_connect"))["Location"]
    callback = urlsplit(complete_consent(authorize, tenants=list(tenants)))
    assert callback.path == reverse("integrations:xero_callback")
    return client.get(f"{callback.path}?{callback.query}", follow=True)


def sandbox_connections(xero, access_token: str) -> list[dict]:
    return requests.get(xero.connections_url, headers={"Authorization": f"Bearer {access_token}"}, timeout=10).json()


def test_connect_call_refresh_and_disconnect_against_the_sandbox(xero, login_as, admin_a, org_a):
    from xero_sandbox.testing import AU_ID

    client = login_as(admin_a)
    response = connect(client)
    assert "Connected to <strong>Koala Coffee Roasters (AU)</strong>" in response.content.decode()
    connection = XeroConnection.objects.get(organisation=org_a)
    assert (connection.tenant_id, connection.tenant_short_code, connection.base_currency) == (AU_ID, "!kC4aZ", "AUD")
    assert connection.auth_event_id and connection.xero_user_id

    api = XeroClient(connection.pk)
    assert api.organisation()["Name"] == "Koala Coffee Roasters (AU)"
    assert api.get("/Invoices").correlation_id
    before = connection.refresh_token
    tokens.access_token_get(connection_id=connection.pk, force_refresh=True)
    connection.refresh_from_db()
    assert connection.refresh_token != before
    assert api.get("/Invoices", params={"page": 1}).min_remaining is not None

    access_token = connection.access_token
    client.post(reverse("integrations:xero_disconnect"))
    connection.refresh_from_db()
    assert (connection.status, connection.disconnect_step, connection.refresh_token) == ("disconnected", "", "")
    assert sandbox_connections(xero, access_token) == []  # nothing stays authorised in Xero


def test_the_unchosen_organisation_is_disconnected_in_xero_when_several_were_authorised(xero, login_as, admin_a, org_a):
    from xero_sandbox.testing import UK_ID

    client = login_as(admin_a)
    response = connect(client, tenants=("Koala", "Thames"))
    assert response.redirect_chain[-1][0].startswith("/integrations/xero/choose/")
    page = response.content.decode()
    assert "Koala Coffee Roasters (AU)" in page and "Thames Bicycle Works (UK)" in page
    response = client.post(response.redirect_chain[-1][0], {"tenant_id": UK_ID}, follow=True)
    assert "Connected to Thames Bicycle Works (UK)." in response.content.decode()
    connection = XeroConnection.objects.get(organisation=org_a)
    assert [c["tenantId"] for c in sandbox_connections(xero, connection.access_token)] == [UK_ID]


def test_a_lost_refresh_answer_is_recovered_inside_the_grace_window(xero, login_as, admin_a, org_a):
    connect(login_as(admin_a))
    connection = XeroConnection.objects.get(organisation=org_a)
    stale = connection.refresh_token
    # Xero rotates the token but the answer never reaches us (a dropped connection after the write).
    lost = requests.post(
        xero.token_endpoint,
        auth=(CLIENT_ID, CLIENT_SECRET),
        timeout=10,
        data={"grant_type": "refresh_token", "refresh_token": stale},
    )
    assert lost.status_code == 200
    # We still hold the previous token; inside the 30-minute grace it still works and we converge on the newest.
    grant = tokens.access_token_get(connection_id=connection.pk, force_refresh=True)
    connection.refresh_from_db()
    assert connection.status == "active" and connection.refresh_token == lost.json()["refresh_token"]
    assert XeroClient(connection.pk).organisation()["ShortCode"] == "!kC4aZ"
    tokens.access_token_get(connection_id=connection.pk, force_refresh=True)  # and the chain goes on
    assert grant.tenant_id == connection.tenant_id


def test_a_lost_refresh_answer_after_the_grace_window_needs_a_reconnect(
    xero, login_as, admin_a, org_a, enqueued, mailoutbox
):
    connect(login_as(admin_a))
    connection = XeroConnection.objects.get(organisation=org_a)
    requests.post(
        xero.token_endpoint,
        auth=(CLIENT_ID, CLIENT_SECRET),
        timeout=10,
        data={"grant_type": "refresh_token", "refresh_token": connection.refresh_token},
    )
    xero.advance_clock(31 * 60)
    with pytest.raises(XeroNeedsReconnect):
        tokens.access_token_get(connection_id=connection.pk, force_refresh=True)
    connection.refresh_from_db()
    assert connection.status == "needs_reconnect"


def test_an_expired_access_token_is_refreshed_once_when_xero_says_token_expired(xero, login_as, admin_a, org_a):
    from xero_sandbox.testing import AU_ID

    connect(login_as(admin_a))
    connection = XeroConnection.objects.get(organisation=org_a)
    assert xero.expire_tokens(tenant_id=AU_ID) >= 1  # we still believe it fresh: Xero answers 401 TokenExpired
    assert XeroClient(connection.pk).organisation()["Name"] == "Koala Coffee Roasters (AU)"
    fresh = XeroConnection.objects.get(pk=connection.pk)
    assert fresh.access_token != connection.access_token and fresh.refresh_token != connection.refresh_token


def test_a_disconnect_made_in_xero_is_detected_and_shown(xero, login_as, admin_a, org_a, enqueued, mailoutbox):
    from xero_sandbox.testing import AU_ID

    client = login_as(admin_a)
    connect(client)
    connection = XeroConnection.objects.get(organisation=org_a)
    xero.disconnect_tenant(AU_ID)
    with pytest.raises(XeroTenantDisconnected):
        XeroClient(connection.pk).get("/Invoices")
    enqueued.run_all()  # the queued /connections check
    connection.refresh_from_db()
    assert connection.status == "revoked_in_xero"
    assert "Disconnected in Xero" in client.get(reverse("integrations:manage")).content.decode()


def test_reconnect_after_a_xero_side_disconnect_binds_the_same_organisation_again(xero, login_as, admin_a, org_a):
    from xero_sandbox.testing import AU_ID

    client = login_as(admin_a)
    connect(client)
    xero.disconnect_tenant(AU_ID)
    services.xero_connection_verify(connection_id=XeroConnection.objects.get(organisation=org_a).pk)
    response = connect(client)
    assert "Reconnected to Koala Coffee Roasters (AU)." in response.content.decode()
    connection = XeroConnection.objects.get(organisation=org_a)
    assert connection.status == "active" and XeroClient(connection.pk).get("/Invoices").status == 200


@pytest.mark.django_db(transaction=True)
def test_two_workers_refreshing_at_once_make_one_refresh_against_the_sandbox(xero, client, admin_a, org_a, monkeypatch):
    from integrations.xero import oauth

    client.force_login(admin_a)
    connect(client)
    connection = XeroConnection.objects.get(organisation=org_a)
    XeroConnection.objects.filter(pk=connection.pk).update(access_token_expires_at=connection.created_at)
    real_refresh, refreshes = oauth.token_refresh, []

    def counted_refresh(*, refresh_token):
        refreshes.append(refresh_token)
        return real_refresh(refresh_token=refresh_token)

    monkeypatch.setattr(oauth, "token_refresh", counted_refresh)
    barrier = threading.Barrier(2)
    results, errors = [], []

    def worker():
        try:
            barrier.wait(5)
            results.append(tokens.access_token_get(connection_id=connection.pk).access_token)
        except Exception as exc:
            errors.append(exc)
        finally:
            db_connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert errors == [] and len(results) == 2 and len(set(results)) == 1  # both use the one new token
    assert refreshes == [connection.refresh_token]  # exactly one refresh reached the sandbox
    assert XeroClient(connection.pk).organisation()["Name"] == "Koala Coffee Roasters (AU)"
