"""Study pages (list, detail, upload). Access rules: studies.policy.ROUTES."""

from django.urls import path

from studies import break_glass_views, views

urlpatterns = [
    path("", views.study_list, name="study_list"),
    path("upload/", views.study_upload, name="study_upload"),
    path("upload/file/", views.study_upload_file, name="study_upload_file"),
    path("emergency/", break_glass_views.study_break_glass, name="study_break_glass"),
    path("emergency/<uuid:public_id>/end/", break_glass_views.study_break_glass_end, name="study_break_glass_end"),
    path("<uuid:public_id>/", views.study_detail, name="study_detail"),
    path("<uuid:public_id>/jurisdiction/", views.study_jurisdiction, name="study_jurisdiction"),
    path("<uuid:public_id>/delete/", views.study_delete, name="study_delete"),
    path("<uuid:public_id>/restore/", views.study_restore, name="study_restore"),
]
