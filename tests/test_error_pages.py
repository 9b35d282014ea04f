"""A server error shows our own page (static, no database needed), never Django's bare one or a traceback."""

import pytest
from django.test import Client


@pytest.fixture
def broken_view(settings):
    settings.DEBUG = False
    settings.ROOT_URLCONF = "tests.urls_broken"


def test_server_error_shows_the_friendly_page_when_the_database_is_unreachable(broken_view):
    client = Client(raise_request_exception=False)
    response = client.get("/broken/")
    assert response.status_code == 500
    text = response.content.decode()
    assert "Something went wrong on our side" in text
    assert "Nothing you sent to Xero is lost" in text
    assert "Traceback" not in text and "OperationalError" not in text
