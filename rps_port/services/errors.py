"""Service errors. The API maps each to an RFC 9457 problem; the CLI prints the message."""

from __future__ import annotations


class ServiceError(Exception):
    status = 400
    title = "Bad request"

    def __init__(self, detail: str, *, field: str | None = None, **extra: object) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.extra = extra


class NotFound(ServiceError):
    status = 404
    title = "Not found"


class Forbidden(ServiceError):
    status = 403
    title = "Forbidden"


class Conflict(ServiceError):
    status = 409
    title = "Conflict"


class InvalidInput(ServiceError):
    """Well-formed input the domain rejects (a reference to an unknown record, a bad cursor)."""

    status = 422
    title = "Unprocessable content"
