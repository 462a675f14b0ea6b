"""One exception tree for everything the server (or the network) can answer.

Every error carries the HTTP `status` (None when no answer arrived), the server's `code`
(`not_found`, `invalid`, …) and its human `message`; `ValidationError` also names the `field`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping


class PushHubError(Exception):
    """Base of every error this client raises."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.field = field


class AuthError(PushHubError):
    """401: missing, expired or bad token; 403: the token does not cover this blog."""


class NotFound(PushHubError):
    """404: unknown blog or entry."""


class ValidationError(PushHubError):
    """The request was refused as malformed (400, 413, 415, 422); `field` names the bad field."""


class Conflict(PushHubError):
    """409: too many concurrent edits of one entry; already retried, still conflicting."""


class RateLimited(PushHubError):
    """429: too many requests; `retry_after` is the server's advice in seconds, if it gave one."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = 429,
        code: str | None = None,
        field: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, code=code, field=field)
        self.retry_after = retry_after


class Unavailable(PushHubError):
    """The server could not be reached, or its store could not (502/503/504, connect errors,
    timeouts), even after retrying. For a 503 the server wrote nothing."""


class ServerError(PushHubError):
    """Any other failure on the server's side (500, …)."""


class ProtocolError(PushHubError):
    """The server sent something the wire protocol does not allow, or refused what we sent
    (WebSocket close 1003/1008/1009/4400)."""


_BY_STATUS: dict[int, type[PushHubError]] = {
    400: ValidationError,
    401: AuthError,
    403: AuthError,
    404: NotFound,
    409: Conflict,
    413: ValidationError,
    415: ValidationError,
    422: ValidationError,
    429: RateLimited,
    502: Unavailable,
    503: Unavailable,
    504: Unavailable,
}


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after") or headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: rare from our server, and a backoff delay is as good


def from_response(status: int, body: bytes, headers: Mapping[str, str]) -> PushHubError:
    """The exception for an error answer; tolerates bodies that are not the documented JSON
    (a proxy's HTML 502 page, an empty body)."""
    code: str | None = None
    field: str | None = None
    message = ""
    try:
        data = json.loads(body) if body else None
    except ValueError:
        data = None
    if isinstance(data, dict):
        code = _text(data.get("error"))
        message = _text(data.get("message")) or ""
        field = _text(data.get("field"))
    if not message:
        text = body.decode("utf-8", "replace").strip().splitlines()
        message = text[0][:200] if text and not text[0].lstrip().startswith("<") else ""
        message = message or f"the server answered HTTP {status}"
    cls = _BY_STATUS.get(status, ServerError if status >= 500 else PushHubError)
    if cls is RateLimited:
        return RateLimited(
            message, status=status, code=code, field=field, retry_after=retry_after_seconds(headers)
        )
    return cls(message, status=status, code=code, field=field)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
