"""People and what happened to them: invitations, the organisation's audit trail, support's replies.

Imported at the end of organisations/models.py so Django sees them."""

from django.conf import settings
from django.db import models

from organisations.models import Membership  # defined before models.py imports this module


class Invitation(models.Model):
    """An admin's invitation to join an organisation, sent by email as a single-use link that expires.

    Only the SHA-256 of the link's token is stored: a copy of the database cannot be used to join anyone."""

    organisation = models.ForeignKey("organisations.Organisation", on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField(help_text="Who may accept it: the account made or used must have this address.")
    email_canonical = models.CharField(max_length=254, help_text="organisations.identity.canonical_email(email).")
    role = models.CharField(max_length=20, choices=Membership.Role.choices)
    token_hash = models.CharField(max_length=64, unique=True, help_text="SHA-256 (hex) of the link's token.")
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True, help_text="Withdrawn by an admin, or replaced.")

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["organisation", "email_canonical"])]

    def __str__(self) -> str:
        return f"{self.email} to {self.organisation_id} ({self.role})"


class OrganisationAuditEvent(models.Model):
    """A change to the organisation or a look at its data by support: people, roles, settings, support's views.

    Xero connection events have their own trail (integrations.IntegrationAuditEvent); the audit page shows both,
    merged (organisations.audit.audit_trail)."""

    class ActorKind(models.TextChoices):
        USER = "user", "Organisation user"
        SUPPORT = "support", "Coordinoter support"
        SYSTEM = "system", "System"

    organisation = models.ForeignKey(
        "organisations.Organisation", on_delete=models.CASCADE, related_name="audit_events"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Empty for the system.",
    )
    actor_email = models.CharField(max_length=254, blank=True, help_text="Kept when the account is deleted.")
    actor_kind = models.CharField(max_length=10, choices=ActorKind.choices, default=ActorKind.SYSTEM)
    action = models.CharField(max_length=50, help_text="organisations.audit.ACTIONS names each in words.")
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["organisation", "-created_at"], name="org_audit_newest")]

    def __str__(self) -> str:
        return self.action


class SupportReply(models.Model):
    """Support's answer to a support request, emailed to the person who sent it."""

    support_request = models.ForeignKey(
        "organisations.SupportRequest", on_delete=models.CASCADE, related_name="replies"
    )
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    message = models.TextField(max_length=5000)
    emailed_to = models.EmailField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return self.message[:60]
