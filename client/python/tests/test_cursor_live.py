"""Exactly-once delivery (`Cursor`) and the local copy (`LiveBlog.apply`), frame by frame."""

from __future__ import annotations

from typing import Any

import pytest
from pushhub_client import Blog, Entry, Event, LiveBlog, ProtocolError, Snapshot
from pushhub_client.cursor import Cursor, Verdict

BLOG = Blog.from_json(
    {
        "slug": "b",
        "title": "B",
        "summary": "",
        "status": "live",
        "created_at": "2026-11-25T13:00:00.000Z",
        "updated_at": "2026-11-25T13:00:00.000Z",
        "allowed_origins": [],
    }
)


def entry(entry_id: str, minute: int, **changes: Any) -> Entry:
    raw: dict[str, Any] = {
        "id": entry_id,
        "created_at": f"2026-11-25T13:{minute:02d}:00.000Z",
        "updated_at": f"2026-11-25T13:{minute:02d}:00.000Z",
        "author": "A",
        "title": f"title {entry_id}",
        "html": "<p>b</p>",
        "image": None,
        "pinned": False,
        "key": False,
    }
    return Entry.from_json({**raw, **changes})


def snapshot(seq: int, *entries: Entry, epoch: str = "e1", reset: bool = False) -> Snapshot:
    return Snapshot(seq=seq, epoch=epoch, blog=BLOG, entries=list(entries), reset=reset)


def created(seq: int, e: Entry, epoch: str = "e1") -> Event:
    return Event(seq=seq, epoch=epoch, op="create", entry_id=e.id, entry=e)


def test_cursor_delivers_in_order_drops_replays_and_flags_gaps() -> None:
    cursor = Cursor()
    assert cursor.query() == {}
    assert cursor.accept(snapshot(5)) is Verdict.DELIVER
    assert cursor.query() == {"since": "5", "epoch": "e1"}
    assert cursor.accept(created(6, entry("a", 1))) is Verdict.DELIVER
    assert cursor.accept(created(6, entry("a", 1))) is Verdict.DUPLICATE
    assert cursor.accept(created(4, entry("z", 1))) is Verdict.DUPLICATE
    assert cursor.accept(created(8, entry("c", 1))) is Verdict.GAP
    assert cursor.seq == 6, "a gap must not move the cursor"
    assert cursor.accept(created(7, entry("b", 1), epoch="e2")) is Verdict.GAP
    assert cursor.accept(snapshot(2, epoch="e2", reset=True)) is Verdict.DELIVER
    assert cursor.query() == {"since": "2", "epoch": "e2"}


def test_cursor_without_a_position_needs_a_snapshot_but_resumes_from_since() -> None:
    assert Cursor().accept(created(1, entry("a", 1))) is Verdict.GAP
    resumed = Cursor(since=3)
    assert resumed.query() == {"since": "3"}
    assert resumed.accept(created(4, entry("a", 1), epoch="e9")) is Verdict.DELIVER
    assert resumed.epoch == "e9"


def test_live_blog_applies_every_op_and_keeps_protocol_order() -> None:
    live = LiveBlog("b")
    a, b = entry("a", 1), entry("b", 2)
    assert live.apply(snapshot(1, a, b))
    assert [e.id for e in live.entries] == ["b", "a"]
    c = entry("c", 3)
    assert live.apply(created(2, c))
    assert live.apply(
        Event(seq=3, epoch="e1", op="update", entry_id="a", entry=entry("a", 1, pinned=True))
    )
    assert [e.id for e in live.entries] == ["a", "c", "b"]
    assert live.apply(Event(seq=4, epoch="e1", op="delete", entry_id="b"))
    renamed = Blog.from_json({**BLOG.to_json(), "title": "Renamed"})
    assert live.apply(Event(seq=5, epoch="e1", op="blog", blog=renamed))
    assert [e.id for e in live.entries] == ["a", "c"]
    assert live.blog is not None and live.blog.title == "Renamed" and live.seq == 5
    assert not live.apply(created(3, entry("x", 9))), "an old frame is ignored"
    assert live.get("x") is None
    with pytest.raises(ProtocolError, match="gap"):
        live.apply(created(7, entry("y", 9)))


def test_live_blog_reset_snapshot_replaces_everything() -> None:
    live = LiveBlog("b")
    live.apply(snapshot(10, entry("a", 1), entry("b", 2)))
    live.apply(snapshot(1, entry("n", 5), epoch="e2", reset=True))
    assert [e.id for e in live.entries] == ["n"] and (live.seq, live.epoch) == (1, "e2")
    with pytest.raises(ProtocolError):
        live.apply(created(2, entry("q", 6), epoch="e1"))
