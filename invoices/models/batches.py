"""Invoice batches: what a person created together (on the page or from a CSV), and whether it syncs."""

from django.conf import settings
from django.db import models

from organisations.models import Organisation


class InvoiceBatch(models.Model):
    class Eligibility(models.TextChoices):
        ELIGIBLE = "eligible", "Syncs to Xero"
        BEFORE_CONNECTION = "before_connection", "Created before Xero was connected: not synced"
        WHILE_DISCONNECTED = "while_disconnected", "Created while Xero was disconnected: not synced"

    class Source(models.TextChoices):
        FORM = "form", "Form"
        CSV = "csv", "CSV upload"
        DEMO = "demo", "Demo data"

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="batches")
    name = models.CharField(max_length=200)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.FORM)
    eligibility = models.CharField(
        max_length=30,
        choices=Eligibility.choices,
        default=Eligibility.BEFORE_CONNECTION,
        help_text="Decided once, when the batch is created, from the organisation's Xero connection then.",
    )
    # A batch that was not synced (created before connecting or while disconnected) that an admin sent on purpose,
    # after the review page: its eligibility then reads `eligible`, and these say who and when.
    sent_to_xero_at = models.DateTimeField(null=True, blank=True, help_text="When an admin sent this not-synced batch.")
    sent_to_xero_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    eligibility_at_creation = models.CharField(
        max_length=30,
        blank=True,
        help_text="The eligibility the batch was created with, kept when an admin sent it to Xero on purpose.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["organisation", "-created_at"])]

    def __str__(self) -> str:
        return self.name
