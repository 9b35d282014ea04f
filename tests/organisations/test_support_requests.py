import pytest
from django.urls import reverse

from organisations.models import SupportRequest
from tests.factories import PASSWORD, mfa_verify_client

pytestmark = pytest.mark.django_db


def test_support_request_is_recorded_and_visible_in_console_when_sent_from_help_panel(
    client, admin_a, org_a, support_user
):
    client.login(username=admin_a.email, password=PASSWORD)
    response = client.post(
        reverse("organisations:support_request_new"),
        {"subject": "Xero won't connect", "message": "It says access denied.", "page_url": "/integrations/"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    request = SupportRequest.objects.get()
    assert (request.organisation, request.user, request.page_url) == (org_a, admin_a, "/integrations/")

    client.logout()
    client.login(username=support_user.email, password=PASSWORD)
    mfa_verify_client(client, support_user)
    console = client.get(reverse("integrations:support_console")).content.decode()
    assert "Xero won&#x27;t connect" in console
    assert "admin@a.test" in console


def test_support_request_is_refused_with_errors_when_message_is_missing(client, admin_a):
    client.login(username=admin_a.email, password=PASSWORD)
    response = client.post(reverse("organisations:support_request_new"), {"subject": "Hi"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 422
    assert SupportRequest.objects.count() == 0


def test_support_request_can_be_resolved_when_user_is_support(client, admin_a, support_user, org_a):
    request = SupportRequest.objects.create(user=admin_a, organisation=org_a, subject="s", message="m")
    client.login(username=support_user.email, password=PASSWORD)
    mfa_verify_client(client, support_user)
    client.post(reverse("integrations:support_request_resolve", args=[request.pk]))
    request.refresh_from_db()
    assert request.status == SupportRequest.Status.RESOLVED


def test_support_request_resolve_is_403_when_user_is_customer_admin(client, admin_a, org_a):
    request = SupportRequest.objects.create(user=admin_a, organisation=org_a, subject="s", message="m")
    client.login(username=admin_a.email, password=PASSWORD)
    assert client.post(reverse("integrations:support_request_resolve", args=[request.pk])).status_code == 403


# ---------------------------------------------------------------- issue 13, finding 4: spam and a console that hides it


def test_support_requests_are_refused_with_a_clear_message_when_one_person_sends_too_many(client, admin_a, settings):
    settings.SUPPORT_REQUEST_LIMIT = 5
    client.login(username=admin_a.email, password=PASSWORD)
    statuses = [
        client.post(
            reverse("organisations:support_request_new"),
            {"subject": f"Help {n}", "message": "Please"},
            HTTP_HX_REQUEST="true",
        ).status_code
        for n in range(60)
    ]
    assert statuses[:5] == [200] * 5 and set(statuses[5:]) == {429}
    assert SupportRequest.objects.count() == 5
    refused = client.post(
        reverse("organisations:support_request_new"), {"subject": "Again", "message": "x"}, HTTP_HX_REQUEST="true"
    )
    assert b"wait a few minutes" in refused.content


def test_support_request_limit_is_per_person_when_a_colleague_also_writes(client, admin_a, accountant_a, settings):
    settings.SUPPORT_REQUEST_LIMIT = 2
    client.login(username=admin_a.email, password=PASSWORD)
    for n in range(4):
        client.post(reverse("organisations:support_request_new"), {"subject": f"s{n}", "message": "m"})
    client.logout()
    client.login(username=accountant_a.email, password=PASSWORD)
    response = client.post(reverse("organisations:support_request_new"), {"subject": "Genuine", "message": "Real"})
    assert response.status_code == 302
    assert SupportRequest.objects.filter(subject="Genuine").exists()
    assert SupportRequest.objects.count() == 3


def test_console_pages_through_every_open_request_when_there_are_more_than_a_page(client, support_user, admin_a, org_a):
    SupportRequest.objects.bulk_create(
        [SupportRequest(user=admin_a, organisation=org_a, subject=f"Spam {n}", message="spam") for n in range(45)]
    )
    genuine = SupportRequest.objects.create(user=admin_a, organisation=org_a, subject="Genuine problem", message="x")
    SupportRequest.objects.filter(pk=genuine.pk).update(created_at=genuine.created_at.replace(year=2020))
    client.login(username=support_user.email, password=PASSWORD)
    mfa_verify_client(client, support_user)
    first = client.get(reverse("integrations:support_console")).content.decode()
    assert "Genuine problem" not in first and "46 in all" in first and "rpage=2" in first
    last = client.get(reverse("integrations:support_console"), {"rpage": 3}).content.decode()
    assert "Genuine problem" in last


def test_console_search_finds_a_request_when_spam_buries_it(client, support_user, admin_a, org_a):
    SupportRequest.objects.bulk_create(
        [SupportRequest(user=admin_a, organisation=org_a, subject=f"Spam {n}", message="spam") for n in range(30)]
    )
    SupportRequest.objects.create(user=admin_a, organisation=org_a, subject="Xero says 403", message="help")
    client.login(username=support_user.email, password=PASSWORD)
    mfa_verify_client(client, support_user)
    page = client.get(reverse("integrations:support_console"), {"rq": "403"}).content.decode()
    assert "Xero says 403" in page and "Spam 1" not in page
    by_org = client.get(reverse("integrations:support_console"), {"rq": str(org_a.pk)}).content.decode()
    assert "Xero says 403" in by_org


def test_signed_in_writes_are_refused_with_429_when_one_person_replays_them_too_fast(client, admin_a, org_a, settings):
    settings.WRITE_RATE_LIMIT = 3
    client.login(username=admin_a.email, password=PASSWORD)
    statuses = [client.post(reverse("organisations:switch"), {"organisation": org_a.pk}).status_code for _ in range(5)]
    assert statuses == [302, 302, 302, 429, 429]
    refused = client.post(reverse("organisations:settings"), {"name": "Spam"})
    assert refused.status_code == 429 and b"faster than anyone can click" in refused.content
    assert client.get(reverse("invoices:dashboard")).status_code == 200  # reading is never limited
