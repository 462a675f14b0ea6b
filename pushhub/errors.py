"""One exception tree for everything a client can be told about.

Each error carries the HTTP status, a stable machine code and a human message; routes turn
them into `{"error", "message", "field"?}` JSON answers, so handlers never build error bodies.
"""

from __future__ import annotations


class PushhubError(Exception):
    status = 500
    code = "internal"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_json(self) -> dict[str, str]:
        body = {"error": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        return body


class BadRequest(PushhubError):
    status = 400
    code = "bad_request"


class Unauthorized(PushhubError):
    status = 401
    code = "unauthorized"


class Forbidden(PushhubError):
    status = 403
    code = "forbidden"


class NotFound(PushhubError):
    status = 404
    code = "not_found"


class Conflict(PushhubError):
    status = 409
    code = "conflict"


class TooLarge(PushhubError):
    status = 413
    code = "too_large"


class Invalid(PushhubError):
    """A field failed validation; `field` names it (dotted for nested fields)."""

    status = 422
    code = "invalid"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", field=field)


class RateLimited(PushhubError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Overloaded(PushhubError):
    """This node is full: try again later or elsewhere."""

    status = 503
    code = "overloaded"

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(PushhubError):
    """The store could not be reached or did not answer in time."""

    status = 503
    code = "unavailable"


class WriteConflict(Exception):
    """Internal: the stored value changed between read and write (compare-and-set failed)."""


class BlogMissing(Exception):
    """Internal: the store has no such blog."""
