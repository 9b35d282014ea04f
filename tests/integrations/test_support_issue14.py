"""Support that can see and tell (issue 14): a reason for every disconnect, emailed to the admins; replies emailed
to the sender; the request's page a link; a connection check when support opens a tenant; words, not codes."""

import pytest
import responses
from django.core.cache import cache
from django.urls import reverse

from integrations.models import XeroConnection
from organisations.models import SupportReply, SupportRequest
from tests.factories import CONNECTION_ID, make_connection, make_organisation

pytestmark = pytest.mark.django_db


@pytest.fixture
def connected(org_a):
    return make_connection(organisation=org_a)


def test_support_disconnect_is_refused_when_no_reason_is_given(login_as, support_user, connected, org_a):
    response = login_as(support_user).post(
        reverse("integrations:support_xero_disconnect", args=[org_a.pk]), {"reason": "   "}, follow=True
    )
    assert "Give the reason for disconnecting" in response.content.decode()
    assert XeroConnection.objects.get(organisation=org_a).status == "active"


@responses.activate
def test_admins_receive_the_reason_by_email_when_support_disconnects(
    login_as,
    support_user,
    connected,
    org_a,
    admin_a,
    accountant_a,
    enqueued,
    mailoutbox,
    django_capture_on_commit_callbacks,
):
    responses.delete(f"https://api.xero.com/connections/{CONNECTION_ID}", status=204)
    responses.post("https://identity.xero.com/connect/revocation", status=200)
    with django_capture_on_commit_callbacks(execute=True):
        login_as(support_user).post(
            reverse("integrations:support_xero_disconnect", args=[org_a.pk]),
            {"reason": "Your Xero subscription ended; reconnect when it's renewed."},
        )
    notify = [e for e in enqueued if e.name == "integrations.xero_admins_notify"]
    assert [e.args[1] for e in notify] == ["support_disconnected"]
    enqueued.run_all()
    assert [m.to for m in mailoutbox] == [["admin@a.test"]]
    assert "Your Xero subscription ended; reconnect when it's renewed." in mailoutbox[0].body
    assert mailoutbox[0].subject == "Coordinoter support disconnected Xero from Org A"


def test_admin_disconnect_sends_no_support_email_when_an_admin_disconnects(
    login_as, admin_a, connected, org_a, enqueued, django_capture_on_commit_callbacks
):
    with responses.RequestsMock() as rsps, django_capture_on_commit_callbacks(execute=True):
        rsps.delete(f"https://api.xero.com/connections/{CONNECTION_ID}", status=204)
        rsps.post("https://identity.xero.com/connect/revocation", status=200)
        login_as(admin_a).post(reverse("integrations:xero_disconnect"))
    assert not [e for e in enqueued if e.name == "integrations.xero_admins_notify"]


def test_reply_reaches_the_sender_by_email_when_support_answers_a_request(
    login_as, support_user, accountant_a, org_a, mailoutbox, django_capture_on_commit_callbacks
):
    request = SupportRequest.objects.create(
        organisation=org_a, user=accountant_a, subject="Où est ma facture ?", message="INV-0042 isn't in Xero.\nHelp!"
    )
    client = login_as(support_user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("integrations:support_request", args=[request.pk]), {"message": "It's in Xero now: INV-0042."}
        )
    assert response.status_code == 302
    assert [m.to for m in mailoutbox] == [["accountant@a.test"]]
    assert mailoutbox[0].subject == "Re: Où est ma facture ?"
    assert "It's in Xero now: INV-0042." in mailoutbox[0].body and "> INV-0042 isn't in Xero." in mailoutbox[0].body
    assert SupportReply.objects.get().emailed_to == "accountant@a.test"
    page = client.get(reverse("integrations:support_request", args=[request.pk])).content.decode()
    assert "It&#x27;s in Xero now: INV-0042." in page


def test_request_page_is_a_link_when_it_names_a_page_of_this_site(login_as, support_user, accountant_a, org_a):
    SupportRequest.objects.create(
        organisation=org_a, user=accountant_a, subject="Batch", message="?", page_url="/batches/12/?state=failed"
    )
    SupportRequest.objects.create(
        organisation=org_a, user=accountant_a, subject="Odd", message="?", page_url="javascript:alert(1)"
    )
    body = login_as(support_user).get(reverse("integrations:support_console")).content.decode()
    assert '<a href="/batches/12/?state=failed">/batches/12/?state=failed</a>' in body
    assert 'href="javascript:' not in body and "from javascript:alert(1)" in body


def test_opening_a_tenant_page_queues_one_connection_check_when_support_looks_twice(
    login_as, support_user, connected, org_a, enqueued, django_capture_on_commit_callbacks
):
    cache.clear()
    client = login_as(support_user)
    with django_capture_on_commit_callbacks(execute=True):
        first = client.get(reverse("integrations:support_organisation", args=[org_a.pk]))
        client.get(reverse("integrations:support_organisation", args=[org_a.pk]))
    checks = [e for e in enqueued if e.name == "integrations.xero_connection_verify"]
    assert [e.args for e in checks] == [(connected.pk,)]
    assert "checking again now" in first.content.decode()


def test_opening_a_tenant_page_queues_no_check_when_it_is_not_connected(
    login_as, support_user, org_b, enqueued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        assert (
            login_as(support_user).get(reverse("integrations:support_organisation", args=[org_b.pk])).status_code == 200
        )
    assert not enqueued


def test_tenant_page_shows_audit_entries_and_the_usage_window_in_words_when_support_opens_it(
    login_as, support_user, connected, org_a, admin_a
):
    from integrations.audit import audit_event_record

    audit_event_record(organisation=org_a, action="reconnect_requested", detail={"reason": "Token expired"})
    audit_event_record(
        organisation=org_a, action="keepalive_refresh", outcome="failure", detail={"error": "XeroTimeout"}
    )
    body = login_as(support_user).get(reverse("integrations:support_organisation", args=[org_a.pk])).content.decode()
    assert "Asked the admins to reconnect Xero. Reason: Token expired" in body
    assert "Refreshed the Xero access token to keep the connection alive" in body and "Failed</span>" in body
    for code in ("reconnect_requested", "keepalive_refresh", "XeroTimeout"):
        assert code not in body
    assert "yesterday" in body and "today" in body  # the usage window, in words


def test_every_integration_action_reads_in_words_when_the_trail_is_shown():
    from integrations.audit import XERO_ACTIONS, xero_action_words

    assert (
        xero_action_words("disconnect_step_revoke_token", {}) == "Disconnecting: revoking Coordinoter's access in Xero"
    )
    assert xero_action_words("something_new", {}) == "Something new"
    for action, describe in XERO_ACTIONS.items():
        assert "_" not in describe({}), action


def test_support_console_still_lists_other_tenants_when_one_is_checked(login_as, support_user, connected):
    make_organisation(name="Org Z")
    assert "Org Z" in login_as(support_user).get(reverse("integrations:support_console")).content.decode()
