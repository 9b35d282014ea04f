"""Every way to sign in shares one throttle (issue 13, findings 1-3): the portal's form, Django admin's login and
password reset count per canonical identity (NFKC + casefold) and per client address in the shared cache, and
look-alike addresses are one account with one allowance, on PostgreSQL where iexact folds more than lower()."""

import pytest
from django.core import mail
from django.test import Client

from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db

LOCKED = b"Too many failed sign-ins"


@pytest.fixture(autouse=True)
def limits(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.LOGIN_FAILURE_LIMIT = 3
    settings.LOGIN_FAILURE_IP_LIMIT = 50
    settings.LOGIN_FAILURE_WINDOW_SECONDS = 900
    settings.TRUSTED_PROXY_COUNT = 0
    return settings


def portal_sign_in(email: str, password: str, *, ip: str = "198.51.100.7"):
    client = Client(REMOTE_ADDR=ip)
    response = client.post("/accounts/login/", {"username": email, "password": password})
    return response, client.session.get("_auth_user_id")


def admin_sign_in(username: str, password: str, *, ip: str = "198.51.100.7"):
    client = Client(REMOTE_ADDR=ip)
    response = client.post("/admin/login/?next=/admin/", {"username": username, "password": password})
    return response, client.session.get("_auth_user_id")


# ---------------------------------------------------------------- finding 1: the admin login


def test_admin_login_refuses_the_right_password_when_the_portal_has_locked_the_email():
    staff = make_user(email="support@bolt.test", support=True)
    for _ in range(3):
        portal_sign_in(staff.email, "guess")
    response, signed_in = admin_sign_in(staff.email, PASSWORD, ip="203.0.113.9")
    assert not signed_in
    assert LOCKED in response.content


def test_admin_login_failures_lock_the_portal_when_guessed_repeatedly():
    staff = make_user(email="support@bolt.test", support=True)
    for _ in range(3):
        response, signed_in = admin_sign_in(staff.email, "guess")
        assert response.status_code == 200 and not signed_in
    response, signed_in = admin_sign_in(staff.email, PASSWORD)
    assert not signed_in and LOCKED in response.content
    response, signed_in = portal_sign_in(staff.email, PASSWORD, ip="203.0.113.9")
    assert not signed_in and LOCKED in response.content


def test_admin_login_is_limited_per_address_when_one_address_sprays_many_accounts(limits):
    limits.LOGIN_FAILURE_IP_LIMIT = 5
    staff = make_user(email="support@bolt.test", support=True)
    for n in range(5):
        admin_sign_in(f"spray{n}@bolt.test", "Summer2026!")
    assert not admin_sign_in(staff.email, PASSWORD)[1]
    assert admin_sign_in(staff.email, PASSWORD, ip="203.0.113.9")[1]


# ---------------------------------------------------------------- finding 2: look-alike addresses


def test_a_long_s_address_is_refused_when_the_account_it_folds_to_is_locked():
    user = make_user(email="admin@bolt.test")
    for _ in range(3):
        portal_sign_in(user.email, "guess")
    response, signed_in = portal_sign_in("admin@bolt.te\u017ft", PASSWORD)  # "ſ" (long s) folds to "s"
    assert not signed_in
    assert LOCKED in response.content


def test_look_alike_failures_count_against_one_account_when_they_fold_to_it():
    user = make_user(email="admin@bolt.test")
    for email in ("admin@bolt.te\u017ft", "ADMIN@BOLT.TEST", "ADMIN@bolt.te\u017ft"):  # long s, capitals, both
        portal_sign_in(email, "guess")
    response, signed_in = portal_sign_in(user.email, PASSWORD)
    assert not signed_in and LOCKED in response.content


def test_a_dotless_i_address_does_not_sign_in_when_it_only_looks_like_an_account():
    # PostgreSQL's UPPER('ı') is 'I', so email__iexact matched admin@bolt.test; NFKC + casefold keeps "ı" apart.
    make_user(email="admin@bolt.test")
    response, signed_in = portal_sign_in("adm\u0131n@bolt.test", PASSWORD)
    assert not signed_in
    assert b"match an account" in response.content


def test_a_dotless_i_address_cannot_get_a_fresh_allowance_when_the_account_is_locked():
    user = make_user(email="admin@bolt.test")
    for _ in range(3):
        portal_sign_in(user.email, "guess")
    for email in ("adm\u0131n@bolt.test", "admin@bolt.te\u017ft"):
        assert not portal_sign_in(email, PASSWORD)[1]
        assert not admin_sign_in(email, PASSWORD)[1]


def test_a_long_s_address_signs_in_to_the_one_account_when_the_password_is_right():
    user = make_user(email="admin@bolt.test")
    assert portal_sign_in("admin@bolt.te\u017ft", PASSWORD)[1] == str(user.pk)


# ---------------------------------------------------------------- finding 3: password reset


def test_password_reset_sends_at_most_the_limit_when_requested_25_times(settings):
    settings.PASSWORD_RESET_LIMIT = 3
    make_user(email="admin@bolt.test")
    client = Client(REMOTE_ADDR="198.51.100.7")
    statuses = [client.post("/accounts/password_reset/", {"email": "admin@bolt.test"}).status_code for _ in range(25)]
    assert len(mail.outbox) == 3
    assert statuses[:3] == [302, 302, 302] and set(statuses[3:]) == {429}
    last = client.post("/accounts/password_reset/", {"email": "admin@bolt.test"})
    assert b"already sent several reset links" in last.content


def test_password_reset_limit_counts_look_alike_addresses_as_one_when_they_fold_together(settings):
    settings.PASSWORD_RESET_LIMIT = 2
    make_user(email="admin@bolt.test")
    for email in ("admin@bolt.test", "ADMIN@bolt.te\u017ft", "Admin@Bolt.Test"):
        Client(REMOTE_ADDR="198.51.100.7").post("/accounts/password_reset/", {"email": email})
    assert len(mail.outbox) == 2


def test_password_reset_is_limited_per_address_when_one_client_asks_for_many_accounts(settings):
    settings.PASSWORD_RESET_IP_LIMIT = 4
    for n in range(6):
        make_user(email=f"person{n}@bolt.test")
    client = Client(REMOTE_ADDR="198.51.100.7")
    statuses = [
        client.post("/accounts/password_reset/", {"email": f"person{n}@bolt.test"}).status_code for n in range(6)
    ]
    assert statuses == [302, 302, 302, 302, 429, 429]
    assert len(mail.outbox) == 4
    other = Client(REMOTE_ADDR="203.0.113.9").post("/accounts/password_reset/", {"email": "person5@bolt.test"})
    assert other.status_code == 302 and len(mail.outbox) == 5


def test_password_reset_reads_the_same_when_the_account_does_not_exist(settings):
    settings.PASSWORD_RESET_LIMIT = 1
    client = Client(REMOTE_ADDR="198.51.100.7")
    assert client.post("/accounts/password_reset/", {"email": "nobody@bolt.test"}).status_code == 302
    assert client.post("/accounts/password_reset/", {"email": "nobody@bolt.test"}).status_code == 429
    assert len(mail.outbox) == 0
