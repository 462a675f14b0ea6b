"""The wire values: reading the server's JSON into types and back, ordering, error mapping."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pushhub_client import (
    AuthError,
    Blog,
    Conflict,
    Entry,
    Event,
    NotFound,
    ProtocolError,
    RateLimited,
    ServerError,
    Snapshot,
    Unavailable,
    ValidationError,
)
from pushhub_client.errors import from_response
from pushhub_client.models import EventsPage, parse_frame, sort_entries

BLOG: dict[str, Any] = {
    "slug": "harbour-regatta",
    "title": "Harbour regatta",
    "summary": "Boats.",
    "status": "live",
    "created_at": "2026-11-25T13:04:05.123Z",
    "updated_at": "2026-11-25T13:05:00.000Z",
    "allowed_origins": ["https://news.example"],
}


def entry_json(entry_id: str, created: str, *, pinned: bool = False) -> dict[str, Any]:
    return {
        "id": entry_id,
        "created_at": created,
        "updated_at": created,
        "author": "Kim Lowe",
        "title": None,
        "body": "Fog *lifts*",
        "html": "<p>Fog <em>lifts</em></p>",
        "image": {"url": "https://images.example/a.jpg", "caption": "Fog", "credit": "K. L."},
        "pinned": pinned,
        "key": False,
    }


def reader_entry_json(entry_id: str, created: str) -> dict[str, Any]:
    """An entry as readers' frames carry it: everything but the Markdown source."""
    raw = entry_json(entry_id, created)
    del raw["body"]
    return raw


def test_blog_and_entry_round_trip_to_the_same_json() -> None:
    assert Blog.from_json(BLOG).to_json() == BLOG
    raw = entry_json("0abc", "2026-11-25T13:04:05.007Z")
    entry = Entry.from_json(raw)
    assert entry.created_at == datetime(2026, 11, 25, 13, 4, 5, 7000, tzinfo=UTC)
    assert entry.image is not None and entry.image.credit == "K. L."
    assert entry.to_json() == raw


def test_a_reader_entry_has_no_body_and_stays_without_one() -> None:
    raw = reader_entry_json("0abc", "2026-11-25T13:04:05.007Z")
    entry = Entry.from_json(raw)
    assert entry.body is None and entry.html == "<p>Fog <em>lifts</em></p>"
    assert entry.text == "Fog lifts", "the text comes from the HTML"
    assert entry.to_json() == raw and "body" not in entry.to_json()


def test_an_api_entry_keeps_its_markdown_body_as_its_text() -> None:
    entry = Entry.from_json(entry_json("0abc", "2026-11-25T13:04:05.007Z"))
    assert entry.body == "Fog *lifts*" and entry.text == "Fog *lifts*"


def test_reader_frames_without_body_parse() -> None:
    raw = reader_entry_json("0a", "2026-11-25T10:00:00.000Z")
    frames = [
        {"type": "snapshot", "seq": 1, "epoch": "ep1", "blog": BLOG, "entries": [raw]},
        {"type": "event", "seq": 2, "epoch": "ep1", "op": "update", "entry": raw},
    ]
    snap, update = (parse_frame(f) for f in frames)
    assert isinstance(snap, Snapshot) and snap.entries[0].body is None
    assert isinstance(update, Event) and update.entry is not None and update.entry.body is None
    assert [f.to_json() for f in (snap, update)] == [{**frames[0], "reset": False}, frames[1]]


def test_a_bad_value_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="created_at"):
        Entry.from_json({**entry_json("x", "2026-11-25T13:04:05.007Z"), "created_at": 5})
    with pytest.raises(ProtocolError, match="body"):
        Entry.from_json({**entry_json("x", "2026-11-25T13:04:05.007Z"), "body": 5})
    with pytest.raises(ProtocolError, match="bad timestamp"):
        Blog.from_json({**BLOG, "updated_at": "yesterday"})


def test_entries_sort_pinned_first_then_newest_then_id() -> None:
    raw = [
        entry_json("0a", "2026-11-25T10:00:00.000Z"),
        entry_json("0b", "2026-11-25T12:00:00.000Z"),
        entry_json("0c", "2026-11-25T09:00:00.000Z", pinned=True),
        entry_json("0d", "2026-11-25T12:00:00.000Z"),
    ]
    ordered = sort_entries([Entry.from_json(e) for e in raw])
    assert [e.id for e in ordered] == ["0c", "0d", "0b", "0a"]


def test_frames_parse_by_type_and_op() -> None:
    created = reader_entry_json("0a", "2026-11-25T10:00:00.000Z")
    base = {"type": "event", "epoch": "ep1"}
    create = parse_frame({**base, "seq": 2, "op": "create", "entry": created})
    delete = parse_frame({**base, "seq": 3, "op": "delete", "entry": {"id": "0a"}})
    blog = parse_frame({**base, "seq": 4, "op": "blog", "blog": BLOG})
    snap = parse_frame(
        {"type": "snapshot", "seq": 1, "epoch": "ep1", "blog": BLOG, "entries": [], "reset": True}
    )
    assert isinstance(create, Event) and create.entry is not None and create.entry_id == "0a"
    assert isinstance(delete, Event) and delete.entry is None and delete.entry_id == "0a"
    assert isinstance(blog, Event) and blog.blog is not None and blog.blog.slug == BLOG["slug"]
    assert isinstance(snap, Snapshot) and snap.reset and snap.seq == 1
    assert parse_frame({"type": "pong"}) is None
    assert delete.to_json() == {**base, "seq": 3, "op": "delete", "entry": {"id": "0a"}}
    with pytest.raises(ProtocolError, match="unknown event op"):
        parse_frame({**base, "seq": 5, "op": "explode"})


def test_events_page_skips_frames_that_carry_no_change() -> None:
    page = EventsPage.from_json({"frames": [{"type": "pong"}], "seq": 9, "epoch": "e"})
    assert page.frames == [] and page.seq == 9


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, ValidationError),
        (401, AuthError),
        (403, AuthError),
        (404, NotFound),
        (409, Conflict),
        (413, ValidationError),
        (415, ValidationError),
        (422, ValidationError),
        (429, RateLimited),
        (500, ServerError),
        (502, Unavailable),
        (503, Unavailable),
        (504, Unavailable),
    ],
)
def test_error_answers_map_to_exception_classes(status: int, cls: type[Exception]) -> None:
    body = b'{"error": "invalid", "message": "image.url: must be http", "field": "image.url"}'
    error = from_response(status, body, {"retry-after": "3"})
    assert type(error) is cls
    assert error.status == status and error.code == "invalid" and error.field == "image.url"
    assert error.message == "image.url: must be http"
    if isinstance(error, RateLimited):
        assert error.retry_after == 3.0


def test_an_error_page_that_is_not_json_still_gives_a_message() -> None:
    error = from_response(502, b"<html><body>Bad Gateway</body></html>", {})
    assert isinstance(error, Unavailable)
    assert error.message == "the server answered HTTP 502" and error.field is None
    assert from_response(500, b"upstream exploded\nmore", {}).message == "upstream exploded"
