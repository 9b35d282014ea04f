import pytest
from django.urls import reverse


@pytest.mark.django_db
def test_pages_carry_security_headers_when_served(client):
    response = client.get(reverse("login"))
    csp = response["Content-Security-Policy"]
    assert "default-src 'self'" in csp
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert len(response["X-Request-Id"]) == 32


@pytest.mark.django_db
def test_login_form_carries_csrf_token_when_rendered(client):
    assert b"csrfmiddlewaretoken" in client.get(reverse("login")).content


@pytest.mark.django_db
def test_post_without_csrf_token_is_refused_when_enforced(admin_a):
    from django.test import Client

    from tests.factories import PASSWORD

    strict = Client(enforce_csrf_checks=True)
    strict.login(username=admin_a.email, password=PASSWORD)
    assert strict.post(reverse("organisations:settings"), {"name": "x"}).status_code == 403
