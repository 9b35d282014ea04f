"""Read-mostly admin for staff: batches, invoices and their history. Sync state changes go through services."""

from django.contrib import admin

from invoices.models import (
    Customer,
    Invoice,
    InvoiceBatch,
    InvoiceEvent,
    InvoiceLine,
    XeroMapping,
)


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["name", "organisation", "email", "xero_contact_id", "created_at"]
    search_fields = ["name", "email", "organisation__name", "xero_contact_id"]
    list_select_related = ["organisation"]
    readonly_fields = ["xero_contact_id", "created_at", "updated_at"]


class InvoiceLineInline(admin.TabularInline):
    model = InvoiceLine
    extra = 0
    can_delete = False
    readonly_fields = ["position", "description", "quantity", "unit_amount", "account_code", "tax_type"]


class InvoiceEventInline(admin.TabularInline):
    model = InvoiceEvent
    extra = 0
    can_delete = False
    fields = ["created_at", "source", "kind", "message", "actor"]
    readonly_fields = fields


@admin.register(InvoiceBatch)
class InvoiceBatchAdmin(admin.ModelAdmin):
    list_display = ["name", "organisation", "source", "eligibility", "created_by", "created_at"]
    list_filter = ["eligibility", "source"]
    search_fields = ["name", "organisation__name"]
    list_select_related = ["organisation", "created_by"]
    readonly_fields = ["organisation", "source", "eligibility", "created_by", "created_at"]


@admin.register(Invoice)
class InvoiceAdmin(admin.ModelAdmin):
    list_display = ["number", "organisation", "batch", "customer", "currency", "total", "sync_state", "xero_status"]
    list_filter = ["sync_state", "status", "currency"]
    search_fields = ["number", "reference", "xero_invoice_id", "customer__name", "organisation__name"]
    list_select_related = ["organisation", "batch", "customer"]
    readonly_fields = [
        "organisation",
        "batch",
        "customer",
        "sync_state",
        "xero_invoice_id",
        "xero_status",
        "xero_updated_at",
        "chunk",
        "sync_errors",
        "sync_warnings",
        "synced_at",
        "created_at",
        "updated_at",
    ]
    inlines = [InvoiceLineInline, InvoiceEventInline]


@admin.register(XeroMapping)
class XeroMappingAdmin(admin.ModelAdmin):
    list_display = ["organisation", "revenue_account_code", "tax_type", "updated_by", "updated_at"]
    readonly_fields = [
        "organisation",
        "revenue_account_code",
        "revenue_account_name",
        "tax_type",
        "tax_name",
        "updated_by",
        "updated_at",
    ]
