from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower

from organisations.models import Organisation


class Customer(models.Model):
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="customers")
    name = models.CharField(max_length=255, help_text="Becomes the Xero contact's Name (unique in Xero).")
    email = models.EmailField(blank=True)
    xero_contact_id = models.CharField(max_length=36, blank=True, help_text="Xero ContactID once matched.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint("organisation", Lower("name"), name="customer_name_unique_per_org_ci"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def contact_number(self) -> str:
        """Our customer id as Xero's ContactNumber (max 50 characters, writable only through the API)."""
        return f"COORD-{self.pk}"


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
        max_length=30, choices=Eligibility.choices, default=Eligibility.BEFORE_CONNECTION,
        help_text="Decided once, when the batch is created, from the organisation's Xero connection then.",
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["organisation", "-created_at"])]

    def __str__(self) -> str:
        return self.name


class Invoice(models.Model):
    class SyncState(models.TextChoices):
        NOT_SYNCED = "not_synced", "Not synced"
        PENDING = "pending", "Waiting to sync"
        IN_FLIGHT = "in_flight", "Sending to Xero"
        SYNCED = "synced", "In Xero"
        WARNING = "warning", "In Xero, with warnings"
        FAILED = "failed", "Failed"

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

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="invoices")
    batch = models.ForeignKey(InvoiceBatch, on_delete=models.CASCADE, related_name="invoices")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="invoices")
    number = models.CharField(max_length=255, help_text="Sent as Xero's InvoiceNumber (unique per organisation).")
    reference = models.CharField(max_length=255, blank=True)
    currency = models.CharField(max_length=3, default="AUD")
    issue_date = models.DateField()
    due_date = models.DateField()
    line_amount_types = models.CharField(max_length=10, choices=LineAmountTypes.choices,
                                         default=LineAmountTypes.EXCLUSIVE)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.AUTHORISED)
    sync_state = models.CharField(max_length=12, choices=SyncState.choices, default=SyncState.NOT_SYNCED,
                                  db_index=True)
    xero_invoice_id = models.CharField(max_length=36, blank=True)
    total = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"))
    amount_paid = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"))
    amount_due = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"))
    sync_errors = models.JSONField(default=list, blank=True, help_text="Xero's validation errors, verbatim.")
    sync_warnings = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["number"]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "number"], name="invoice_number_unique_per_org"),
        ]
        indexes = [models.Index(fields=["organisation", "sync_state"])]

    def __str__(self) -> str:
        return self.number


class InvoiceLine(models.Model):
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveIntegerField(default=0)
    description = models.CharField(max_length=4000)
    quantity = models.DecimalField(max_digits=14, decimal_places=4, default=Decimal("1"))
    unit_amount = models.DecimalField(max_digits=14, decimal_places=4)
    account_code = models.CharField(max_length=10, blank=True, help_text="Overrides the default revenue account.")
    tax_type = models.CharField(max_length=50, blank=True, help_text="Overrides the default tax rate.")

    class Meta:
        ordering = ["position", "pk"]

    def __str__(self) -> str:
        return self.description
