"""Django admin for platform operations. Read requests, offers, assignments, the status history and the
webhook outbox are read-only here: every change of state goes through the services (one transition
service, one claim service), which write the history and the outbox."""

from django.contrib import admin

from marketplace.models import (
    Assignment,
    CenterSettings,
    MinimumRate,
    Offer,
    ReadingHours,
    ReadRequest,
    ReadRequestStatusChange,
    TimeOff,
    WebhookDelivery,
    WebhookEndpoint,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class StatusChangeInline(admin.TabularInline):
    model = ReadRequestStatusChange
    extra = 0
    can_delete = False
    fields = ["created_at", "from_status", "to_status", "actor", "reason"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(ReadRequest)
class ReadRequestAdmin(ReadOnlyAdmin):
    list_display = ["public_id", "center", "kind", "priority", "status", "deadline", "assignee", "quoted_cents",
                    "currency"]
    list_filter = ["status", "priority", "kind", "audience"]
    search_fields = ["public_id", "center__name", "study__study_instance_uid"]
    list_select_related = ["center", "assignee__user"]
    date_hierarchy = "deadline"
    inlines = [StatusChangeInline]


@admin.register(ReadRequestStatusChange)
class ReadRequestStatusChangeAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "read_request", "from_status", "to_status", "actor", "reason"]
    list_filter = ["to_status"]
    list_select_related = ["read_request", "actor"]


@admin.register(Offer)
class OfferAdmin(ReadOnlyAdmin):
    list_display = ["public_id", "read_request", "radiologist", "tier", "rank", "status", "responded_at"]
    list_filter = ["status", "tier"]
    list_select_related = ["read_request", "radiologist__user"]


@admin.register(Assignment)
class AssignmentAdmin(ReadOnlyAdmin):
    list_display = ["public_id", "read_request", "radiologist", "status", "started_at", "ended_at", "on_time"]
    list_filter = ["status", "on_time"]
    list_select_related = ["read_request", "radiologist__user"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ["event_id", "endpoint", "event_type", "status", "attempts", "last_status_code", "created_at",
                    "delivered_at"]
    list_filter = ["status", "event_type"]
    list_select_related = ["endpoint"]


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ["url", "center", "is_active", "created_at"]
    list_filter = ["is_active"]
    readonly_fields = ["center", "url", "secret", "created_by"]  # URLs are checked by the webhook service


@admin.register(CenterSettings)
class CenterSettingsAdmin(admin.ModelAdmin):
    list_display = ["center", "stat_minutes", "urgent_minutes", "routine_minutes", "second_opinion_minutes"]
    filter_horizontal = ["preferred_radiologists", "blocked_radiologists"]


@admin.register(ReadingHours)
class ReadingHoursAdmin(admin.ModelAdmin):
    list_display = ["radiologist", "weekday", "starts", "ends"]
    list_select_related = ["radiologist__user"]


@admin.register(TimeOff)
class TimeOffAdmin(admin.ModelAdmin):
    list_display = ["radiologist", "starts_at", "ends_at", "note"]
    list_select_related = ["radiologist__user"]


@admin.register(MinimumRate)
class MinimumRateAdmin(admin.ModelAdmin):
    list_display = ["radiologist", "modality", "priority", "cents", "currency"]
    list_select_related = ["radiologist__user"]
