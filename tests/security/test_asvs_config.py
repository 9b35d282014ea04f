"""OWASP ASVS 4.0.3 level-2 lines that are configuration rather than a flow (docs/security.md names each)."""

import logging

import pytest
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.test import Client

from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db


def test_a_password_under_12_characters_is_refused_when_a_person_sets_it():  # V2.1.1
    with pytest.raises(ValidationError):
        validate_password("Xq7!rT2#pL9")  # 11 characters
    validate_password("a long passphrase with spaces and 64+ characters is fine " * 2)  # V2.1.2, V2.1.3


def test_common_passwords_are_refused_when_a_person_sets_them():  # V2.1.7 (offline list, no breach API)
    with pytest.raises(ValidationError):
        validate_password("password1234")


def test_passwords_are_stored_with_a_slow_salted_hash_when_the_product_settings_load():  # V2.4.1
    # Read from the settings module and Django's defaults: this suite's conftest swaps in a fast hasher.
    from django.conf import global_settings

    import coordinoter.settings as product

    hashers = getattr(product, "PASSWORD_HASHERS", global_settings.PASSWORD_HASHERS)
    assert hashers[0] in (
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "django.contrib.auth.hashers.Argon2PasswordHasher",
        "django.contrib.auth.hashers.ScryptPasswordHasher",
    )


def test_sessions_end_after_twelve_hours_at_most_when_settings_load(settings):  # V3.3.2
    assert settings.SESSION_COOKIE_AGE <= 12 * 60 * 60


def test_sign_in_failures_successes_and_locks_are_logged_without_the_address_when_people_sign_in(
    settings, caplog
):  # V7.1.3 (and V7.1.1: no credential and no email in the log)
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.LOGIN_FAILURE_LIMIT = 1
    user = make_user(email="person@bolt.test")
    client = Client(REMOTE_ADDR="198.51.100.7")
    with caplog.at_level(logging.INFO, logger="organisations.auth"):
        client.post("/accounts/login/", {"username": user.email, "password": "wrong-guess-123"})
        client.post("/accounts/login/", {"username": user.email, "password": PASSWORD})
    events = [getattr(r, "event", "") for r in caplog.records]
    assert "auth.sign_in.failed" in events and "auth.sign_in.locked" in events
    for record in caplog.records:
        text = str(record.__dict__)
        assert "person@bolt.test" not in text and "wrong-guess-123" not in text and PASSWORD not in text
    assert {getattr(r, "client", "") for r in caplog.records if getattr(r, "event", "").startswith("auth.")} == {
        "198.51.100.7"
    }
