"""Models of the two-way sync with Xero: invoices created directly in Xero, the version of each contact we hold,
and changes made in Coordinoter after the first push that wait to go to Xero.

Re-exported from invoices.models (the package), so Django sees them in the invoices app.
"""

from decimal import Decimal

from django.conf import settings
from django.db import models

from organisations.models import Organisation


class XeroCreatedInvoice(models.Model):
    """A sales invoice that exists in the organisation's Xero but was not pushed from Coordinoter."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    xero_invoice_id = models.CharField(max_length=36)
    number = models.CharField(max_length=255, blank=True)
    reference = models.CharField(max_length=255, blank=True)
    contact_name = models.CharField(max_length=255, blank=True)
    xero_contact_id = models.CharField(max_length=36, blank=True)
    status = models.CharField(max_length=12, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    issue_date = models.DateField(null=True, blank=True)
    due_date = models.DateField(null=True, blank=True)
    total = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"))
    amount_due = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"))
    amount_paid = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"))
    xero_updated_at = models.DateTimeField(null=True, blank=True, help_text="Xero's UpdatedDateUTC we hold.")
    first_seen_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-issue_date", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "xero_invoice_id"], name="xero_created_invoice_once"),
        ]

    def __str__(self) -> str:
        return self.number or self.xero_invoice_id


class XeroContactVersion(models.Model):
    """The UpdatedDateUTC of the Xero contact behind a customer, so an older copy never overwrites a newer one."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    xero_contact_id = models.CharField(max_length=36)
    xero_updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organisation", "xero_contact_id"], name="xero_contact_version_once"),
        ]

    def __str__(self) -> str:
        return f"{self.xero_contact_id} @ {self.xero_updated_at}"


class XeroInvoiceChange(models.Model):
    """An edit, void or delete made in Coordinoter to an invoice already in Xero: a stored state machine.

    pending -> sending -> done | conflict | refused | failed | needs_attention. Xero's rules are checked before it is
    stored; it travels as an outbound operation (integrations/outbound/), whose strategy
    (invoices/outbound/changes.py) checks Xero's current copy first and never overwrites a newer one (a conflict).
    """

    class Action(models.TextChoices):
        EDIT = "edit", "Edit"
        VOID = "void", "Void"
        DELETE = "delete", "Delete"

    class State(models.TextChoices):
        PENDING = "pending", "Waiting to send"
        SENDING = "sending", "Sending to Xero"
        DONE = "done", "Done in Xero"
        CONFLICT = "conflict", "Changed in Xero meanwhile: not sent"
        REFUSED = "refused", "Refused by Xero"
        FAILED = "failed", "Failed"
        NEEDS_ATTENTION = "needs_attention", "Needs attention: Xero's answer could not be confirmed"

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    invoice = models.ForeignKey("invoices.Invoice", on_delete=models.CASCADE, related_name="xero_changes")
    action = models.CharField(max_length=10, choices=Action.choices)
    state = models.CharField(max_length=20, choices=State.choices, default=State.PENDING)
    payload = models.JSONField(default=dict, help_text="The exact invoice element sent to POST /Invoices/{id}.")
    idempotency_key = models.CharField(
        max_length=128, unique=True, help_text="Stored before the first attempt; reused by every retry."
    )
    based_on_xero_updated_at = models.DateTimeField(
        null=True, blank=True, help_text="The Xero version the person was looking at when they made the change."
    )
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    correlation_id = models.CharField(max_length=64, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["organisation", "state"]), models.Index(fields=["invoice", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.action} of invoice {self.invoice_id} ({self.state})"

    @property
    def is_open(self) -> bool:
        return self.state in (self.State.PENDING, self.State.SENDING)


__all__ = ["XeroContactVersion", "XeroCreatedInvoice", "XeroInvoiceChange"]
