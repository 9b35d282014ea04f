"""Read-only admin views. Token fields are not editable, so they never appear; nothing here can change state:
connection changes go through the Manage Integrations page or the support console (and their audit trail)."""

from django.contrib import admin

from integrations.models import IntegrationAuditEvent, XeroConnection
from integrations.outbound.models import OutboundAttempt, OutboundOperation


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(XeroConnection)
class XeroConnectionAdmin(ReadOnlyAdmin):
    list_display = [
        "organisation",
        "status",
        "tenant_name",
        "access_token_expires_at",
        "last_refreshed_at",
        "connected_at",
    ]
    list_filter = ["status"]
    search_fields = ["organisation__name", "tenant_name", "tenant_id"]
    fields = [
        "organisation",
        "status",
        "disconnect_step",
        "tenant_id",
        "tenant_name",
        "tenant_short_code",
        "base_currency",
        "connection_id",
        "auth_event_id",
        "xero_user_id",
        "scopes",
        "access_token_expires_at",
        "refresh_token_issued_at",
        "last_refreshed_at",
        "connected_at",
        "connected_by",
        "disconnected_at",
        "needs_reconnect_reason",
        "reconnect_requested_at",
        "last_error",
        "last_verified_at",
        "last_synced_at",
    ]


@admin.register(IntegrationAuditEvent)
class IntegrationAuditEventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "organisation", "action", "outcome", "actor", "actor_kind"]
    list_filter = ["outcome", "actor_kind", "action"]
    search_fields = ["organisation__name", "action"]
    fields = ["created_at", "organisation", "actor", "actor_kind", "action", "outcome", "detail"]


class OutboundAttemptInline(admin.TabularInline):
    model = OutboundAttempt
    extra = 0
    can_delete = False
    fields = ["started_at", "action", "outcome", "http_status", "duration_ms", "correlation_id", "detail"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(OutboundOperation)
class OutboundOperationAdmin(ReadOnlyAdmin):
    """Every write to Xero (push chunks included, kind invoice_chunk) and its calls. The payload (what was sent) stays
    out: a chunk's holds 50 invoices."""

    list_display = ["pk", "organisation", "kind", "state", "attempts", "created_at", "completed_at"]
    list_filter = ["kind", "state"]
    list_select_related = ["organisation"]
    fields = [
        "organisation",
        "tenant_id",
        "kind",
        "subject_id",
        "state",
        "idempotency_key",
        "key_first_sent_at",
        "attempts",
        "sends",
        "lookups",
        "checks",
        "next_attempt_at",
        "lease_until",
        "leased_by",
        "in_flight",
        "last_error",
        "correlation_id",
        "created_at",
        "completed_at",
    ]
    readonly_fields = fields
    inlines = [OutboundAttemptInline]
