"""Credit notes (a batch line can be one), their lines, and their allocations to invoices of the same customer.

A credit note has its own number space in Xero (CreditNoteNumber), its own endpoint (PUT /CreditNotes) and its own
life (RemainingCredit; PAID once fully allocated), so it is its own model rather than an invoice with a type: the
invoice push, its numbers and its status counts never see one. It travels through the outbound engine
(invoices/outbound/credit_notes.py); an allocation is its own operation, made once the credit note is confirmed and
the invoice is in Xero. Re-exported from invoices.models.
"""

from decimal import Decimal

from django.conf import settings
from django.db import models

from invoices.models.events import DocumentEvent
from invoices.models.invoices import DocumentLine, Invoice
from organisations.models import Organisation


class CreditNote(models.Model):
    class Status(models.TextChoices):
        DRAFT = "DRAFT", "Draft"
        SUBMITTED = "SUBMITTED", "Awaiting approval"
        AUTHORISED = "AUTHORISED", "Approved"
        PAID = "PAID", "Fully allocated"
        VOIDED = "VOIDED", "Voided"
        DELETED = "DELETED", "Deleted"

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="credit_notes")
    batch = models.ForeignKey("invoices.InvoiceBatch", on_delete=models.CASCADE, related_name="credit_notes")
    customer = models.ForeignKey("invoices.Customer", on_delete=models.PROTECT, related_name="credit_notes")
    number = models.CharField(
        max_length=255, help_text="Sent as Xero's CreditNoteNumber (its own number space, unique per organisation)."
    )
    reference = models.CharField(max_length=255, blank=True)
    currency = models.CharField(max_length=3, default="AUD")
    issue_date = models.DateField()
    line_amount_types = models.CharField(
        max_length=10, choices=Invoice.LineAmountTypes.choices, default=Invoice.LineAmountTypes.EXCLUSIVE
    )
    status = models.CharField(
        max_length=12, choices=Status.choices, default=Status.AUTHORISED, help_text="The status it is created with."
    )
    sync_state = models.CharField(
        max_length=20, choices=Invoice.SyncState.choices, default=Invoice.SyncState.NOT_SYNCED, db_index=True
    )
    xero_credit_note_id = models.CharField(max_length=36, blank=True, db_index=True)
    xero_status = models.CharField(max_length=12, blank=True, help_text="Status as Xero last reported it.")
    xero_updated_at = models.DateTimeField(null=True, blank=True, help_text="Xero's UpdatedDateUTC of our copy.")
    subtotal = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"))
    total_tax = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"))
    total = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"))
    remaining_credit = models.DecimalField(
        max_digits=14, decimal_places=2, default=Decimal("0.00"), help_text="Xero's RemainingCredit."
    )
    sync_errors = models.JSONField(default=list, blank=True, help_text="Xero's validation errors, verbatim.")
    synced_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["number"]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "number"], name="credit_note_number_unique_per_org"),
        ]
        indexes = [models.Index(fields=["organisation", "sync_state"], name="credit_note_org_sync")]

    def __str__(self) -> str:
        return self.number

    @property
    def display_status(self):
        """Its one status word (invoices/states.py): Waiting, Failed, Credit available, Fully allocated, ..."""
        from invoices.states import credit_note_status_of

        return credit_note_status_of(self)


class CreditNoteLine(DocumentLine):
    credit_note = models.ForeignKey(CreditNote, on_delete=models.CASCADE, related_name="lines")

    class Meta(DocumentLine.Meta):
        pass


class CreditNoteEvent(DocumentEvent):
    """The credit note's history: sent, refused, edited, resent, and who did it."""

    credit_note = models.ForeignKey(CreditNote, on_delete=models.CASCADE, related_name="events")

    class Meta(DocumentEvent.Meta):
        indexes = [models.Index(fields=["credit_note", "-created_at"], name="credit_note_event_recent")]


class CreditNoteAllocation(models.Model):
    """Part or all of a credit note applied to one invoice of the same customer: a stored state machine.

    waiting (for both to be in Xero) -> sending -> done | refused | needs_attention. The amount is decided when it
    is sent: the smaller of the credit note's remaining credit and the invoice's amount due, as Xero reported them.
    """

    class State(models.TextChoices):
        WAITING = "waiting", "Waiting for both to be in Xero"
        SENDING = "sending", "Sending to Xero"
        DONE = "done", "Allocated in Xero"
        REFUSED = "refused", "Not allocated"
        NEEDS_ATTENTION = "needs_attention", "Needs attention: Xero's answer could not be confirmed"

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    credit_note = models.ForeignKey(CreditNote, on_delete=models.CASCADE, related_name="allocations")
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="credit_allocations")
    state = models.CharField(max_length=20, choices=State.choices, default=State.WAITING)
    amount = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    date = models.DateField(null=True, blank=True)
    invoice_based_on = models.DateTimeField(
        null=True,
        blank=True,
        help_text="The invoice's Xero version when sent: the credit is shown at once only if no newer copy came back.",
    )
    credit_note_based_on = models.DateTimeField(
        null=True, blank=True, help_text="The credit note's Xero version when sent (as invoice_based_on)."
    )
    last_error = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "pk"]
        indexes = [models.Index(fields=["organisation", "state"], name="credit_allocation_org_state")]

    def __str__(self) -> str:
        return f"{self.credit_note_id} -> invoice {self.invoice_id} ({self.state})"


__all__ = ["CreditNote", "CreditNoteAllocation", "CreditNoteEvent", "CreditNoteLine"]
