"""The HTTP API as data: each call is a `Call` (method, path, body, how to read the answer).

No I/O here; `sync.PushHub` and `aio.AsyncPushHub` only send these and apply the retry policy,
so both clients speak exactly the same protocol.
"""

from __future__ import annotations

import enum
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx

from pushhub_client.errors import ProtocolError, PushHubError, Unavailable, from_response
from pushhub_client.models import (
    Blog,
    BlogState,
    BlogWrite,
    Entry,
    EntryWrite,
    EventsPage,
    Image,
    Json,
)

T = TypeVar("T")


class Unset(enum.Enum):
    """Marks an edit argument that was not given, as opposed to `None` (which clears a field)."""

    UNSET = "UNSET"


UNSET = Unset.UNSET


@dataclass(frozen=True)
class Call(Generic[T]):
    method: str
    path: str
    read: Callable[[int, Any], T]
    body: Json | None = None
    params: Mapping[str, str] | None = None
    idempotency_key: str | None = None
    # A long-poll holds the request for up to `wait` seconds; the read timeout must outlast it.
    extra_timeout: float = 0.0


def new_idempotency_key() -> str:
    return uuid.uuid4().hex


def _seg(value: str) -> str:
    # A slug or id with a "/" or "?" must not reach another endpoint.
    return quote(value, safe="")


def _blogs(_status: int, data: Any) -> list[Blog]:
    if not isinstance(data, dict) or not isinstance(data.get("blogs"), list):
        raise ProtocolError(f"expected {{'blogs': [...]}}, got {data!r:.200}")
    return [Blog.from_json(b) for b in data["blogs"]]


def _obj(data: Any) -> Json:
    if not isinstance(data, dict):
        raise ProtocolError(f"expected a JSON object, got {data!r:.200}")
    return data


def list_blogs() -> Call[list[Blog]]:
    return Call("GET", "/api/blogs", _blogs)


def put_blog(
    slug: str,
    *,
    title: str | None = None,
    summary: str | None = None,
    status: str | None = None,
    allowed_origins: Sequence[str] | None = None,
    idempotency_key: str | None = None,
) -> Call[BlogWrite]:
    body: Json = {}
    if title is not None:
        body["title"] = title
    if summary is not None:
        body["summary"] = summary
    if status is not None:
        body["status"] = status
    if allowed_origins is not None:
        body["allowed_origins"] = list(allowed_origins)
    return Call(
        "PUT",
        f"/api/blogs/{_seg(slug)}",
        lambda status_code, data: BlogWrite.from_json(_obj(data), created=status_code == 201),
        body=body,
        idempotency_key=idempotency_key or new_idempotency_key(),
    )


def get_blog(slug: str) -> Call[BlogState]:
    return Call("GET", f"/api/blogs/{_seg(slug)}", lambda _s, data: BlogState.from_json(_obj(data)))


def list_entries(slug: str) -> Call[list[Entry]]:
    return Call(
        "GET", f"/api/blogs/{_seg(slug)}", lambda _s, data: BlogState.from_json(_obj(data)).entries
    )


def _entry_write(_status: int, data: Any) -> EntryWrite:
    return EntryWrite.from_json(_obj(data))


def publish(
    slug: str,
    body: str,
    *,
    title: str | None = None,
    author: str | None = None,
    image: Image | None = None,
    pinned: bool = False,
    key: bool = False,
    idempotency_key: str | None = None,
) -> Call[EntryWrite]:
    fields: Json = {"body": body, "pinned": pinned, "key": key}
    if title is not None:
        fields["title"] = title
    if author is not None:
        fields["author"] = author
    if image is not None:
        fields["image"] = image.to_json()
    return Call(
        "POST",
        f"/api/blogs/{_seg(slug)}/entries",
        _entry_write,
        body=fields,
        idempotency_key=idempotency_key or new_idempotency_key(),
    )


def edit(
    slug: str,
    entry_id: str,
    *,
    title: str | Unset | None = UNSET,
    body: str | Unset = UNSET,
    author: str | Unset = UNSET,
    image: Image | Unset | None = UNSET,
    pinned: bool | Unset = UNSET,
    key: bool | Unset = UNSET,
    idempotency_key: str | None = None,
) -> Call[EntryWrite]:
    fields: Json = {}
    if not isinstance(title, Unset):
        fields["title"] = title
    if not isinstance(body, Unset):
        fields["body"] = body
    if not isinstance(author, Unset):
        fields["author"] = author
    if not isinstance(image, Unset):
        fields["image"] = image.to_json() if image is not None else None
    if not isinstance(pinned, Unset):
        fields["pinned"] = pinned
    if not isinstance(key, Unset):
        fields["key"] = key
    if not fields:
        raise ValueError("edit() needs at least one field to change")
    return Call(
        "PATCH",
        f"/api/blogs/{_seg(slug)}/entries/{_seg(entry_id)}",
        _entry_write,
        body=fields,
        idempotency_key=idempotency_key or new_idempotency_key(),
    )


def delete(slug: str, entry_id: str, *, idempotency_key: str | None = None) -> Call[EntryWrite]:
    return Call(
        "DELETE",
        f"/api/blogs/{_seg(slug)}/entries/{_seg(entry_id)}",
        _entry_write,
        idempotency_key=idempotency_key or new_idempotency_key(),
    )


def events(
    slug: str, *, since: int | None = None, epoch: str | None = None, wait: float | None = None
) -> Call[EventsPage]:
    params: dict[str, str] = {}
    if since is not None:
        params["since"] = str(since)
    if epoch is not None:
        params["epoch"] = epoch
    if wait is not None:
        params["wait"] = f"{wait:g}"
    return Call(
        "GET",
        f"/api/blogs/{_seg(slug)}/events",
        lambda _s, data: EventsPage.from_json(_obj(data)),
        params=params,
        extra_timeout=wait or 0.0,
    )


# --- turning HTTP exchanges into results or errors ---------------------------------------------


def headers(token: str | None, call: Call[Any], user_agent: str) -> dict[str, str]:
    out = {"Accept": "application/json", "User-Agent": user_agent}
    if token:
        out["Authorization"] = f"Bearer {token}"
    if call.idempotency_key:
        out["Idempotency-Key"] = call.idempotency_key
    return out


def encode_body(call: Call[Any]) -> bytes | None:
    return None if call.body is None else json.dumps(call.body).encode()


def read_response(call: Call[T], response: httpx.Response) -> T:
    if not response.is_success:
        raise from_response(response.status_code, response.content, response.headers)
    try:
        data = json.loads(response.content)
    except ValueError:
        raise ProtocolError(
            f"{call.method} {call.path}: the server answered {response.status_code} "
            "with a body that is not JSON",
            status=response.status_code,
        ) from None
    return call.read(response.status_code, data)


def transport_error(call: Call[Any], base_url: str, exc: httpx.HTTPError) -> PushHubError:
    """A network failure as an `Unavailable` that says what happened, in one line."""
    if isinstance(exc, httpx.ConnectTimeout | httpx.ConnectError):
        what = f"cannot connect to {base_url}"
    elif isinstance(exc, httpx.TimeoutException):
        what = f"{call.method} {call.path} timed out"
    else:
        what = f"{call.method} {call.path}: connection lost before the answer"
    detail = str(exc).strip()
    return Unavailable(f"{what} ({detail})" if detail else what)


# Failures worth another try: the request may not have arrived, or its answer got lost.
RETRYABLE_EXCEPTIONS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
