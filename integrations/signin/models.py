"""Sign in with Xero's records: one row per authorize round trip, and the link from a user to a Xero user."""

from django.conf import settings
from django.db import models

from integrations.fields import EncryptedTextField


class XeroSignInState(models.Model):
    """One Sign in / Sign up with Xero round trip: single-use, expiring, bound to the browser session that started
    it (and, to link, to the signed-in user). The nonce goes to Xero and must come back inside the id_token."""

    class Intent(models.TextChoices):
        SIGN_IN = "sign_in", "Sign in"
        SIGN_UP = "sign_up", "Sign up"
        LINK = "link", "Link to a signed-in account"

    state_digest = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the state sent to Xero.")
    intent = models.CharField(max_length=10, choices=Intent.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="The signed-in user who asked to link Xero; empty for sign-in and sign-up.",
    )
    session_digest = models.CharField(max_length=64, help_text="SHA-256 of the session key that started it.")
    nonce = models.CharField(max_length=64, help_text="Sent to Xero; the id_token must carry it back.")
    code_verifier = EncryptedTextField(help_text="PKCE verifier, encrypted.")
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)
    consumed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Xero {self.get_intent_display().lower()} round trip"


class XeroIdentity(models.Model):
    """A Coordinoter user who signs in with Xero, keyed by Xero's user id (the id_token's xero_userid), never by
    email: the email only decides whether a sign-up may create an account (no account takeover)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="xero_identity")
    xero_user_id = models.CharField(max_length=64, unique=True, help_text="Xero's user id (xero_userid), lower case.")
    subject = models.CharField(max_length=255, help_text="The id_token's sub at the time of linking.")
    email_at_link = models.EmailField(blank=True, help_text="The email Xero reported when the link was made.")
    linked_at = models.DateTimeField()
    last_sign_in_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "Xero sign-in link"

    def __str__(self) -> str:
        return f"Xero sign-in link for user {self.user_id}"
