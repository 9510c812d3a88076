"""Page routes of the marketplace. Access rules live in marketplace.policy (applied by selectors and services)."""

from django.urls import path

from marketplace.api import fhir
from marketplace.views import center, coverage, hours, ops, overflow, patient, ris, settings, webhooks, worklist

urlpatterns = [
    # a patient's second opinions (issue 17)
    path("my/opinions/", patient.opinion_order_list, name="opinion_order_list"),
    path("my/opinions/new/<uuid:study_id>/", patient.opinion_order_create, name="opinion_order_create"),
    path("my/opinions/<uuid:public_id>/", patient.opinion_order_detail, name="opinion_order_detail"),
    path("my/opinions/<uuid:public_id>/pay/", patient.opinion_order_pay, name="opinion_order_pay"),
    path("my/opinions/<uuid:public_id>/cancel/", patient.opinion_order_cancel, name="opinion_order_cancel"),
    path("my/opinions/<uuid:public_id>/receipt/", patient.opinion_order_receipt, name="opinion_order_receipt"),
    # the center's read requests
    path("reads/", center.read_request_list, name="read_request_list"),
    path("reads/rows/", center.read_request_rows, name="read_request_rows"),
    path("reads/new/", center.read_request_create, name="read_request_create"),
    path("reads/<uuid:public_id>/", center.read_request_detail, name="read_request_detail"),
    path("reads/<uuid:public_id>/cancel/", center.read_request_cancel, name="read_request_cancel"),
    path("reads/<uuid:public_id>/candidates/", center.read_request_explain, name="read_request_explain"),
    # the radiologist's worklist
    path("worklist/", worklist.radiologist_worklist, name="radiologist_worklist"),
    path("worklist/rows/", worklist.radiologist_worklist_rows, name="radiologist_worklist_rows"),
    path("offers/<uuid:public_id>/claim/", worklist.offer_claim, name="offer_claim"),
    path("offers/<uuid:public_id>/decline/", worklist.offer_decline, name="offer_decline"),
    path("assignments/<uuid:public_id>/open/", worklist.assignment_open, name="assignment_open"),
    path("assignments/<uuid:public_id>/release/", worklist.assignment_release, name="assignment_release"),
    path("settings/reading-hours/", hours.reading_hours, name="reading_hours"),
    # schedules and coverage (issue 18)
    path("org/coverage/", coverage.coverage_map, name="coverage_map"),
    path("org/calendar/", coverage.group_calendar, name="group_calendar"),
    # platform operations
    path("ops/reads/", ops.ops_reads, name="ops_reads"),
    path("ops/reads/rows/", ops.ops_reads_rows, name="ops_reads_rows"),
    # the center's marketplace settings and webhooks
    path("org/marketplace/", settings.center_marketplace_settings, name="center_marketplace_settings"),
    path("org/webhooks/new/", webhooks.webhook_create, name="webhook_create"),
    path("org/webhooks/<uuid:public_id>/delete/", webhooks.webhook_delete, name="webhook_delete"),
    path("org/webhooks/<uuid:public_id>/test/", webhooks.webhook_test, name="webhook_test"),
    # the center's RIS link (issue 23): HL7 interfaces, orders, the message log; FHIR ServiceRequest in
    path("org/ris/", ris.ris_interfaces, name="ris_interfaces"),
    path("org/ris/interfaces/<uuid:public_id>/", ris.ris_interface_edit, name="ris_interface_edit"),
    path("org/ris/orders/", ris.ris_order_list, name="ris_order_list"),
    path("org/ris/orders/<uuid:public_id>/post/", ris.ris_order_release, name="ris_order_release"),
    path("org/ris/messages/", ris.ris_message_list, name="ris_message_list"),
    path("fhir/ServiceRequest", fhir.ServiceRequestCreateView.as_view(), name="fhir_service_request"),
    # the center's overflow rules and its "read locally" mark (issue 18)
    path("org/marketplace/overflow/", overflow.overflow_rules, name="overflow_rules"),
    path("org/marketplace/overflow/<uuid:public_id>/", overflow.overflow_rule_edit, name="overflow_rule_edit"),
    path("org/marketplace/overflow/<uuid:public_id>/pause/", overflow.overflow_rule_pause, name="overflow_rule_pause"),
    path("org/marketplace/overflow/<uuid:public_id>/delete/", overflow.overflow_rule_delete,
         name="overflow_rule_delete"),
    path("reads/local/<uuid:public_id>/", overflow.study_read_locally, name="study_read_locally"),
]
