"""Payments on our invoices, as Xero reports them in each invoice's Payments."""

from django.db import models

from invoices.models.invoices import Invoice
from organisations.models import Organisation


class Payment(models.Model):
    """A payment on one of our invoices, as Xero reports it in the invoice's Payments (kept in step by the applier)."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="payments")
    xero_payment_id = models.CharField(max_length=36, help_text="Xero's PaymentID.")
    date = models.DateField(null=True, blank=True)
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    reference = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["date", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["invoice", "xero_payment_id"], name="payment_unique_per_invoice"),
        ]

    def __str__(self) -> str:
        return f"{self.amount} on {self.date}"
