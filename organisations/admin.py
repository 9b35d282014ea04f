from django.contrib import admin

from organisations.forms import AdminSignInForm
from organisations.models import Membership, Organisation, SupportRequest

# The admin's login goes through the same backend and throttle as the portal's, and says so when locked.
admin.site.login_form = AdminSignInForm


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin):
    list_display = ["name", "id", "created_at"]
    search_fields = ["name"]
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "organisation", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__email", "organisation__name"]
    autocomplete_fields = ["user", "organisation"]


@admin.register(SupportRequest)
class SupportRequestAdmin(admin.ModelAdmin):
    list_display = ["subject", "organisation", "user", "status", "created_at"]
    list_filter = ["status"]
    search_fields = ["subject", "message", "user__email", "organisation__name"]
