"""The outbound engine's rows: one per write to Xero (an operation) and one per call it made (an attempt)."""

from django.conf import settings
from django.db import models

from organisations.models import Organisation


class OutboundOperation(models.Model):
    """One write to Xero and everything needed to know for certain what happened to it.

    pending -> sending -> done | refused | needs_attention; sending -> pending (retry later, same key);
    needs_attention -> pending (a person retried it). integrations/outbound/states.py holds the table.
    """

    class State(models.TextChoices):
        PENDING = "pending", "Waiting to send"
        SENDING = "sending", "Sending to Xero"
        DONE = "done", "Done in Xero"
        REFUSED = "refused", "Refused by Xero"
        NEEDS_ATTENTION = "needs_attention", "Needs attention"

    # outbound_org_state below leads with it: no index of its own (the push writes a row per 50 invoices).
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+", db_index=False)
    tenant_id = models.CharField(max_length=36, help_text="The Xero tenant the write is for.")
    kind = models.CharField(max_length=40, help_text="The strategy that builds, confirms and applies it.")
    subject_id = models.BigIntegerField(
        null=True, blank=True, help_text="The kind's own record (e.g. the invoice change) this operation carries."
    )
    payload = models.JSONField(default=dict, help_text="Exactly what is sent, stored before the first attempt.")
    idempotency_key = models.CharField(
        max_length=128,
        unique=True,
        help_text="Stored before the first attempt and used by every send, renewed only after a lookup proved the "
        "write absent while Xero still held an answer under it.",
    )
    state = models.CharField(max_length=20, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0, help_text="Claims that made (or were about to make) a call.")
    sends = models.PositiveIntegerField(default=0)
    lookups = models.PositiveIntegerField(default=0, help_text="Lookups since the last person's retry.")
    checks = models.PositiveIntegerField(
        default=0, help_text="Reads before the first send (the kind's check) since the last person's retry."
    )
    key_first_sent_at = models.DateTimeField(
        null=True, blank=True, help_text="Our first send under the key: Xero remembers it for about 6 minutes."
    )
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    leased_by = models.CharField(max_length=100, blank=True)
    in_flight = models.CharField(
        max_length=10,
        blank=True,
        help_text="The call the lease holder is making (if it dies, its outcome is unknown).",
    )
    last_error = models.TextField(blank=True)
    last_answer = models.JSONField(
        default=dict, blank=True, help_text="Xero's last answer that could not be confirmed, shown to people."
    )
    correlation_id = models.CharField(max_length=64, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["state", "next_attempt_at"], name="outbound_due"),
            models.Index(fields=["organisation", "state"], name="outbound_org_state"),
            models.Index(fields=["kind", "subject_id"], name="outbound_subject"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.state})"


class OutboundAttempt(models.Model):
    """One call an operation made: a send or a lookup, and what came of it."""

    class Action(models.TextChoices):
        SEND = "send", "Send"
        LOOKUP = "lookup", "Look up"
        CHECK = "check", "Check before sending"

    class Outcome(models.TextChoices):
        CONFIRMED = "confirmed", "Confirmed"
        ABSENT = "absent", "Not in Xero"
        UNCONFIRMED = "unconfirmed", "Answer did not match what was sent"
        REFUSED = "refused", "Refused"
        RETRY = "retry", "Retry later"
        UNKNOWN = "unknown", "Outcome unknown (no answer)"
        WAITING = "waiting", "Waiting for the connection"
        FAILED = "failed", "Failed"

    # outbound_attempt_latest below leads with it.
    operation = models.ForeignKey(
        OutboundOperation, on_delete=models.CASCADE, related_name="outbound_attempts", db_index=False
    )
    action = models.CharField(max_length=10, choices=Action.choices)
    outcome = models.CharField(max_length=12, choices=Outcome.choices)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    correlation_id = models.CharField(max_length=64, blank=True)
    detail = models.TextField(blank=True)
    # The start of Xero's answer to the call as JSON, where a later decision reads it back (a chunk's PUT: what it
    # answered about invoices it did not echo, shown to people when they need attention).
    # The database's own default takes inserts from workers still running code from before this column (mid-deploy);
    # `default` keeps the ORM writing "" itself, as before.
    answer = models.TextField(blank=True, default="", db_default="")
    started_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["operation", "-started_at"], name="outbound_attempt_latest")]

    def __str__(self) -> str:
        return f"{self.action} of operation {self.operation_id}: {self.outcome}"
