from django.conf import settings
from django.db import models

from integrations.fields import EncryptedTextField


class TotpDevice(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="totp_device"
    )
    secret = EncryptedTextField(help_text="Base32 TOTP secret, Fernet-encrypted; shown only before confirmation.")
    confirmed_at = models.DateTimeField(
        null=True, blank=True, help_text="When the first code was accepted; until then the device is pending."
    )
    last_used_step = models.BigIntegerField(
        null=True, blank=True, help_text="The last accepted 30-second time step: a code is never accepted twice."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        app_label = "organisations"

    def __str__(self) -> str:  # never the secret
        return f"TOTP device of user {self.user_id} ({'confirmed' if self.confirmed_at else 'pending'})"

    __repr__ = __str__


class RecoveryCode(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mfa_recovery_codes")
    code_hash = models.CharField(max_length=64, help_text="SHA-256 of the normalised code; the code is shown once.")
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        app_label = "organisations"
        indexes = [models.Index(fields=["user", "code_hash"])]

    def __str__(self) -> str:  # never the hash
        return f"Recovery code of user {self.user_id} ({'used' if self.used_at else 'unused'})"
