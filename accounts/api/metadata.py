"""What an API route answers to OPTIONS (REST_FRAMEWORK's DEFAULT_METADATA_CLASS)."""

from __future__ import annotations

from rest_framework.metadata import SimpleMetadata


class ReadRoomMetadata(SimpleMetadata):
    """DRF's description of a route, with the input fields of its writes only where the view has a serializer
    for them: an action without a body (``POST .../activate/``) has none, and DRF's default would assert and
    answer 500 (issue 20)."""

    def determine_actions(self, request, view):
        if not _has_serializer(view):
            return {}
        return super().determine_actions(request, view)


def _has_serializer(view) -> bool:
    # Imported here: rest_framework.views reads this setting while it is being imported itself.
    from rest_framework.generics import GenericAPIView

    if not isinstance(view, GenericAPIView):
        return False
    overridden = type(view).get_serializer_class is not GenericAPIView.get_serializer_class
    return overridden or getattr(view, "serializer_class", None) is not None
