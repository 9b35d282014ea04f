"""The push pipeline's stored state: chunks of up to 50 invoices and each HTTP attempt to send one."""

from django.db import models

from organisations.models import Organisation


class PushChunk(models.Model):
    """Up to 50 invoices sent in one PUT /Invoices, claimed under a lock; a stored state machine.

    pending -> sending -> done | failed; a `sending` chunk whose lease expired is retried with the same
    Idempotency-Key inside Xero's 6-minute window, or resolved by looking its invoice numbers up after it.
    """

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="push_chunks", db_index=False
    )  # (organisation, state) below serves it
    tenant_id = models.CharField(max_length=36)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    idempotency_key = models.CharField(
        max_length=128, help_text="Stored before the first attempt; reused by every retry."
    )  # unique below (a constraint: no LIKE index beside it)
    payload = models.JSONField(default=dict, blank=True, help_text="The exact body sent, so a retry is identical.")
    first_attempt_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=100, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [models.UniqueConstraint(fields=["idempotency_key"], name="push_chunk_key_unique")]
        indexes = [models.Index(fields=["organisation", "state"]), models.Index(fields=["state", "lease_expires_at"])]

    def __str__(self) -> str:
        return f"chunk {self.pk} ({self.state})"


class PushAttempt(models.Model):
    """One HTTP call to Xero for a chunk: what happened and how long it took."""

    class Outcome(models.TextChoices):
        OK = "ok", "Accepted"
        VALIDATION = "validation", "Validation errors"
        RATE_LIMITED = "rate_limited", "Rate limited (429)"
        SERVER_ERROR = "server_error", "Xero server error"
        TIMEOUT = "timeout", "Timed out"
        AUTH = "auth", "Authorisation problem"
        ERROR = "error", "Other error"

    class Action(models.TextChoices):
        # The engine's words (integrations/outbound/models.OutboundAttempt.Action): which call this was.
        SEND = "send", "PUT /Invoices"
        LOOKUP = "lookup", "GET /Invoices lookup"

    chunk = models.ForeignKey(PushChunk, on_delete=models.CASCADE, related_name="push_attempts")
    action = models.CharField(
        max_length=10,
        choices=Action.choices,
        default=Action.SEND,
        help_text="The call: the stored payload sent under the chunk's key, or its invoice numbers looked up.",
    )
    # push_attempt_latest below leads with it.
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+", db_index=False)
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    correlation_id = models.CharField(max_length=64, blank=True, help_text="Xero-Correlation-Id, for Xero support.")
    detail = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]
        # The batch page's notice reads an organisation's latest attempt every 2 s while a push runs.
        indexes = [models.Index(fields=["organisation", "-started_at"], name="push_attempt_latest")]

    def __str__(self) -> str:
        return f"attempt {self.pk}: {self.outcome}"
