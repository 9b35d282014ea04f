import pytest
from django.urls import reverse

from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def test_login_succeeds_when_email_differs_in_case(client, admin_a):
    response = client.post(reverse("login"), {"username": "ADMIN@A.test", "password": PASSWORD})
    assert response.status_code == 302
    assert "_auth_user_id" in client.session


def test_login_shows_clear_error_when_password_is_wrong(client, admin_a):
    response = client.post(reverse("login"), {"username": "admin@a.test", "password": "nope"})
    assert response.status_code == 200
    assert b"don&#x27;t match an account" in response.content


def test_login_locks_out_when_too_many_failures(client, admin_a, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    for _ in range(3):
        client.post(reverse("login"), {"username": "admin@a.test", "password": "guess"})
    response = client.post(reverse("login"), {"username": "admin@a.test", "password": PASSWORD})
    assert b"Too many failed sign-ins" in response.content
    assert "_auth_user_id" not in client.session


def test_logout_requires_post_when_signed_in(client, admin_a):
    client.login(username=admin_a.email, password=PASSWORD)
    assert client.get(reverse("logout")).status_code == 405
    assert client.post(reverse("logout")).status_code == 302
    assert "_auth_user_id" not in client.session


def test_password_reset_sends_email_when_address_is_known(client, admin_a, mailoutbox):
    client.post(reverse("password_reset"), {"email": "admin@a.test"})
    assert len(mailoutbox) == 1
    assert "admin@a.test" in mailoutbox[0].to
