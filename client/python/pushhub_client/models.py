"""Typed values of the wire protocol: blogs, entries, write results and frames.

Each type reads itself from the server's JSON (`from_json`) and writes itself back (`to_json`) in
the same shape, so `--json` output and scripts see exactly what the server sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, TypeAlias

from pushhub_client._text import html_to_text
from pushhub_client.errors import ProtocolError

Json: TypeAlias = dict[str, Any]
Op: TypeAlias = Literal["create", "update", "delete", "blog"]


def parse_time(value: Any, key: str = "time") -> datetime:
    """A protocol timestamp (`2026-11-25T13:04:05.123Z`) as an aware UTC datetime."""
    if not isinstance(value, str):
        raise ProtocolError(f"expected a timestamp for {key!r}, got {value!r}")
    try:
        return datetime.fromisoformat(value).astimezone(UTC)
    except ValueError:
        raise ProtocolError(f"bad timestamp for {key!r}: {value!r}") from None


def format_time(value: datetime) -> str:
    return (
        value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    )


def _str(data: Json, key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise ProtocolError(f"expected a string for {key!r}, got {value!r}")
    return value


def _opt_str(data: Json, key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise ProtocolError(f"expected a string or null for {key!r}, got {value!r}")
    return value


def _int(data: Json, key: str) -> int:
    value = data.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ProtocolError(f"expected an integer for {key!r}, got {value!r}")
    return value


def _obj(data: Json, key: str) -> Json:
    value = data.get(key)
    if not isinstance(value, dict):
        raise ProtocolError(f"expected an object for {key!r}, got {value!r}")
    return value


def _list(data: Json, key: str) -> list[Any]:
    value = data.get(key)
    if not isinstance(value, list):
        raise ProtocolError(f"expected a list for {key!r}, got {value!r}")
    return value


@dataclass(frozen=True)
class Image:
    """An entry's picture. `caption` and `credit` are plain text."""

    url: str
    caption: str | None = None
    credit: str | None = None

    @classmethod
    def from_json(cls, data: Json) -> Image:
        return cls(
            url=_str(data, "url"),
            caption=_opt_str(data, "caption"),
            credit=_opt_str(data, "credit"),
        )

    def to_json(self) -> Json:
        out: Json = {"url": self.url}
        if self.caption is not None:
            out["caption"] = self.caption
        if self.credit is not None:
            out["credit"] = self.credit
        return out


@dataclass(frozen=True)
class Blog:
    slug: str
    title: str
    summary: str
    status: str
    created_at: datetime
    updated_at: datetime
    allowed_origins: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: Json) -> Blog:
        return cls(
            slug=_str(data, "slug"),
            title=_str(data, "title"),
            summary=_opt_str(data, "summary") or "",
            status=_str(data, "status"),
            created_at=parse_time(data.get("created_at"), "created_at"),
            updated_at=parse_time(data.get("updated_at"), "updated_at"),
            allowed_origins=tuple(str(o) for o in data.get("allowed_origins") or ()),
        )

    def to_json(self) -> Json:
        return {
            "slug": self.slug,
            "title": self.title,
            "summary": self.summary,
            "status": self.status,
            "created_at": format_time(self.created_at),
            "updated_at": format_time(self.updated_at),
            "allowed_origins": list(self.allowed_origins),
        }


@dataclass(frozen=True)
class Entry:
    """One post of a live blog. Only `html` is safe to insert as HTML; the rest is plain text.

    `body` is the Markdown source, or None when it was not sent: readers' frames (`subscribe`,
    `LiveBlog`, long-poll events, snapshots) carry no Markdown source; API answers (publish,
    edit, delete, `get_blog`, `list_entries`) do. `text` is readable either way.
    """

    id: str
    created_at: datetime
    updated_at: datetime
    author: str
    title: str | None
    body: str | None
    html: str
    image: Image | None = None
    pinned: bool = False
    key: bool = False

    @classmethod
    def from_json(cls, data: Json) -> Entry:
        image = data.get("image")
        return cls(
            id=_str(data, "id"),
            created_at=parse_time(data.get("created_at"), "created_at"),
            updated_at=parse_time(data.get("updated_at"), "updated_at"),
            author=_opt_str(data, "author") or "",
            title=_opt_str(data, "title"),
            body=_opt_str(data, "body"),
            html=_opt_str(data, "html") or "",
            image=Image.from_json(image) if isinstance(image, dict) else None,
            pinned=bool(data.get("pinned", False)),
            key=bool(data.get("key", False)),
        )

    @property
    def text(self) -> str:
        """The entry as plain text: the Markdown source if it was sent, else the text of `html`."""
        return self.body if self.body is not None else html_to_text(self.html)

    def to_json(self) -> Json:
        out: Json = {
            "id": self.id,
            "created_at": format_time(self.created_at),
            "updated_at": format_time(self.updated_at),
            "author": self.author,
            "title": self.title,
            "body": self.body,
            "html": self.html,
            "image": self.image.to_json() if self.image else None,
            "pinned": self.pinned,
            "key": self.key,
        }
        if self.body is None:
            del out["body"]  # as the server sent it: a reader's frame has no "body" key
        return out


