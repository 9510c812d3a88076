"""Django admin for platform operations. The audit log is read-only here as everywhere."""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from accounts.models import (
    AuditEvent,
    Invitation,
    License,
    Membership,
    Organization,
    OrganizationApiKey,
    PersonalApiToken,
    RadiologistProfile,
    User,
)


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ["email"]
    list_display = ["email", "full_name", "kind", "is_active", "is_staff", "date_joined"]
    list_filter = ["kind", "is_active", "is_staff"]
    search_fields = ["email", "full_name"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        ("Profile", {"fields": ["full_name", "kind", "time_zone"]}),
        ("Access", {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]}),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "password1", "password2"]})]


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ["user"]


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "country", "region", "time_zone"]
    list_filter = ["kind", "country"]
    search_fields = ["name", "legal_name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ["email", "organization", "role", "status", "expires_at"]
    readonly_fields = ["token_hash", "accepted_at", "accepted_by"]
    list_select_related = ["organization"]


@admin.register(OrganizationApiKey)
class OrganizationApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "organization", "prefix", "last_used_at", "revoked_at"]
    readonly_fields = ["prefix", "secret_hash", "last_used_at"]
    list_select_related = ["organization"]


@admin.register(PersonalApiToken)
class PersonalApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "prefix", "last_used_at", "revoked_at", "expires_at"]
    readonly_fields = ["prefix", "secret_hash", "last_used_at"]
    list_select_related = ["user"]


class LicenseInline(admin.TabularInline):
    model = License
    extra = 0


@admin.register(RadiologistProfile)
class RadiologistProfileAdmin(admin.ModelAdmin):
    list_display = ["user", "credentials_line", "home_time_zone"]
    inlines = [LicenseInline]
    list_select_related = ["user"]


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "actor_email", "action", "object_type", "object_id", "outcome", "ip_address"]
    list_filter = ["action", "outcome"]
    search_fields = ["actor_email", "object_id", "action"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


def _admin_site_has_permission(request) -> bool:
    """The admin site is for platform operations staff (with is_staff), nobody else."""
    from accounts import policy

    return bool(request.user.is_active and policy.can_use_admin_site(policy.actor_from_request(request)))


admin.site.has_permission = _admin_site_has_permission
admin.site.site_header = "ReadRoom operations"
