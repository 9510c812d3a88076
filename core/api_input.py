"""Request serializers that refuse what they do not take (issue 20 item 6).

A module of its own, importing nothing of DRF's views: serializers import it, and DRF's views import the
metadata class, which imports the serializers (core.api would make a cycle).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from rest_framework import exceptions as drf_exceptions
from rest_framework import serializers


class RefuseUnknownFields:
    """For request serializers: a field the request does not take (unknown, misspelt or read-only) is refused
    with 400 naming it, never silently ignored. The schema says so (``additionalProperties: false``, see
    core/schema.py)."""

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            writable = {name for name, field in self.fields.items() if not field.read_only}
            unknown = sorted(str(name) for name in data if name not in writable)
            if unknown:
                raise drf_exceptions.ValidationError({name: ["This request does not take this field."]
                                                      for name in unknown})
            # DRF's CharField would take 0 as "0": the schema says string, so a number is refused.
            not_text = sorted(name for name, field in self.fields.items()
                              if isinstance(field, serializers.CharField)
                              and data.get(name) is not None and not isinstance(data.get(name), str))
            if not_text:
                raise drf_exceptions.ValidationError({name: ["Give a string."] for name in not_text})
        return super().to_internal_value(data)


@functools.cache
def refusing_unknown_fields(serializer_class: type) -> type:
    """``serializer_class`` with ``RefuseUnknownFields``, under the same name (the same schema component): for
    request serializers defined where the mixin cannot be added to the class itself."""
    return type(serializer_class.__name__, (RefuseUnknownFields, serializer_class),
                {"__module__": serializer_class.__module__, "__doc__": serializer_class.__doc__})
