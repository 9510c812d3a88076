"""The one application error type. Services raise it; one handler turns it into the API format."""

from __future__ import annotations


class ApplicationError(Exception):
    """A business rule refused the request. ``code`` is stable for clients; ``fields`` names inputs."""

    status_code = 400

    def __init__(self, message: str, *, code: str = "invalid", fields: dict[str, list[str]] | None = None,
                 status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.fields = fields or {}
        if status_code is not None:
            self.status_code = status_code

    @classmethod
    def for_field(cls, field: str, message: str, *, code: str = "invalid") -> ApplicationError:
        return cls(message, code=code, fields={field: [message]})


class NotFound(ApplicationError):
    """The object does not exist *or* the actor may not see it: the two look the same (404)."""

    status_code = 404

    def __init__(self, message: str = "Not found.") -> None:
        super().__init__(message, code="not_found")


class PermissionDenied(ApplicationError):
    """The actor may see the object but not do this to it."""

    status_code = 403

    def __init__(self, message: str = "You may not do this.", *, code: str = "permission_denied") -> None:
        super().__init__(message, code=code)
