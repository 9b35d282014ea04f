import pytest
from django.urls import reverse

from organisations.models import SupportRequest
from tests.factories import PASSWORD

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
    client.post(reverse("integrations:support_request_resolve", args=[request.pk]))
    request.refresh_from_db()
    assert request.status == SupportRequest.Status.RESOLVED


def test_support_request_resolve_is_403_when_user_is_customer_admin(client, admin_a, org_a):
    request = SupportRequest.objects.create(user=admin_a, organisation=org_a, subject="s", message="m")
    client.login(username=admin_a.email, password=PASSWORD)
    assert client.post(reverse("integrations:support_request_resolve", args=[request.pk])).status_code == 403
