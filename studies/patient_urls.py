"""A patient's own images, under /my/ (issue 17). Access rules: studies.policy.ROUTES."""

from django.urls import path

from studies import patient_views

urlpatterns = [
    path("images/", patient_views.patient_images, name="patient_images"),
    path("images/upload/", patient_views.patient_upload, name="patient_upload"),
    path("images/upload/file/", patient_views.patient_upload_file, name="patient_upload_file"),
    path("images/shares/new/", patient_views.patient_share_request, name="patient_share_request"),
    path("images/shares/<uuid:public_id>/revoke/", patient_views.patient_share_revoke, name="patient_share_revoke"),
    path("images/<uuid:public_id>/", patient_views.patient_study, name="patient_study"),
    path("images/<uuid:public_id>/delete/", patient_views.patient_study_delete, name="patient_study_delete"),
    path("images/<uuid:public_id>/original-report/", patient_views.patient_original_report_upload,
         name="patient_original_report_upload"),
]
