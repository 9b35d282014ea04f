"""Invoices, their lines (and the line fields a credit note shares) and the organisation's Xero mapping."""

from decimal import Decimal

from django.conf import settings
from django.db import models

from invoices.models.batches import InvoiceBatch
from invoices.models.customers import Customer
from organisations.models import Organisation


class Invoice(models.Model):
    class SyncState(models.TextChoices):
        NOT_SYNCED = "not_synced", "Not synced"
        PENDING = "pending", "Waiting to sync"
        IN_FLIGHT = "in_flight", "Sending to Xero"
        SYNCED = "synced", "In Xero"
        WARNING = "warning", "In Xero, with warnings"
        FAILED = "failed", "Failed"
        # Xero's answer could not be confirmed after bounded lookups: never resent by itself; a person looks and
        # retries (or cancels).
        NEEDS_ATTENTION = "needs_attention", "Needs attention"

    class Status(models.TextChoices):
        DRAFT = "DRAFT", "Draft"
        SUBMITTED = "SUBMITTED", "Awaiting approval"
        AUTHORISED = "AUTHORISED", "Awaiting payment"
        PAID = "PAID", "Paid"
        VOIDED = "VOIDED", "Voided"
        DELETED = "DELETED", "Deleted"

    class LineAmountTypes(models.TextChoices):
        EXCLUSIVE = "Exclusive", "Tax exclusive"
        INCLUSIVE = "Inclusive", "Tax inclusive"
        NO_TAX = "NoTax", "No tax"

    # No index of its own: the indexes below lead with it (each index is written again by every non-HOT update,
    # and an invoice is updated three times on its way to Xero: in flight, synced, and Xero's webhook).
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="invoices", db_index=False)
    batch = models.ForeignKey(InvoiceBatch, on_delete=models.CASCADE, related_name="invoices")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="invoices")
    number = models.CharField(max_length=255, help_text="Sent as Xero's InvoiceNumber (unique per organisation).")
    reference = models.CharField(max_length=255, blank=True)
    currency = models.CharField(max_length=3, default="AUD")
    issue_date = models.DateField()
    due_date = models.DateField()
    line_amount_types = models.CharField(
        max_length=10, choices=LineAmountTypes.choices, default=LineAmountTypes.EXCLUSIVE
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.AUTHORISED)
    # Looked up by organisation (the indexes below) or across organisations only among the unsynced (the partial
    # index below): no index on the state alone.
    sync_state = models.CharField(max_length=20, choices=SyncState.choices, default=SyncState.NOT_SYNCED)
    xero_invoice_id = models.CharField(max_length=36, blank=True)  # indexed below (exact lookups: no LIKE index)
    xero_status = models.CharField(max_length=12, blank=True, help_text="Status as Xero last reported it.")
    xero_updated_at = models.DateTimeField(
        null=True, blank=True, help_text="Xero's UpdatedDateUTC of the version we hold."
    )
    # The Xero organisation the invoice was created in: its links keep pointing there after a switch to another one.
    xero_tenant_id = models.CharField(max_length=36, blank=True, help_text="Xero tenant it was created in.")
    xero_short_code = models.CharField(max_length=20, blank=True, help_text="That organisation's ShortCode.")
    subtotal = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"))
    total_tax = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"))
    total = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"))
    amount_paid = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"))
    amount_due = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"))
    amount_credited = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"))
    chunk = models.ForeignKey(
        "integrations.OutboundOperation",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="invoices",
        help_text="The push chunk (an outbound operation of kind invoice_chunk) that last carried it.",
    )
    sync_errors = models.JSONField(default=list, blank=True, help_text="Xero's validation errors, verbatim.")
    sync_warnings = models.JSONField(default=list, blank=True)
    synced_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["number"]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "number"], name="invoice_number_unique_per_org"),
        ]
        indexes = [
            models.Index(fields=["organisation", "sync_state"]),
            models.Index(fields=["xero_invoice_id"], name="invoice_xero_id"),
            # The few invoices not in Xero (yet), out of millions: /metrics counts them per organisation from this
            # index alone (an index-only scan), and the push sweeper finds them without touching the rest. By id
            # within a state, so a chunk's claim walks a tenant's pending invoices in order and stops at 50
            # (invoices/services/push/dispatch._chunk_store) instead of sorting all of them.
            models.Index(
                fields=["organisation", "sync_state", "id"],
                name="invoice_unsynced",
                condition=models.Q(sync_state__in=["pending", "in_flight", "failed"]),
            ),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def display_status(self):
        """Its one status word (invoices/states.py): Waiting, Failed, Awaiting payment, Paid, Voided, ..."""
        from django.utils import timezone

        from invoices.states import status_of
        from organisations.locale import today_for

        # Overdue is decided by today where the organisation is; a row loaded without its organisation takes the
        # zone the request activated (OrganisationTimezoneMiddleware: the current organisation's).
        if Invoice.organisation.is_cached(self):
            return status_of(self, today=today_for(self.organisation))
        return status_of(self, today=timezone.localdate())


class DocumentLine(models.Model):
    """A line of an invoice or a credit note: the same fields, four-decimal quantity and unit amount."""

    position = models.PositiveIntegerField(default=0)
    description = models.CharField(max_length=4000)
    quantity = models.DecimalField(max_digits=14, decimal_places=4, default=Decimal("1"))
    unit_amount = models.DecimalField(max_digits=14, decimal_places=4)
    account_code = models.CharField(max_length=10, blank=True, help_text="Overrides the default revenue account.")
    tax_type = models.CharField(max_length=50, blank=True, help_text="Overrides the default tax rate.")

    class Meta:
        abstract = True
        ordering = ["position", "pk"]

    def __str__(self) -> str:
        return self.description


class InvoiceLine(DocumentLine):
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")

    class Meta(DocumentLine.Meta):
        pass


class XeroMapping(models.Model):
    """The organisation's defaults for pushing: chosen from its own Xero chart of accounts and tax rates."""

    organisation = models.OneToOneField(Organisation, on_delete=models.CASCADE, related_name="xero_mapping")
    revenue_account_code = models.CharField(max_length=10, help_text="An ACTIVE REVENUE account's Code.")
    revenue_account_name = models.CharField(max_length=150, blank=True)
    tax_type = models.CharField(max_length=50, help_text="A TaxRate's TaxType that can apply to revenue.")
    tax_name = models.CharField(max_length=150, blank=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.organisation}: {self.revenue_account_code} / {self.tax_type}"
