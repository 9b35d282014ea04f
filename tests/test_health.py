import pytest
from django.urls import reverse


def test_healthz_answers_ok_when_process_is_up(client):
    response = client.get(reverse("healthz"))
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "Set-Cookie" not in response.headers


@pytest.mark.django_db
def test_readyz_reports_every_dependency_when_all_are_up(client):
    response = client.get(reverse("readyz"))
    assert response.status_code == 200, response.json()
    assert set(response.json()["checks"]) == {"database", "redis", "broker"}


@pytest.mark.django_db
def test_readyz_is_503_when_redis_is_unreachable(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = client.get(reverse("readyz"))
    assert response.status_code == 503
    assert response.json()["checks"]["redis"]["ok"] is False
