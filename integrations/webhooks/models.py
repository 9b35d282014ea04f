"""The Xero webhook inbox and each tenant's reconciliation state.

Imported at the end of integrations/models.py so Django sees them (app_label "integrations", tables unchanged).
Nothing here holds a secret.
"""

from django.db import models
from django.db.models import Q

from organisations.models import Organisation


class WebhookEvent(models.Model):
    """One event of a Xero webhook delivery, stored before it is acknowledged; a stored state machine.

    received -> processed | ignored | failed. Deliveries are at-least-once and may arrive out of order, so the
    same event (tenant, category, type, resource, event time) is stored once whatever Xero resends.
    """

    class State(models.TextChoices):
        RECEIVED = "received", "Received"
        PROCESSED = "processed", "Processed"
        IGNORED = "ignored", "Ignored"
        FAILED = "failed", "Failed"

    organisation = models.ForeignKey(
        Organisation,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,  # webhook_event_by_org below leads with it
        help_text="The organisation whose Xero connection holds the tenant; empty for an unknown tenant.",
    )
    tenant_id = models.CharField(max_length=64, help_text="Xero's tenantId, as delivered.")
    tenant_type = models.CharField(max_length=20, blank=True)
    category = models.CharField(max_length=20, help_text="eventCategory: INVOICE, CONTACT, ...")
    event_type = models.CharField(max_length=20, help_text="eventType: CREATE or UPDATE.")
    resource_id = models.CharField(max_length=64, help_text="The changed resource's id (webhooks carry no data).")
    event_date = models.DateTimeField(help_text="eventDateUtc: when it happened in Xero.")
    sequence = models.BigIntegerField(null=True, blank=True, help_text="Its sequence number in Xero's delivery.")
    state = models.CharField(max_length=10, choices=State.choices, default=State.RECEIVED)
    outcome = models.CharField(
        max_length=30,
        blank=True,
        help_text="What processing found: applied, unchanged, stale, created_in_xero, not_found, unknown_tenant...",
    )
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True, help_text="Set after a transient failure.")
    received_at = models.DateTimeField()
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant_id", "category", "event_type", "resource_id", "event_date"],
                name="webhook_event_once",
            ),
        ]
        indexes = [
            models.Index(
                fields=["organisation", "event_date"], condition=Q(state="received"), name="webhook_event_to_process"
            ),
            models.Index(fields=["received_at"], condition=Q(state="received"), name="webhook_event_waiting"),
            models.Index(fields=["organisation", "state", "-received_at"], name="webhook_event_by_org"),
            # The support overview's window: which organisations had events since, from the index alone.
            models.Index(fields=["received_at"], include=["organisation", "state"], name="webhook_event_window"),
        ]

    def __str__(self) -> str:
        return f"{self.category} {self.event_type} {self.resource_id} ({self.state})"

    @property
    def lag_seconds(self) -> float | None:
        if self.processed_at is None:
            return None
        return max(0.0, (self.processed_at - self.received_at).total_seconds())


class ReconciliationState(models.Model):
    """Per organisation: the inbox processing claim, and the reconciliation poll that catches what webhooks miss.

    Drift is what a reconciliation pass had to repair: a change in Xero that no webhook had brought in.
    """

    organisation = models.OneToOneField(Organisation, on_delete=models.CASCADE, related_name="xero_reconciliation")
    inbox_claimed_until = models.DateTimeField(
        null=True, blank=True, help_text="A worker is processing this tenant's inbox until then (a lease)."
    )
    inbox_claimed_by = models.CharField(max_length=100, blank=True)
    inbox_fetched_at = models.DateTimeField(
        null=True, blank=True, help_text="When the inbox last fetched from Xero: fetches are paced per tenant."
    )
    inbox_wakeup_at = models.DateTimeField(
        null=True, blank=True, help_text="A paced processing run is due then (so only one is scheduled)."
    )
    reconcile_claimed_until = models.DateTimeField(null=True, blank=True)
    next_due_at = models.DateTimeField(
        null=True,
        blank=True,
        db_index=True,
        help_text="Reconciled by then at the latest: once a day when quiet, soon on signs of missed webhooks.",
    )
    due_reason = models.CharField(
        max_length=30, blank=True, help_text="Why the next pass is due: cadence, gap, failed_delivery, activity, ..."
    )
    last_success_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Caught up to: the start of the last window of changes read to its end; the next asks from then.",
    )
    last_started_at = models.DateTimeField(null=True, blank=True)
    # A window of changes a pass left part-way (its page cap, Xero's error, the rate limit): the next pass goes on at
    # `resume_category`'s `resume_page` with the same If-Modified-Since, so paging by id skips nothing in between.
    resume_since = models.DateTimeField(
        null=True, blank=True, help_text="If-Modified-Since of a window not yet read to its end (every pass of it)."
    )
    resume_started_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When that window's first pass began: read to its end, it is done up to then.",
    )
    resume_category = models.CharField(max_length=20, blank=True, default="", db_default="")
    resume_page = models.PositiveIntegerField(default=1, db_default=1)
    last_finished_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    passes = models.PositiveIntegerField(default=0, help_text="Windows of changes read to their end.")
    checked_last = models.PositiveIntegerField(default=0, help_text="Invoices Xero returned in the last pass.")
    drift_last = models.PositiveIntegerField(default=0, help_text="Repairs made by the last pass.")
    drift_total = models.PositiveIntegerField(default=0)
    last_drift_at = models.DateTimeField(null=True, blank=True)
    drift_recent = models.JSONField(default=list, blank=True, help_text="The latest repairs, newest first.")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Xero reconciliation for {self.organisation_id}"

    @property
    def resume_label(self) -> str:
        """Where a window not read to its end goes on, in words: "page 51 of invoices"."""
        what = {"INVOICE": "invoices", "CONTACT": "contacts", "CREDITNOTE": "credit notes"}
        return f"page {self.resume_page} of {what.get(self.resume_category, self.resume_category.lower())}"


__all__ = ["ReconciliationState", "WebhookEvent"]
