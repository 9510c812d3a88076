"""The marketplace's REST API (included under /api/v1/). Objects are addressed by their public UUIDs."""

from django.urls import path

from marketplace.api import coverage, offers, overflow, requests, webhooks

urlpatterns = [
    path("read-requests/", requests.ReadRequestListView.as_view(), name="api_read_requests"),
    path("read-requests/<uuid:public_id>/", requests.ReadRequestDetailView.as_view(), name="api_read_request_detail"),
    path("read-requests/<uuid:public_id>/cancel/", requests.ReadRequestCancelView.as_view(),
         name="api_read_request_cancel"),
    path("read-requests/<uuid:public_id>/history/", requests.ReadRequestHistoryView.as_view(),
         name="api_read_request_history"),
    path("read-requests/<uuid:public_id>/candidates/", requests.ReadRequestCandidatesView.as_view(),
         name="api_read_request_candidates"),
    path("offers/", offers.OfferListView.as_view(), name="api_offers"),
    path("offers/<uuid:public_id>/claim/", offers.OfferClaimView.as_view(), name="api_offer_claim"),
    path("offers/<uuid:public_id>/decline/", offers.OfferDeclineView.as_view(), name="api_offer_decline"),
    path("assignments/", offers.AssignmentListView.as_view(), name="api_assignments"),
    path("assignments/<uuid:public_id>/start/", offers.AssignmentStartView.as_view(), name="api_assignment_start"),
    path("assignments/<uuid:public_id>/release/", offers.AssignmentReleaseView.as_view(),
         name="api_assignment_release"),
    path("webhook-endpoints/", webhooks.WebhookEndpointListView.as_view(), name="api_webhook_endpoints"),
    path("webhook-endpoints/<uuid:public_id>/", webhooks.WebhookEndpointDetailView.as_view(),
         name="api_webhook_endpoint_detail"),
    path("webhook-endpoints/<uuid:public_id>/test/", webhooks.WebhookEndpointTestView.as_view(),
         name="api_webhook_endpoint_test"),
    path("studies/<uuid:public_id>/read-locally/", overflow.StudyReadLocallyView.as_view(),
         name="api_study_read_locally"),  # issue 18
    path("coverage/", coverage.CoverageView.as_view(), name="api_coverage"),
]
