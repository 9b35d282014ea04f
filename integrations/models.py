"""XeroConnection (one per organisation), the OAuth flow's server-side records, and the audit trail.

Token fields are EncryptedTextField (never editable, never in forms or the admin) and only
integrations/xero/tokens.py writes them. No __str__ or repr here mentions a token.
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from integrations.fields import EncryptedTextField
from organisations.models import Organisation

# The one rule "may Xero calls be made for this connection?": active, no disconnect step pending, bound to a tenant.
# Read in SQL by XeroConnection.objects.usable() and on a loaded row by XeroConnection.is_usable, both from this.
_USABLE_WHEN = {"status": "active", "disconnect_step": ""}
_USABLE_UNLESS = {"tenant_id": ""}


class XeroConnectionQuerySet(models.QuerySet):
    def usable(self) -> "XeroConnectionQuerySet":
        """Connections Xero calls may be made for (the rule above)."""
        return self.filter(**_USABLE_WHEN).exclude(**_USABLE_UNLESS)


class XeroConnection(models.Model):
    class Status(models.TextChoices):
        NOT_CONNECTED = "not_connected", "Not connected"
        ACTIVE = "active", "Connected"
        NEEDS_RECONNECT = "needs_reconnect", "Needs reconnect"
        DISCONNECTED = "disconnected", "Disconnected"
        REVOKED_IN_XERO = "revoked_in_xero", "Disconnected in Xero"

    class DisconnectStep(models.TextChoices):
        NONE = "", "Nothing pending"
        DELETE_CONNECTION = "delete_connection", "Remove the connection in Xero"
        REVOKE_TOKEN = "revoke_token", "Revoke the refresh token in Xero"
        CLEAR_TOKENS = "clear_tokens", "Erase the stored tokens"

    # Statuses in which the connection holds its Xero organisation: no other organisation may bind it.
    BOUND_STATUSES = (Status.ACTIVE, Status.NEEDS_RECONNECT)

    organisation = models.OneToOneField(Organisation, on_delete=models.CASCADE, related_name="xero_connection")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.NOT_CONNECTED, db_index=True)
    disconnect_step = models.CharField(
        max_length=20,
        choices=DisconnectStep.choices,
        default=DisconnectStep.NONE,
        blank=True,
        help_text="The disconnect's progress: the step still to do, empty when nothing is pending. Its Xero calls are "
        "outbound operations (integrations/connections/disconnect.py), which hold the attempts.",
    )

    tenant_id = models.CharField(max_length=36, blank=True, db_index=True, help_text="Xero's tenantId.")
    tenant_name = models.CharField(max_length=255, blank=True)
    tenant_type = models.CharField(max_length=30, blank=True)
    tenant_short_code = models.CharField(max_length=20, blank=True, help_text="For deep links into Xero.")
    base_currency = models.CharField(max_length=3, blank=True)
    connection_id = models.CharField(max_length=36, blank=True, help_text="The /connections id (for DELETE).")
    auth_event_id = models.CharField(max_length=36, blank=True, help_text="authEventId of the consent.")
    xero_user_id = models.CharField(
        max_length=36, blank=True, help_text="The Xero user whose consent this is (tokens are per user)."
    )
    scopes = models.TextField(blank=True, help_text="Granted scopes, space-separated.")

    access_token = EncryptedTextField(help_text="Encrypted. Written only by integrations/xero/tokens.py.")
    refresh_token = EncryptedTextField(help_text="Encrypted. Written only by integrations/xero/tokens.py.")
    access_token_expires_at = models.DateTimeField(null=True, blank=True)
    refresh_token_issued_at = models.DateTimeField(
        null=True, blank=True, help_text="When the current refresh token was issued (idle expiry is 60 days)."
    )
    last_refreshed_at = models.DateTimeField(null=True, blank=True)

    connected_at = models.DateTimeField(
        null=True, blank=True, help_text="Invoice batches created before this are not synced."
    )
    connected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    disconnected_at = models.DateTimeField(null=True, blank=True)
    disconnected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status_changed_at = models.DateTimeField(null=True, blank=True)
    needs_reconnect_reason = models.CharField(max_length=255, blank=True)
    reconnect_requested_at = models.DateTimeField(
        null=True, blank=True, help_text="Set when support asks the admins to reconnect; cleared by a reconnect."
    )
    reconnect_requested_reason = models.CharField(max_length=255, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    last_verified_at = models.DateTimeField(
        null=True, blank=True, help_text="Last time GET /connections confirmed the tenant is still connected."
    )
    last_synced_at = models.DateTimeField(
        null=True, blank=True, help_text="Last successful sync, reported by the invoices app."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = XeroConnectionQuerySet.as_manager()

    class Meta:
        constraints = [
            # One Xero organisation feeds at most one Coordinoter organisation at a time.
            models.UniqueConstraint(
                fields=["tenant_id"],
                condition=Q(status__in=["active", "needs_reconnect"]) & ~Q(tenant_id=""),
                name="xero_tenant_bound_once",
            ),
        ]

    def __str__(self) -> str:
        return f"Xero for {self.organisation_id}: {self.status}"

    @property
    def is_bound(self) -> bool:
        return self.status in self.BOUND_STATUSES

    @property
    def is_usable(self) -> bool:
        """The same rule as XeroConnection.objects.usable(), on this row as loaded."""
        return all(getattr(self, f) == v for f, v in _USABLE_WHEN.items()) and not any(
            getattr(self, f) == v for f, v in _USABLE_UNLESS.items()
        )

    @property
    def has_tokens(self) -> bool:
        return bool(self.refresh_token)


class XeroOAuthState(models.Model):
    """One authorize round trip: single-use, expiring, bound to the session, the user and the organisation."""

    class Purpose(models.TextChoices):
        CONNECT = "connect", "Connect"
        RECONNECT = "reconnect", "Reconnect"

    state_digest = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the state sent to Xero.")
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    session_digest = models.CharField(max_length=64, help_text="SHA-256 of the session key that started it.")
    code_verifier = EncryptedTextField(help_text="PKCE verifier, encrypted.")
    purpose = models.CharField(max_length=10, choices=Purpose.choices, default=Purpose.CONNECT)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)
    consumed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"OAuth state for {self.organisation_id} ({self.purpose})"


class XeroPendingTenantChoice(models.Model):
    """A consent that authorised several Xero organisations (or a different one than before), waiting for the
    admin to choose or confirm. Holds the new tokens encrypted until then; never in the session."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(
        Organisation,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="Empty for a sign-up with Xero: the organisation is created, named after the one chosen here.",
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    session_digest = models.CharField(max_length=64)
    access_token = EncryptedTextField(help_text="Encrypted. Written only by integrations/xero/tokens.py.")
    refresh_token = EncryptedTextField(help_text="Encrypted. Written only by integrations/xero/tokens.py.")
    access_token_expires_at = models.DateTimeField(null=True, blank=True)
    scopes = models.TextField(blank=True)
    auth_event_id = models.CharField(max_length=36, blank=True)
    xero_user_id = models.CharField(max_length=36, blank=True)
    candidates = models.JSONField(default=list, help_text="This consent's tenants, as read from /connections.")
    previous_tenant_id = models.CharField(max_length=36, blank=True)
    previous_tenant_name = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)
    consumed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Pending Xero organisation choice for {self.organisation_id}"


class IntegrationAuditEvent(models.Model):
    """Every action on a connection, by anyone: who, when, what, and how it ended. No secrets in detail."""

    class ActorKind(models.TextChoices):
        USER = "user", "Organisation user"
        SUPPORT = "support", "Coordinoter support"
        SYSTEM = "system", "System"

    class Outcome(models.TextChoices):
        SUCCESS = "success", "Success"
        FAILURE = "failure", "Failure"
        REFUSED = "refused", "Refused"

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="integration_events")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Empty for the system.",
    )
    actor_kind = models.CharField(max_length=10, choices=ActorKind.choices, default=ActorKind.SYSTEM)
    action = models.CharField(max_length=50)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.SUCCESS)
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["organisation", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.action} ({self.outcome})"


from integrations.outbound.models import OutboundAttempt, OutboundOperation  # noqa: E402,F401
from integrations.signin.models import XeroIdentity, XeroSignInState  # noqa: E402,F401
from integrations.usage.models import XeroApiUsage  # noqa: E402,F401
from integrations.webhooks.models import ReconciliationState, WebhookEvent  # noqa: E402,F401
