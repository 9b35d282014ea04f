"""URLs for tests/test_error_pages.py: one view that fails as a request does while PostgreSQL is down."""

from django.db import OperationalError
from django.urls import path


def broken(request):
    raise OperationalError("could not connect to server: Connection refused")


urlpatterns = [path("broken/", broken)]
