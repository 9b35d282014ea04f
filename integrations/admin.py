"""Read-only admin views. Token fields are not editable, so they never appear; nothing here can change state:
connection changes go through the Manage Integrations page or the support console (and their audit trail)."""

from django.contrib import admin

from integrations.models import IntegrationAuditEvent, XeroConnection


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
