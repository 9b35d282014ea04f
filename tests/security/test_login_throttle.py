"""Guessing passwords: failures are counted per email and per client address in the shared cache (Redis), a locked
key refuses even the right password, the refusal reveals nothing about whether the account exists, and a lock
ends with its window. Behind our own proxies the client address comes from X-Forwarded-For (TRUSTED_PROXY_COUNT);
without them a forged X-Forwarded-For changes nothing."""

import time

import pytest
from django.test import Client

from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db

LOCKED = b"Too many failed sign-ins"
WRONG = b"don&#x27;t match an account"


@pytest.fixture(autouse=True)
def limits(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.LOGIN_FAILURE_LIMIT = 3
    settings.LOGIN_FAILURE_IP_LIMIT = 6
    settings.LOGIN_FAILURE_WINDOW_SECONDS = 900
    settings.TRUSTED_PROXY_COUNT = 0
    return settings


def sign_in(email: str, password: str, *, ip: str = "198.51.100.7", forwarded: str = ""):
    client = Client(REMOTE_ADDR=ip, **({"HTTP_X_FORWARDED_FOR": forwarded} if forwarded else {}))
    response = client.post("/accounts/login/", {"username": email, "password": password})
    return response, "_auth_user_id" in client.session


def test_the_right_password_is_refused_when_the_email_is_locked_after_repeated_failures(db):
    user = make_user(email="victim@example.test")
    for _ in range(3):
        response, signed_in = sign_in(user.email, "guess")
        assert WRONG in response.content and not signed_in
    response, signed_in = sign_in(user.email, PASSWORD, ip="203.0.113.9")  # from anywhere: the email is locked
    assert LOCKED in response.content and not signed_in


def test_the_lock_reads_the_same_when_the_account_does_not_exist(db):
    for _ in range(3):
        assert WRONG in sign_in("nobody@example.test", "guess")[0].content
    assert LOCKED in sign_in("nobody@example.test", "guess")[0].content


def test_one_address_guessing_many_accounts_is_locked_when_it_passes_the_address_limit(db):
    user = make_user(email="someone@example.test")
    for n in range(6):
        sign_in(f"spray{n}@example.test", "Summer2026!")
    response, signed_in = sign_in(user.email, PASSWORD)
    assert LOCKED in response.content and not signed_in
    assert sign_in(user.email, PASSWORD, ip="203.0.113.9")[1]  # the account itself is fine from elsewhere


def test_a_forged_forwarded_for_changes_nothing_when_no_proxy_is_trusted(db):
    user = make_user(email="someone@example.test")
    for n in range(6):
        sign_in(f"spray{n}@example.test", "x", forwarded=f"10.0.0.{n}")
    assert LOCKED in sign_in(user.email, PASSWORD, forwarded="10.9.9.9")[0].content


def test_each_client_behind_our_proxy_has_its_own_count_when_one_proxy_is_trusted(db, limits):
    limits.TRUSTED_PROXY_COUNT = 1
    user = make_user(email="someone@example.test")
    for n in range(6):  # one guesser behind the proxy (whatever it writes first, the proxy appends its address)
        sign_in(f"spray{n}@example.test", "x", ip="10.0.0.2", forwarded=f"1.2.3.{n}, 198.51.100.66")
    assert LOCKED in sign_in(user.email, PASSWORD, ip="10.0.0.2", forwarded="198.51.100.66")[0].content
    # Everyone else behind the same proxy still signs in: the lock is not on the proxy's address.
    assert sign_in(user.email, PASSWORD, ip="10.0.0.2", forwarded="203.0.113.20")[1]


def test_a_success_clears_the_email_count_when_the_person_remembers_the_password(db):
    user = make_user(email="forgetful@example.test")
    for _ in range(2):
        sign_in(user.email, "guess")
    assert sign_in(user.email, PASSWORD)[1]
    for _ in range(2):
        sign_in(user.email, "guess")
    assert sign_in(user.email, PASSWORD)[1]  # 2 + 2 failures, never 3 in a row


def test_the_lock_ends_when_its_window_has_passed(db, limits):
    limits.LOGIN_FAILURE_WINDOW_SECONDS = 1
    user = make_user(email="patient@example.test")
    for _ in range(3):
        sign_in(user.email, "guess")
    assert LOCKED in sign_in(user.email, PASSWORD)[0].content
    time.sleep(1.2)
    assert sign_in(user.email, PASSWORD)[1]


def test_sign_in_stays_open_and_the_outage_is_logged_when_the_cache_is_unreachable(db, settings, caplog):
    # A real Redis client against a port nothing listens on: every cache call fails as it does when Redis is down.
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
    }
    user = make_user(email="during-outage@example.test")
    response, signed_in = sign_in(user.email, "guess")
    assert response.status_code == 200 and WRONG in response.content and not signed_in
    assert sign_in(user.email, PASSWORD)[1]
    assert any(getattr(r, "event", "") == "auth.throttle.unavailable" for r in caplog.records)
