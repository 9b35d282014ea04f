"""What is left of an invoice or a credit note cancelled before it reached Xero."""

from django.conf import settings
from django.db import models

from invoices.models.batches import InvoiceBatch
from organisations.models import Organisation


class CancelledInvoice(models.Model):
    """What is left of an invoice or a credit note cancelled before it reached Xero: its number is free again, and
    this says what it was, who cancelled it and its history up to then (the batch page lists it)."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    batch = models.ForeignKey(InvoiceBatch, on_delete=models.CASCADE, related_name="cancelled_invoices")
    number = models.CharField(max_length=255)
    customer_name = models.CharField(max_length=255)
    currency = models.CharField(max_length=3)
    total = models.DecimalField(max_digits=14, decimal_places=2)
    document = models.CharField(
        max_length=12,
        choices=[("invoice", "Invoice"), ("credit_note", "Credit note")],
        default="invoice",
        help_text="What was cancelled: an invoice or a credit note (each has its own number space).",
    )
    sync_state = models.CharField(max_length=20, help_text="Where it stood when it was cancelled.")
    history = models.JSONField(default=list, blank=True, help_text="Its events, newest first, as they read.")
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    cancelled_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-cancelled_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.number} (cancelled)"
