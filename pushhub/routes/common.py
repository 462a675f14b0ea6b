"""Helpers shared by the handlers: JSON answers, body limits, query parsing, CORS."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from pushhub.errors import BadRequest, Forbidden, Invalid, PushhubError, TooLarge
from pushhub.model import BlogDoc, origin_allowed
from pushhub.protocol import Position, ProtocolError, parse_position
from pushhub.runtime import Runtime


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def json_response(doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(doc), status_code=status, media_type="application/json", headers=headers
    )


def error_response(exc: PushhubError) -> Response:
    headers = {}
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        headers["Retry-After"] = str(max(1, round(retry_after)))
    return json_response(exc.to_json(), exc.status, headers)


async def read_json(request: Request, limit: int) -> dict[str, Any]:
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > limit):
        raise TooLarge(f"request body over the limit of {limit} bytes")
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise TooLarge(f"request body over the limit of {limit} bytes")
    except ClientDisconnect:
        # The client left mid-body: nothing to answer and nothing was written.
        raise BadRequest("the client disconnected before sending the whole body") from None
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Invalid("(body)", f"request body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise Invalid("(body)", "request body must be a JSON object")
    return doc


def idempotency_key(request: Request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    if not 1 <= len(key) <= 128 or not all(33 <= ord(c) <= 126 for c in key):
        raise BadRequest("Idempotency-Key must be 1-128 printable ASCII characters")
    return key


def position(since: str | None, epoch: str | None) -> Position:
    try:
        return parse_position(since, epoch)
    except ProtocolError as exc:
        raise BadRequest(exc.reason) from None


def cors_headers(blog: BlogDoc, origin: str | None) -> dict[str, str]:
    # Our own pages need no CORS header: the browser only asks for it cross-origin.
    """Read endpoints answer cross-origin pages that the blog allows (embeds)."""
    if origin is None or not origin_allowed(blog, origin):
        return {}
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}


def reader_origin_ok(blog: BlogDoc, headers: Mapping[str, str]) -> bool:
    """The blog allows the page's origin, or the page is one of our own (its iframe, say)."""
    origin = headers.get("origin")
    return origin_allowed(blog, origin) or same_origin(origin, headers.get("host"))


def check_origin(blog: BlogDoc, headers: Mapping[str, str]) -> None:
    if not reader_origin_ok(blog, headers):
        raise Forbidden("this blog may not be read from that origin")


def same_origin(origin: str | None, host: str | None) -> bool:
    """A blog's own pages (and its iframe) are served by us: their Origin names our Host."""
    if not origin or not host:
        return False
    _, sep, netloc = origin.partition("://")
    return bool(sep) and netloc.lower() == host.lower()
