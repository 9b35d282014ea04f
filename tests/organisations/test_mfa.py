"""The staff second factor (OWASP ASVS 4.0.3 4.3.1): organisations.mfa on /admin/ and /support/."""

import logging

import pyotp
import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from integrations.fields import decrypt
from organisations.mfa.services import SESSION_VERIFIED_AT
from organisations.models import RecoveryCode, TotpDevice
from tests.factories import PASSWORD, make_membership, make_organisation, make_totp_device, make_user, totp_code_for

pytestmark = pytest.mark.django_db

VERIFY = "/accounts/mfa/verify/"
ENROL = "/accounts/mfa/enrol/"


@pytest.fixture
def staff(db):
    user = make_user(email="Sören.Ünal@coordinoter.test", support=True)
    make_totp_device(user=user)
    return user


def signed_in(user) -> Client:
    client = Client()
    assert client.login(username=user.email, password=PASSWORD)
    return client


def verify(client: Client, code: str, next_url: str = "/support/"):
    return client.post(VERIFY, {"code": code, "next": next_url})


@pytest.mark.parametrize("path", ["/admin/", "/support/", "/support/webhooks/", "/admin/auth/user/"])
def test_unverified_staff_are_sent_to_verification_when_they_open_an_administrative_page(staff, path):
    response = signed_in(staff).get(path)
    assert response.status_code == 302
    assert response["Location"].startswith(VERIFY) and "next=" in response["Location"]


def test_staff_without_a_device_are_sent_to_enrolment_when_they_open_the_support_console(db):
    user = make_user(email="new.staff@coordinoter.test", support=True)
    response = signed_in(user).get("/support/")
    assert response.status_code == 302 and response["Location"].startswith(ENROL)


def test_a_wrong_code_is_refused_when_staff_verify(staff):
    client = signed_in(staff)
    response = verify(client, "000000" if totp_code_for(staff) != "000000" else "111111")
    assert response.status_code == 400 and b"didn&#x27;t match" in response.content
    assert SESSION_VERIFIED_AT not in client.session
    assert client.get("/support/")["Location"].startswith(VERIFY)


def test_verification_is_locked_for_fifteen_minutes_when_five_codes_were_wrong(staff, settings):
    client = signed_in(staff)
    wrong = "123456" if totp_code_for(staff) != "123456" else "654321"
    assert [verify(client, wrong).status_code for _ in range(5)] == [400] * 5
    assert settings.MFA_FAILURE_WINDOW_SECONDS == 15 * 60
    response = verify(client, totp_code_for(staff))  # even the right code, while locked
    assert response.status_code == 429 and b"15 minutes" in response.content
    assert client.get("/support/").status_code == 302


def test_the_right_code_lets_staff_in_when_computed_from_the_stored_secret(staff, caplog):
    client = signed_in(staff)
    secret = TotpDevice.objects.get(user=staff).secret
    code = pyotp.TOTP(secret).now()
    with caplog.at_level(logging.DEBUG):
        response = verify(client, code, next_url="/admin/")
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert client.get("/support/").status_code == 200
    assert client.get("/admin/").status_code == 200
    assert secret not in caplog.text and code not in caplog.text


def test_a_used_code_is_refused_when_replayed_within_its_window(staff):
    code = totp_code_for(staff)
    assert verify(signed_in(staff), code).status_code == 302
    replay = signed_in(staff)
    assert verify(replay, code).status_code == 400
    assert replay.get("/support/")["Location"].startswith(VERIFY)


def test_enrolment_shows_the_key_once_and_ten_recovery_codes_when_the_first_code_confirms_it(db):
    user = make_user(email="Zoë.Åberg@coordinoter.test", support=True)
    client = signed_in(user)
    page = client.get(ENROL + "?next=/support/").content.decode()
    secret = TotpDevice.objects.get(user=user).secret
    assert secret in page and "otpauth://totp/Coordinoter:" in page
    response = client.post(ENROL, {"code": pyotp.TOTP(secret).now(), "next": "/support/"})
    assert response.status_code == 200
    codes = response.context["codes"]
    assert len(codes) == 10 and all(code in response.content.decode() for code in codes)
    assert not RecoveryCode.objects.filter(code_hash__in=codes).exists()  # only hashes are stored
    assert client.get("/support/").status_code == 200
    # Confirmed: the key is never shown again.
    again = client.get(ENROL)
    assert again.status_code == 302 and again["Location"].startswith(VERIFY)
    assert secret not in client.get(VERIFY).content.decode()


def test_a_recovery_code_works_once_when_the_app_is_lost(db):
    user = make_user(email="recovery@coordinoter.test", support=True)
    client = signed_in(user)
    client.get(ENROL)
    secret = TotpDevice.objects.get(user=user).secret
    codes = client.post(ENROL, {"code": pyotp.TOTP(secret).now(), "next": "/support/"}).context["codes"]
    first = signed_in(user)
    assert verify(first, codes[3].upper()).status_code == 302
    assert first.get("/support/").status_code == 200
    second = signed_in(user)
    assert verify(second, codes[3]).status_code == 400
    assert verify(second, codes[4]).status_code == 302


def test_customers_never_see_the_second_factor_when_they_sign_in(db):
    organisation = make_organisation(name="Bäckerei Σ")
    customer = make_user(email="admin@bäckerei.test")
    make_membership(user=customer, organisation=organisation, role="admin")
    client = signed_in(customer)
    assert client.get("/").status_code in (200, 302)
    assert not client.get("/").get("Location", "").startswith(("/accounts/mfa/",))
    assert client.get("/settings/").status_code == 200
    assert client.get("/admin/")["Location"].startswith("/admin/login/")  # Django's own refusal, not ours
    assert client.get("/support/").status_code == 403
    assert client.get(VERIFY)["Location"] == "/"
    assert client.get(ENROL)["Location"] == "/"
    assert not TotpDevice.objects.filter(user=customer).exists()


def test_the_secret_is_encrypted_when_stored_in_the_database(staff):
    secret = TotpDevice.objects.get(user=staff).secret
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM organisations_totpdevice WHERE user_id = %s", [staff.pk])
        (stored,) = cursor.fetchone()
    assert secret not in stored and stored.startswith("gAAAA")
    assert decrypt(stored) == secret
    assert secret not in str(TotpDevice.objects.get(user=staff)) and secret not in repr(
        TotpDevice.objects.get(user=staff)
    )


def test_a_new_sign_in_asks_for_a_fresh_code_when_the_session_was_verified_before(staff):
    client = signed_in(staff)
    assert verify(client, totp_code_for(staff)).status_code == 302
    assert client.login(username=staff.email, password=PASSWORD)
    assert client.get("/support/")["Location"].startswith(VERIFY)
    assert verify(client, totp_code_for(staff)).status_code == 302
    client.post(reverse("logout"))
    assert SESSION_VERIFIED_AT not in client.session


def test_verification_never_redirects_off_site_when_next_points_elsewhere(staff):
    client = signed_in(staff)
    response = verify(client, totp_code_for(staff), next_url="https://evil.test/")
    assert response["Location"] == "/support/"
