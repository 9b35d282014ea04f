"""A text field encrypted at rest with Fernet over settings.TOKEN_ENCRYPTION_KEYS.

The first key encrypts; every key decrypts, so a new key can be put first and `manage.py rotate_token_keys`
re-encrypts the rows before the old key is dropped. The field is not editable: it never appears in forms or
the admin. The empty string stays empty (a cleared token), so "no token" needs no key.
"""

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models


class TokenDecryptionError(Exception):
    """A stored value could not be decrypted with any configured key (the message never holds the value)."""


@lru_cache(maxsize=4)
def _fernet_for(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("TOKEN_ENCRYPTION_KEYS needs at least one Fernet key.")
    try:
        return MultiFernet([Fernet(key.encode() if isinstance(key, str) else key) for key in keys])
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(
            "Every TOKEN_ENCRYPTION_KEYS entry must be a Fernet key (32 url-safe base64-encoded bytes)."
        ) from exc


def fernet() -> MultiFernet:
    return _fernet_for(tuple(settings.TOKEN_ENCRYPTION_KEYS))


def encrypt(plaintext: str) -> str:
    return fernet().encrypt(plaintext.encode()).decode()


def decrypt(ciphertext: str) -> str:
    try:
        return fernet().decrypt(ciphertext.encode()).decode()
    except InvalidToken:
        raise TokenDecryptionError(
            "A stored secret could not be decrypted with any key in TOKEN_ENCRYPTION_KEYS."
        ) from None


def encrypted_with_primary_key(ciphertext: str) -> bool:
    """True when the first (current) key alone decrypts this value."""
    if not ciphertext:
        return True
    first = Fernet(settings.TOKEN_ENCRYPTION_KEYS[0].encode())
    try:
        first.decrypt(ciphertext.encode())
    except InvalidToken:
        return False
    return True


class EncryptedTextField(models.TextField):
    description = "Text encrypted at rest (Fernet; first key encrypts, all decrypt)"

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("editable", False)
        kwargs.setdefault("blank", True)
        kwargs.setdefault("default", "")
        super().__init__(*args, **kwargs)

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return value
        return decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt(value)

    def formfield(self, **kwargs):
        return None
