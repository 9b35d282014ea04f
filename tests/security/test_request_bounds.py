"""Bounded input (issue 13, findings 5, 7 and 11): an oversized body is refused with 413 before anything reads it
(no proxy is in front of gunicorn), with a larger cap only for the CSV upload and the webhook receiver's own; query
parameters that cannot be ids or filters give a 4xx or are ignored, never a 500; gunicorn bounds the request line
and headers; 403 and 404 are our own pages, without debug information in production."""

import runpy
from pathlib import Path

import pytest
import yaml
from django.test import Client

from tests.factories import PASSWORD, make_batch, make_membership, make_organisation, make_user, mfa_verify_client

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]
MB = 1024 * 1024


class CountingBody:
    """A request body of `size` bytes produced on demand (a multipart form with one large file), counting what
    the server reads of it."""

    boundary = "coordinoterboundary"

    def __init__(self, size: int):
        head = (
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="username"\r\n\r\nx@example.test\r\n'
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="blob"; filename="a.bin"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        tail = f"\r\n--{self.boundary}--\r\n".encode()
        self.parts = [head, tail]
        self.size = size
        self.filler = size - len(head) - len(tail)
        self.read_bytes = 0

    def _byte_at(self, start: int, n: int) -> bytes:
        head, tail = self.parts
        out = b""
        if start < len(head):
            out += head[start : start + n]
        filler_end = len(head) + self.filler
        if start + len(out) < filler_end and len(out) < n:
            take = min(n - len(out), filler_end - (start + len(out)))
            out += b"0" * take
        position = start + len(out)
        if position >= filler_end and len(out) < n:
            offset = position - filler_end
            out += tail[offset : offset + n - len(out)]
        return out

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = self.size - self.read_bytes
        chunk = self._byte_at(self.read_bytes, min(n, self.size - self.read_bytes))
        self.read_bytes += len(chunk)
        return chunk

    def readline(self, n: int = -1) -> bytes:
        return self.read(n if n and n > 0 else 65536)


def post_declared(path: str, size: int, client: Client | None = None):
    body = CountingBody(size)
    response = (client or Client()).generic(
        "POST",
        path,
        b"",
        content_type=f"multipart/form-data; boundary={CountingBody.boundary}",
        CONTENT_LENGTH=str(size),
        **{"wsgi.input": body},
    )
    return response, body


# ---------------------------------------------------------------- finding 5: bodies


def test_login_refuses_a_60_mb_body_with_413_when_declared_without_reading_it():
    response, body = post_declared("/accounts/login/", 60 * MB)
    assert response.status_code == 413
    assert body.read_bytes == 0
    assert b"too large" in response.content


def test_password_reset_and_admin_login_refuse_oversized_bodies_when_anonymous():
    for path in ("/accounts/password_reset/", "/admin/login/"):
        response, body = post_declared(path, 1 * MB)
        assert (response.status_code, body.read_bytes) == (413, 0), path


def test_signed_in_pages_refuse_a_body_over_the_general_cap_when_declared(client, admin_a, settings):
    client.login(username=admin_a.email, password=PASSWORD)
    response, body = post_declared("/settings/", settings.REQUEST_MAX_BODY_BYTES + 1, client)
    assert (response.status_code, body.read_bytes) == (413, 0)


def test_csv_upload_path_accepts_a_2_mb_file_when_the_general_cap_is_smaller(settings):
    assert settings.REQUEST_MAX_BODY_BYTES < 2 * MB
    response, _ = post_declared("/batches/upload/", 2 * MB + 4096)
    assert response.status_code == 302  # past the cap, on to the sign-in redirect
    response, body = post_declared("/batches/upload/", 3 * MB)
    assert (response.status_code, body.read_bytes) == (413, 0)


def test_webhook_receiver_keeps_its_own_cap_when_the_body_is_oversized(settings, caplog):
    settings.XERO_WEBHOOK_KEY = "k"
    response, body = post_declared("/integrations/xero/webhooks/", settings.WEBHOOK_MAX_BODY_BYTES + 1)
    assert response.status_code == 413 and body.read_bytes == 0
    assert any(getattr(r, "reason", "") == "body_too_large" for r in caplog.records)


def test_an_unreadable_content_length_is_refused_when_it_is_not_a_number():
    response = Client().generic("POST", "/accounts/login/", b"", CONTENT_LENGTH="12abc")
    assert response.status_code == 400


def test_django_parsing_limits_are_set_when_settings_load(settings):
    assert settings.DATA_UPLOAD_MAX_MEMORY_SIZE == settings.REQUEST_MAX_BODY_BYTES <= MB
    assert 2 * MB <= settings.FILE_UPLOAD_MAX_MEMORY_SIZE <= 3 * MB
    assert 1000 <= settings.DATA_UPLOAD_MAX_NUMBER_FIELDS <= 20000
    assert settings.DATA_UPLOAD_MAX_NUMBER_FILES == 1


def test_gunicorn_bounds_request_line_and_headers_when_compose_and_image_start_it():
    config = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert config["limit_request_line"] <= 4094
    assert config["limit_request_fields"] <= 100
    assert config["limit_request_field_size"] <= 8190
    assert config["timeout"] <= 30
    assert config["forwarded_allow_ips"] != "*"
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert compose["services"]["web"]["command"][-2:] == ["-c", "gunicorn.conf.py"]
    assert '"-c", "gunicorn.conf.py"]' in (ROOT / "Dockerfile").read_text()


# ---------------------------------------------------------------- finding 7: query parameters


@pytest.fixture
def member(client, admin_a):
    client.login(username=admin_a.email, password=PASSWORD)
    return client


@pytest.mark.parametrize(
    "ids",
    ["\u00b2", "99999999999999999999", "9223372036854775808", "-1", "1,\u00b2,\u0663", "0", "1" * 5000, ",,,"],
    ids=[
        "superscript-two",
        "20-digits",
        "bigint-plus-one",
        "negative",
        "mixed-digits",
        "zero",
        "5000-digits",
        "commas",
    ],
)
def test_xero_states_poll_answers_without_error_when_ids_are_not_ids(member, org_a, ids):
    make_batch(organisation=org_a)
    response = member.get("/invoices/xero-states/", {"ids": ids})
    assert response.status_code == 200


@pytest.mark.parametrize(
    "url",
    [
        "/batches/?q=%00",
        "/batches/?state=%00&page=1",
        "/invoices/created-in-xero/?page=%00",
        "/batches/?q=a%01b",
    ],
)
def test_list_pages_refuse_control_characters_with_400_when_a_query_carries_them(member, org_a, url):
    response = member.get(url)
    assert response.status_code == 400
    assert b"characters no page here accepts" in response.content


def test_support_console_refuses_a_nul_search_with_400_when_support_searches(client, support_user):
    client.login(username=support_user.email, password=PASSWORD)
    mfa_verify_client(client, support_user)
    assert client.get("/support/?q=%00").status_code == 400
    assert client.get("/support/?rq=a%00").status_code == 400


# ---------------------------------------------------------------- finding 11: styled 403 and 404


@pytest.fixture
def production(settings):
    settings.DEBUG = False
    return settings


def test_404_is_our_page_with_navigation_when_signed_in_and_debug_is_off(production, client, admin_a):
    client.login(username=admin_a.email, password=PASSWORD)
    response = client.get("/batches/999999999/")
    assert response.status_code == 404
    text = response.content.decode()
    assert "We couldn't find that page" in text
    assert 'aria-label="Main menu"' in text and "Back to the dashboard" in text
    for leak in ("Traceback", "Page not found at", "URLconf", "No InvoiceBatch matches", "DEBUG", "Http404"):
        assert leak not in text


def test_404_offers_sign_in_when_anonymous_and_debug_is_off(production, client):
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    text = response.content.decode()
    assert "We couldn't find that page" in text and 'href="/accounts/login/"' in text
    assert "URLconf" not in text and "coordinoter.urls" not in text


def test_403_is_our_page_with_navigation_when_an_accountant_opens_admin_settings(production, client, accountant_a):
    client.login(username=accountant_a.email, password=PASSWORD)
    response = client.get("/settings/")
    assert response.status_code == 403
    text = response.content.decode()
    assert "You don't have access to this page" in text
    assert 'aria-label="Main menu"' in text and "Back to the dashboard" in text
    assert "Traceback" not in text and "PermissionDenied" not in text


def test_403_sends_support_staff_back_to_their_console_when_they_hit_a_customer_only_action(production, client):
    organisation = make_organisation()
    staff = make_user(email="staff@coordinoter.test", support=True)
    make_membership(user=staff, organisation=organisation, role="accountant")
    client.login(username=staff.email, password=PASSWORD)
    mfa_verify_client(client, staff)
    response = client.get("/settings/")
    assert response.status_code == 403 and b"error-page" in response.content
