"""Secrets at rest and in the open: encryption with a key list, rotation, and a full-cycle scan of every table and
every log line for plaintext tokens."""

import logging
from io import StringIO
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from cryptography.fernet import Fernet
from django.contrib import admin
from django.core.management import call_command
from django.db import connection as db
from django.test import RequestFactory
from django.urls import reverse

from integrations.fields import TokenDecryptionError, decrypt
from integrations.models import XeroConnection, XeroOAuthState
from integrations.xero import tokens
from tests.factories import CONNECTION_ID, make_connection, token_response
from tests.integrations.conftest import xero_json

pytestmark = pytest.mark.django_db


def raw_column(model, pk, field: str) -> str:
    with db.cursor() as cursor:
        cursor.execute(f'SELECT "{field}" FROM "{model._meta.db_table}" WHERE id = %s', [pk])
        return cursor.fetchone()[0]


def test_tokens_are_stored_encrypted_when_saved(org_a):
    connection = make_connection(organisation=org_a)
    stored = raw_column(XeroConnection, connection.pk, "refresh_token")
    assert connection.refresh_token not in stored and stored.startswith("gAAAA")  # a Fernet token
    assert decrypt(stored) == connection.refresh_token


def test_old_ciphertexts_stay_readable_and_rotate_token_keys_reencrypts_them_under_the_new_first_key(org_a, settings):
    old_key = settings.TOKEN_ENCRYPTION_KEYS[0]
    connection = make_connection(organisation=org_a)
    plaintext = connection.refresh_token
    state = XeroOAuthState.objects.create(
        state_digest="d" * 64,
        organisation=org_a,
        user_id=_user(),
        session_digest="s" * 64,
        code_verifier="v" * 64,
        created_at=connection.created_at,
        expires_at=connection.created_at,
    )
    new_key = Fernet.generate_key().decode()
    settings.TOKEN_ENCRYPTION_KEYS = [new_key, old_key]
    assert XeroConnection.objects.get(pk=connection.pk).refresh_token == plaintext  # old ciphertext readable
    assert not _decrypts_with(new_key, raw_column(XeroConnection, connection.pk, "refresh_token"))

    out = StringIO()
    call_command("rotate_token_keys", stdout=out)
    assert "integrations.XeroConnection: 1 row(s) re-encrypted" in out.getvalue()
    assert "integrations.XeroOAuthState: 1 row(s) re-encrypted" in out.getvalue()
    assert _decrypts_with(new_key, raw_column(XeroConnection, connection.pk, "refresh_token"))
    assert _decrypts_with(new_key, raw_column(XeroConnection, connection.pk, "access_token"))
    assert _decrypts_with(new_key, raw_column(XeroOAuthState, state.pk, "code_verifier"))
    settings.TOKEN_ENCRYPTION_KEYS = [new_key]  # the old key can now be dropped
    assert XeroConnection.objects.get(pk=connection.pk).refresh_token == plaintext
    again = StringIO()
    call_command("rotate_token_keys", stdout=again)
    assert "integrations.XeroConnection: 0 row(s) re-encrypted" in again.getvalue()


def test_rotate_token_keys_reencrypts_staff_totp_secrets_when_a_new_key_is_put_first(settings):
    from organisations.models import TotpDevice
    from tests.factories import make_totp_device, make_user

    old_key = settings.TOKEN_ENCRYPTION_KEYS[0]
    device = make_totp_device(user=make_user(email="support@coordinoter.test", support=True))
    new_key = Fernet.generate_key().decode()
    settings.TOKEN_ENCRYPTION_KEYS = [new_key, old_key]
    out = StringIO()
    call_command("rotate_token_keys", stdout=out)
    assert "organisations.TotpDevice: 1 row(s) re-encrypted" in out.getvalue()
    settings.TOKEN_ENCRYPTION_KEYS = [new_key]
    assert TotpDevice.objects.get(pk=device.pk).secret == device.secret


def _user():
    from tests.factories import make_user

    return make_user().pk


def _decrypts_with(key: str, ciphertext: str) -> bool:
    try:
        Fernet(key.encode()).decrypt(ciphertext.encode())
    except Exception:
        return False
    return True


def test_a_value_no_key_can_decrypt_fails_without_revealing_it(org_a, settings):
    connection = make_connection(organisation=org_a)
    settings.TOKEN_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(TokenDecryptionError) as caught:
        XeroConnection.objects.get(pk=connection.pk)
    assert "gAAAA" not in str(caught.value)


def test_tokens_never_appear_in_repr_admin_or_forms(org_a, support_user):
    connection = make_connection(organisation=org_a)
    assert connection.access_token not in repr(connection) and connection.refresh_token not in str(connection)
    grant = tokens.access_token_get(connection_id=connection.pk)
    assert connection.access_token not in repr(grant)
    model_admin = admin.site._registry[XeroConnection]
    request = RequestFactory().get("/")
    request.user = support_user
    fields = model_admin.get_fields(request, connection)
    assert "access_token" not in fields and "refresh_token" not in fields
    from django.forms import modelform_factory

    assert "refresh_token" not in modelform_factory(XeroConnection, fields="__all__")().fields


@responses.activate
def test_no_plaintext_token_is_in_any_table_or_log_after_a_connect_refresh_disconnect_cycle(
    login_as, admin_a, org_a, caplog, settings
):
    settings.XERO_REFRESH_AHEAD_SECONDS = 3600  # every use refreshes: exercise rotation
    issued = [
        token_response(refresh_token="rt-first-" + "a" * 20),
        token_response(refresh_token="rt-second-" + "b" * 20),
    ]
    codes = ["code-" + "c" * 30]
    responses.post("https://identity.xero.com/connect/token", json=issued[0])
    responses.post("https://identity.xero.com/connect/token", json=issued[1])
    responses.get("https://api.xero.com/connections", json=xero_json("connections_one.json"))
    responses.get("https://api.xero.com/api.xro/2.0/Organisation", json=xero_json("organisation.json"))
    responses.delete(f"https://api.xero.com/connections/{CONNECTION_ID}", status=204)
    responses.post("https://identity.xero.com/connect/revocation", status=200)
    client = login_as(admin_a)
    with caplog.at_level(logging.DEBUG):
        location = client.post(reverse("integrations:xero_connect"))["Location"]
        query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
        client.get(reverse("integrations:xero_callback"), {"code": codes[0], "state": query["state"]})
        connection = XeroConnection.objects.get(organisation=org_a)
        tokens.access_token_get(connection_id=connection.pk)  # refresh (rotation)
        client.post(reverse("integrations:xero_disconnect"))
    verifier = parse_qs(responses.calls[0].request.body)["code_verifier"][0]
    secrets = (
        [t["access_token"] for t in issued]
        + [t["refresh_token"] for t in issued]
        + [verifier, query["state"], codes[0]]
    )
    secrets += [settings.XERO_CLIENT_SECRET]
    dump = _dump_every_table()
    logs = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    for secret in secrets:
        assert secret not in dump, "a secret is stored in plain text"
        assert secret not in logs, "a secret reached the logs"
    assert XeroConnection.objects.get(organisation=org_a).status == "disconnected"


def _dump_every_table() -> str:
    chunks = []
    with db.cursor() as cursor:
        for table in db.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608 - table names come from the schema
            chunks.extend(str(row) for row in cursor.fetchall())
    return "\n".join(chunks)
