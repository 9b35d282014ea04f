"""A document's history as people see it: the shared event fields and an invoice's events."""

from django.conf import settings
from django.db import models

from invoices.models.invoices import Invoice
from organisations.models import Organisation


class DocumentEvent(models.Model):
    """A document's history as people see it (an invoice's or a credit note's): created, sent, failed, retried,
    edited, changed in Xero; who did it."""

    class Source(models.TextChoices):
        COORDINOTER = "coordinoter", "Coordinoter"
        XERO = "xero", "Changed in Xero"
        SYSTEM = "system", "Sync"

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    source = models.CharField(max_length=12, choices=Source.choices)
    kind = models.CharField(max_length=40, help_text="e.g. created, pushed, failed, retried, status_changed.")
    message = models.CharField(max_length=500)
    changes = models.JSONField(default=dict, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return self.message


class InvoiceEvent(DocumentEvent):
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="events", db_index=False)

    class Meta(DocumentEvent.Meta):
        indexes = [models.Index(fields=["invoice", "-created_at"])]  # also the foreign key's index
