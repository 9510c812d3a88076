"""Study pages (list, detail, upload). Access rules: studies.policy.ROUTES."""

from django.urls import path

from studies import break_glass_views, patient_views, share_views, views

urlpatterns = [
    path("", views.study_list, name="study_list"),
    path("upload/", views.study_upload, name="study_upload"),
    path("upload/file/", views.study_upload_file, name="study_upload_file"),
    path("emergency/", break_glass_views.study_break_glass, name="study_break_glass"),
    path("emergency/<uuid:public_id>/end/", break_glass_views.study_break_glass_end, name="study_break_glass_end"),
    # patients' share requests, answered by the center's admins (studies/shares.py)
    path("share-requests/", share_views.share_request_list, name="share_request_list"),
    path("share-requests/<uuid:public_id>/approve/", share_views.share_request_approve, name="share_request_approve"),
    path("share-requests/<uuid:public_id>/decline/", share_views.share_request_decline, name="share_request_decline"),
    path("share-requests/<uuid:public_id>/revoke/", share_views.share_request_revoke, name="share_request_revoke"),
    path("original-reports/<uuid:public_id>/", patient_views.original_report_file, name="original_report_file"),
    path("<uuid:public_id>/", views.study_detail, name="study_detail"),
    path("<uuid:public_id>/jurisdiction/", views.study_jurisdiction, name="study_jurisdiction"),
    path("<uuid:public_id>/delete/", views.study_delete, name="study_delete"),
    path("<uuid:public_id>/restore/", views.study_restore, name="study_restore"),
]
