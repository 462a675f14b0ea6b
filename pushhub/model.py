"""The value types of a live blog (as the JSON they travel as) and the rules that build them.

Blogs and entries are TypedDicts because they are JSON on the wire, in the store and in the
cache alike: no conversion layer, and mypy still checks every field.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal, NotRequired, TypedDict
from urllib.parse import urlsplit

from pushhub.errors import Invalid
from pushhub.ids import new_entry_id, now_iso
from pushhub.sanitize import render_markdown

SLUG_RE = re.compile(r"[a-z0-9-]{1,64}")
ENTRY_ID_RE = re.compile(r"[0-9a-z]{1,32}")
ORIGIN_RE = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?")

Status = Literal["live", "ended"]
Op = Literal["create", "update", "delete", "blog"]


class ImageDoc(TypedDict):
    url: str
    caption: str
    credit: str


class EntryDoc(TypedDict):
    id: str
    created_at: str
    updated_at: str
    author: str
    title: str | None
    body: str
    html: str
    image: ImageDoc | None
    pinned: bool
    key: bool


class BlogDoc(TypedDict):
    slug: str
    title: str
    summary: str
    status: Status
    created_at: str
    updated_at: str
    allowed_origins: list[str]


class EventDoc(TypedDict):
    type: Literal["event"]
    seq: int
    epoch: str
    op: Op
    entry: NotRequired[EntryDoc | dict[str, str]]
    blog: NotRequired[BlogDoc]


LIMITS = {
    "title": 300,
    "summary": 5000,
    "author": 120,
    "body": 100_000,
    "caption": 1000,
    "credit": 300,
    "url": 2048,
}


def valid_slug(slug: str) -> bool:
    return SLUG_RE.fullmatch(slug) is not None


def valid_entry_id(entry_id: str) -> bool:
    return ENTRY_ID_RE.fullmatch(entry_id) is not None


# -- field validation ---------------------------------------------------------------------------


def _reject_unknown(fields: Mapping[str, Any], allowed: Iterable[str], prefix: str = "") -> None:
    allowed_set = set(allowed)
    for name in fields:
        if name not in allowed_set:
            raise Invalid(prefix + str(name), "unknown field")


def _text(value: Any, field: str, *, limit_key: str, allow_empty: bool = True) -> str:
    if not isinstance(value, str):
        raise Invalid(field, "must be a string")
    if "\x00" in value:
        raise Invalid(field, "must not contain NUL characters")
    text: str = value.strip()
    if not allow_empty and not text:
        raise Invalid(field, "must not be empty")
    if len(text) > LIMITS[limit_key]:
        raise Invalid(field, f"must be at most {LIMITS[limit_key]} characters")
    return text


def _bool(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise Invalid(field, "must be true or false")
    return value


def _image(value: Any) -> ImageDoc | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise Invalid("image", "must be an object with url, caption, credit, or null")
    _reject_unknown(value, ("url", "caption", "credit"), "image.")
    if "url" not in value:
        raise Invalid("image.url", "is required")
    url = _text(value["url"], "image.url", limit_key="url", allow_empty=False)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise Invalid("image.url", "must be an absolute http or https URL")
    return ImageDoc(
        url=url,
        caption=_text(value.get("caption", ""), "image.caption", limit_key="caption"),
        credit=_text(value.get("credit", ""), "image.credit", limit_key="credit"),
    )


def _origins(value: Any) -> list[str]:
    if not isinstance(value, list) or len(value) > 50:
        raise Invalid("allowed_origins", "must be a list of at most 50 origins")
    out = []
    for i, origin in enumerate(value):
        if not isinstance(origin, str) or ORIGIN_RE.fullmatch(origin) is None:
            raise Invalid(f"allowed_origins.{i}", "must be an origin like https://news.example")
        out.append(origin.lower())
    return out


_ENTRY_FIELDS = ("title", "body", "author", "image", "pinned", "key")
_BLOG_FIELDS = ("title", "summary", "status", "allowed_origins")


def new_entry(fields: Mapping[str, Any], *, editor: str, entry_id: str | None = None) -> EntryDoc:
    """Build a new entry from a create request; the body is rendered and sanitized here."""
    _reject_unknown(fields, _ENTRY_FIELDS)
    if "body" not in fields:
        raise Invalid("body", "is required")
    body = _text(fields["body"], "body", limit_key="body", allow_empty=False)
    title = fields.get("title")
    now = now_iso()
    return EntryDoc(
        id=entry_id or new_entry_id(),
        created_at=now,
        updated_at=now,
        author=_text(fields.get("author") or "", "author", limit_key="author")
        or _text(editor, "author", limit_key="author", allow_empty=False),
        title=None if title is None else _text(title, "title", limit_key="title") or None,
        body=body,
        html=render_markdown(body),
        image=_image(fields.get("image")),
        pinned=_bool(fields.get("pinned", False), "pinned"),
        key=_bool(fields.get("key", False), "key"),
    )


def patch_entry(entry: EntryDoc, fields: Mapping[str, Any]) -> EntryDoc:
    """Apply an edit request to an entry; fields left out stay as they are."""
    _reject_unknown(fields, _ENTRY_FIELDS)
    if not fields:
        raise Invalid("body", "an edit must change at least one field")
    out = EntryDoc(**entry)
    if "body" in fields:
        out["body"] = _text(fields["body"], "body", limit_key="body", allow_empty=False)
        out["html"] = render_markdown(out["body"])
    if "title" in fields:
        title = fields["title"]
        out["title"] = None if title is None else _text(title, "title", limit_key="title") or None
    if "author" in fields:
        out["author"] = _text(fields["author"], "author", limit_key="author", allow_empty=False)
    if "image" in fields:
        out["image"] = _image(fields["image"])
    if "pinned" in fields:
        out["pinned"] = _bool(fields["pinned"], "pinned")
    if "key" in fields:
        out["key"] = _bool(fields["key"], "key")
    out["updated_at"] = now_iso()
    return out


def put_blog(slug: str, current: BlogDoc | None, fields: Mapping[str, Any]) -> BlogDoc:
    """Create a blog (title required) or update the fields given."""
    _reject_unknown(fields, _BLOG_FIELDS)
    now = now_iso()
    if current is None:
        if "title" not in fields:
            raise Invalid("title", "is required to create a blog")
        blog = BlogDoc(
            slug=slug, title="", summary="", status="live",
            created_at=now, updated_at=now, allowed_origins=[],
        )  # fmt: skip
    else:
        blog = BlogDoc(**current)
        blog["updated_at"] = now
    if "title" in fields:
        blog["title"] = _text(fields["title"], "title", limit_key="title", allow_empty=False)
    if "summary" in fields:
        blog["summary"] = _text(fields["summary"], "summary", limit_key="summary")
    if "status" in fields:
        if fields["status"] not in ("live", "ended"):
            raise Invalid("status", "must be 'live' or 'ended'")
        blog["status"] = fields["status"]
    if "allowed_origins" in fields:
        blog["allowed_origins"] = _origins(fields["allowed_origins"])
    return blog


# -- ordering and applying events ---------------------------------------------------------------


def ordered(entries: Iterable[EntryDoc]) -> list[EntryDoc]:
    """Pinned first, then newest first; the id breaks ties so the order is total."""
    return sorted(entries, key=lambda e: (e["pinned"], e["created_at"], e["id"]), reverse=True)


def origin_allowed(blog: BlogDoc, origin: str | None) -> bool:
    """An empty allowlist admits everyone; requests without Origin are not from a browser page."""
    allowed = blog["allowed_origins"]
    return not allowed or origin is None or origin.lower() in allowed
