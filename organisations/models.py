from django.conf import settings
from django.db import models
from django.db.models.functions import Lower


class Organisation(models.Model):
    """A customer business: the tenant. Everything a customer owns hangs off one of these."""

    name = models.CharField(max_length=200)
    name_skeleton = models.CharField(
        max_length=200,
        blank=True,
        editable=False,
        db_index=True,
        help_text="The name's confusables skeleton (organisations.names): equal skeletons look alike.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    failure_digest_until = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Invoices that failed or need attention up to this time are in a digest already sent.",
    )
    time_zone = models.CharField(
        max_length=64,
        blank=True,
        help_text="IANA zone (Australia/Sydney) that times are shown in and that decides today; empty: UTC.",
    )
    locale = models.CharField(
        max_length=10,
        blank=True,
        help_text="How people here write dates and amounts (organisations.locale.LOCALES); empty: ISO only.",
    )
    locale_source = models.CharField(
        max_length=10,
        blank=True,
        choices=[("", "Not set"), ("xero", "From Xero"), ("settings", "Chosen in Settings")],
        help_text="Where the zone and locale came from: Xero fills them only until an admin chooses in Settings.",
    )

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(Lower("name"), name="organisation_name_unique_ci")]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        from organisations.names import name_skeleton

        self.name_skeleton = name_skeleton(self.name)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "name" in update_fields:
            kwargs["update_fields"] = {*update_fields, "name_skeleton"}
        super().save(*args, **kwargs)


class Membership(models.Model):
    class Role(models.TextChoices):
        ADMIN = "admin", "Admin"
        ACCOUNTANT = "accountant", "Accountant"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(
        max_length=20, choices=Role.choices, help_text="Admins connect Xero, map accounts and create batches."
    )
    failure_emails = models.BooleanField(
        default=True, help_text="Admins: receive the digest of invoices that failed or need attention."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["organisation__name"]
        constraints = [models.UniqueConstraint(fields=["user", "organisation"], name="membership_unique")]

    def __str__(self) -> str:
        return f"{self.user} in {self.organisation} ({self.role})"

    @property
    def is_admin(self) -> bool:
        return self.role == self.Role.ADMIN


class SupportRequest(models.Model):
    """Sent from the help panel on any page; read by support staff in the support console."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        RESOLVED = "resolved", "Resolved"

    organisation = models.ForeignKey(
        Organisation, null=True, blank=True, on_delete=models.CASCADE, related_name="support_requests"
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="support_requests")
    subject = models.CharField(max_length=200)
    message = models.TextField(max_length=5000)
    page_url = models.CharField(max_length=500, blank=True, help_text="The page the person was on.")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "-created_at"])]

    def __str__(self) -> str:
        return self.subject

    @property
    def page_path(self) -> str:
        """The page the person was on, when it is a path of this site (never another site or a script URL)."""
        url = self.page_url or ""
        return url if url.startswith("/") and not url.startswith("//") and "\\" not in url else ""


class SignInEmail(models.Model):
    """The canonical form of a user's email (organisations.identity.canonical_email: NFKC + casefold), kept on
    every save of the user. Sign-in looks accounts up by it and the throttle counts by it, so addresses that differ
    only by such folding are one account, with one allowance."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="sign_in_email"
    )
    canonical = models.CharField(max_length=254, unique=True)

    def __str__(self) -> str:
        return self.canonical


from organisations.mfa.models import RecoveryCode, TotpDevice  # noqa: E402,F401
from organisations.people.models import Invitation, OrganisationAuditEvent, SupportReply  # noqa: E402,F401
