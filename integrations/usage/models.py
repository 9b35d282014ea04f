"""Xero API usage per organisation and minute: what the support console's chart and /metrics read.

Imported at the end of integrations/models.py so Django sees them (app_label integrations). No secret here.
"""

from django.db import models

from organisations.models import Organisation


class XeroApiUsage(models.Model):
    """One organisation's Xero calls in one UTC minute, counted by integrations.usage on every call the front door
    makes (one upsert per call), plus the remaining quotas Xero reported last in that minute. Kept about two days
    (pruned by the housekeeping beat)."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    minute = models.DateTimeField(help_text="Start of the UTC minute.")
    calls = models.PositiveIntegerField(default=0, help_text="HTTP calls made to Xero (answered or not).")
    # By priority class (integrations.xero.ratelimit.Priority); customer calls are calls less these three.
    webhook_calls = models.PositiveIntegerField(default=0, help_text="Of the calls: fetches after webhooks.")
    reconcile_calls = models.PositiveIntegerField(default=0, help_text="Of the calls: reconciliation polls.")
    health_calls = models.PositiveIntegerField(default=0, help_text="Of the calls: keep-alive and connection checks.")
    rate_limited = models.PositiveIntegerField(default=0, help_text="Calls Xero answered 429.")
    failed = models.PositiveIntegerField(default=0, help_text="Calls answered 5xx or not answered (timeouts).")
    refresh_failures = models.PositiveIntegerField(default=0, help_text="Token refreshes that failed (not 401s).")
    min_remaining = models.IntegerField(null=True, blank=True, help_text="X-MinLimit-Remaining, last seen.")
    day_remaining = models.IntegerField(null=True, blank=True, help_text="X-DayLimit-Remaining, last seen.")
    updated_at = models.DateTimeField(help_text="When this row was last written.")

    class Meta:
        ordering = ["organisation", "minute"]
        constraints = [models.UniqueConstraint(fields=["organisation", "minute"], name="xero_usage_once")]
        indexes = [models.Index(fields=["minute"], name="xero_usage_minute")]

    def __str__(self) -> str:
        return f"{self.organisation_id} {self.minute:%Y-%m-%d %H:%M}: {self.calls} calls"
