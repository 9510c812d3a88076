"""DICOMweb routes (PS3.18), included under /dicomweb/. UIDs are validated by the views."""

from django.urls import path

from studies.dicomweb import qido, stow, wado

S = "studies/<str:study_uid>"
SE = f"{S}/series/<str:series_uid>"
I = f"{SE}/instances/<str:sop_uid>"  # noqa: E741

urlpatterns = [
    # STOW-RS (POST) and QIDO-RS (GET) share the collection URLs
    path("studies", stow.studies_collection, name="dicomweb_studies"),
    path(f"{S}", stow.study_resource, name="dicomweb_study"),
    path(f"{S}/series", qido.search_series, name="dicomweb_study_series"),
    path("series", qido.search_all_series, name="dicomweb_series"),
    path(f"{S}/instances", qido.search_study_instances, name="dicomweb_study_instances"),
    path(f"{SE}/instances", qido.search_series_instances, name="dicomweb_series_instances"),
    path("instances", qido.search_all_instances, name="dicomweb_instances"),
    # WADO-RS
    path(f"{S}/metadata", wado.study_metadata, name="dicomweb_study_metadata"),
    path(f"{S}/rendered", wado.study_rendered, name="dicomweb_study_rendered"),
    path(f"{S}/thumbnail", wado.study_thumbnail, name="dicomweb_study_thumbnail"),
    path(f"{SE}", wado.series_retrieve, name="dicomweb_series_retrieve"),
    path(f"{SE}/metadata", wado.series_metadata, name="dicomweb_series_metadata"),
    path(f"{SE}/rendered", wado.series_rendered, name="dicomweb_series_rendered"),
    path(f"{SE}/thumbnail", wado.series_thumbnail, name="dicomweb_series_thumbnail"),
    path(f"{I}", wado.instance_retrieve, name="dicomweb_instance_retrieve"),
    path(f"{I}/metadata", wado.instance_metadata, name="dicomweb_instance_metadata"),
    path(f"{I}/rendered", wado.instance_rendered, name="dicomweb_instance_rendered"),
    path(f"{I}/thumbnail", wado.instance_thumbnail, name="dicomweb_instance_thumbnail"),
    path(f"{I}/frames/<str:frames>", wado.instance_frames, name="dicomweb_instance_frames"),
    path(f"{I}/frames/<str:frames>/rendered", wado.frames_rendered, name="dicomweb_frames_rendered"),
    path(f"{I}/bulkdata/<str:tag>", wado.instance_bulkdata, name="dicomweb_instance_bulkdata"),
]