def sort_entries(entries: list[Entry]) -> list[Entry]:
    """Entries in the protocol's order: pinned first, then newest first (by time, then id)."""
    newest_first = sorted(entries, key=lambda e: (e.created_at, e.id), reverse=True)
    # sorted() is stable, so the second pass keeps newest-first inside each group.
    return sorted(newest_first, key=lambda e: not e.pinned)


@dataclass(frozen=True)
class BlogWrite:
    """The answer to `PUT /api/blogs/{blog}`; `created` is true when the blog did not exist."""

    blog: Blog
    seq: int
    epoch: str
    created: bool

    @classmethod
    def from_json(cls, data: Json, *, created: bool) -> BlogWrite:
        return cls(
            blog=Blog.from_json(_obj(data, "blog")),
            seq=_int(data, "seq"),
            epoch=_str(data, "epoch"),
            created=created,
        )

    def to_json(self) -> Json:
        return {"blog": self.blog.to_json(), "seq": self.seq, "epoch": self.epoch}


@dataclass(frozen=True)
class EntryWrite:
    """The answer to a publish, edit or delete: the entry (as it was, for a delete) and its seq."""

    entry: Entry
    seq: int
    epoch: str

    @classmethod
    def from_json(cls, data: Json) -> EntryWrite:
        return cls(
            entry=Entry.from_json(_obj(data, "entry")),
            seq=_int(data, "seq"),
            epoch=_str(data, "epoch"),
        )

    def to_json(self) -> Json:
        return {"entry": self.entry.to_json(), "seq": self.seq, "epoch": self.epoch}


@dataclass(frozen=True)
class BlogState:
    """A whole blog at one seq: `GET /api/blogs/{blog}`."""

    blog: Blog
    entries: list[Entry]
    seq: int
    epoch: str

    @classmethod
    def from_json(cls, data: Json) -> BlogState:
        return cls(
            blog=Blog.from_json(_obj(data, "blog")),
            entries=[Entry.from_json(e) for e in _list(data, "entries")],
            seq=_int(data, "seq"),
            epoch=_str(data, "epoch"),
        )

    def to_json(self) -> Json:
        return {
            "blog": self.blog.to_json(),
            "entries": [e.to_json() for e in self.entries],
            "seq": self.seq,
            "epoch": self.epoch,
        }


@dataclass(frozen=True)
class Snapshot:
    """The whole blog at `seq`; with `reset`, the reader must replace its copy."""

    seq: int
    epoch: str
    blog: Blog
    entries: list[Entry]
    reset: bool = False
    type: Literal["snapshot"] = field(default="snapshot", init=False)

    def to_json(self) -> Json:
        return {
            "type": "snapshot",
            "seq": self.seq,
            "epoch": self.epoch,
            "blog": self.blog.to_json(),
            "entries": [e.to_json() for e in self.entries],
            "reset": self.reset,
        }


@dataclass(frozen=True)
class Event:
    """One change. `entry` is set for create/update, `entry_id` for every entry op, `blog` for blog.

    A delete carries only the id (`entry` is None).
    """

    seq: int
    epoch: str
    op: Op
    entry_id: str | None = None
    entry: Entry | None = None
    blog: Blog | None = None
    type: Literal["event"] = field(default="event", init=False)

    def to_json(self) -> Json:
        out: Json = {"type": "event", "seq": self.seq, "epoch": self.epoch, "op": self.op}
        if self.op == "blog" and self.blog is not None:
            out["blog"] = self.blog.to_json()
        elif self.entry is not None:
            out["entry"] = self.entry.to_json()
        else:
            out["entry"] = {"id": self.entry_id}
        return out


Frame: TypeAlias = Snapshot | Event


def parse_frame(data: Json) -> Frame | None:
    """A snapshot or event frame; None for frames that carry no change (`pong`, unknown types)."""
    kind = data.get("type")
    if kind == "snapshot":
        return Snapshot(
            seq=_int(data, "seq"),
            epoch=_str(data, "epoch"),
            blog=Blog.from_json(_obj(data, "blog")),
            entries=[Entry.from_json(e) for e in _list(data, "entries")],
            reset=bool(data.get("reset", False)),
        )
    if kind != "event":
        return None
    seq, epoch, op = _int(data, "seq"), _str(data, "epoch"), data.get("op")
    if op == "blog":
        return Event(seq=seq, epoch=epoch, op="blog", blog=Blog.from_json(_obj(data, "blog")))
    if op == "delete":
        return Event(seq=seq, epoch=epoch, op="delete", entry_id=_str(_obj(data, "entry"), "id"))
    if op in ("create", "update"):
        entry = Entry.from_json(_obj(data, "entry"))
        return Event(seq=seq, epoch=epoch, op=op, entry_id=entry.id, entry=entry)
    raise ProtocolError(f"unknown event op {op!r}")


@dataclass(frozen=True)
class EventsPage:
    """The answer to a long-poll: the frames after `since`, and the blog's head seq."""

    frames: list[Frame]
    seq: int
    epoch: str

    @classmethod
    def from_json(cls, data: Json) -> EventsPage:
        frames = [parse_frame(f) for f in _list(data, "frames") if isinstance(f, dict)]
        return cls(
            frames=[f for f in frames if f is not None],
            seq=_int(data, "seq"),
            epoch=_str(data, "epoch"),
        )

    def to_json(self) -> Json:
        return {"frames": [f.to_json() for f in self.frames], "seq": self.seq, "epoch": self.epoch}
