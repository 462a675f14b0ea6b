"""BlogReplica: a blog held in memory, kept current by the same event frames readers get."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pushhub.model import BlogDoc, EntryDoc
from pushhub.protocol import Frame, Position, event_body, event_frame
from pushhub.recovery import Live
from pushhub.replica import BlogReplica, Loaded

EPOCH = "ep0000001"


def dumps(doc: Any) -> str:
    return orjson.dumps(doc).decode()


def blog(title: str = "City Marathon live") -> BlogDoc:
    return BlogDoc(
        slug="marathon", title=title, summary="", status="live",
        created_at="2026-11-25T08:00:00.000Z", updated_at="2026-11-25T08:00:00.000Z",
        allowed_origins=[],
    )  # fmt: skip


def entry(n: int, *, pinned: bool = False, body: str | None = None) -> EntryDoc:
    """Entry number n; a larger n is created later."""
    created = f"2026-11-25T09:{n // 60:02d}:{n % 60:02d}.000Z"
    text = body if body is not None else f"entry {n}"
    return EntryDoc(
        id=f"e{n:05d}", created_at=created, updated_at=created, author="Ana", title=None,
        body=text, html=f"<p>{text}</p>", image=None, pinned=pinned, key=False,
    )  # fmt: skip


def create(seq: int, e: EntryDoc, epoch: str = EPOCH) -> str:
    return event_frame(seq, epoch, event_body("create", dumps(e)))


def update(seq: int, e: EntryDoc, epoch: str = EPOCH) -> str:
    return event_frame(seq, epoch, event_body("update", dumps(e)))


def delete(seq: int, entry_id: str, epoch: str = EPOCH) -> str:
    return event_frame(seq, epoch, event_body("delete", dumps({"id": entry_id})))


def blog_event(seq: int, b: BlogDoc, epoch: str = EPOCH) -> str:
    return event_frame(seq, epoch, event_body("blog", dumps(b)))


def loaded(
    entries: list[EntryDoc], seq: int, history: list[str], b: BlogDoc | None = None
) -> Loaded:
    return Loaded(dumps(b or blog()), [dumps(e) for e in entries], seq, EPOCH, history)


def texts(frames: list[Frame]) -> list[str]:
    """The stored events the frames were made from."""
    return [f.source for f in frames]


def for_readers(e: EntryDoc) -> dict[str, Any]:
    return {k: v for k, v in e.items() if k != "body"}


def fresh(history_limit: int = 100) -> BlogReplica:
    """A blog whose creation (seq 1) is its only event."""
    return BlogReplica(loaded([], 1, [blog_event(1, blog())]), history_limit)


# -- building from a store read -----------------------------------------------------------------


def test_built_from_loaded() -> None:
    e1, e2 = entry(1), entry(2)
    history = [blog_event(1, blog()), create(2, e1), create(3, e2)]
    r = BlogReplica(loaded([e1, e2], 3, history), history_limit=10)
    assert r.blog == blog()
    assert r.entries == {e1["id"]: e1, e2["id"]: e2}
    assert (r.head, r.epoch, r.oldest) == (3, EPOCH, 1)
    assert [(f.seq, f.source) for f in r.recent] == list(enumerate(history, start=1))


def test_history_beyond_head_is_ignored() -> None:
    # A frame newer than the state read (should not happen in one read) must not be replayed.
    e1 = entry(1)
    history = [blog_event(1, blog()), create(2, e1)]
    r = BlogReplica(loaded([], 1, history), history_limit=10)
    assert [f.seq for f in r.recent] == [1]
    assert r.catch_up(Position(0, EPOCH)) == list(r.recent)


def test_loaded_history_longer_than_limit_keeps_newest() -> None:
    history = [blog_event(1, blog())] + [create(i, entry(i)) for i in range(2, 9)]
    r = BlogReplica(loaded([entry(i) for i in range(2, 9)], 8, history), history_limit=3)
    assert [f.seq for f in r.recent] == [6, 7, 8]
    assert r.oldest == 6


def test_no_history_means_oldest_is_after_head() -> None:
    r = BlogReplica(loaded([], 7, []), history_limit=10)
    assert r.oldest == 8
    assert r.catch_up(Position(7, EPOCH)) == []
    [snap] = r.catch_up(Position(6, EPOCH))
    assert orjson.loads(snap.text)["reset"] is True


# -- applying events ----------------------------------------------------------------------------


def test_apply_create_update_delete_blog() -> None:
    r = fresh()
    e = entry(1)
    frame = r.apply(create(2, e))
    assert (frame.seq, frame.source) == (2, create(2, e))
    assert r.entries == {e["id"]: e}
    assert r.head == 2

    changed = EntryDoc(**{**e, "body": "edited", "html": "<p>edited</p>", "pinned": True})
    r.apply(update(3, changed))
    assert r.entries[e["id"]] == changed

    r.apply(delete(4, e["id"]))
    assert r.entries == {}

    renamed = blog("Renamed")
    r.apply(blog_event(5, renamed))
    assert r.blog == renamed
    assert r.head == 5
    assert [f.seq for f in r.recent] == [1, 2, 3, 4, 5]


def test_delete_of_unknown_entry_still_advances() -> None:
    r = fresh()
    r.apply(delete(2, "nosuchentry"))
    assert r.head == 2
    assert r.entries == {}


@pytest.mark.parametrize("seq", [1, 3, 10])
def test_apply_refuses_a_non_successor(seq: int) -> None:
    r = fresh()
    before = r.snapshot(reset=False)
    with pytest.raises(ValueError):
        r.apply(create(seq, entry(1)))
    assert r.head == 1
    assert r.entries == {}
    assert [f.seq for f in r.recent] == [1]
    assert r.snapshot(reset=False) is before


def test_apply_refuses_another_epoch() -> None:
    r = fresh()
    with pytest.raises(ValueError):
        r.apply(create(2, entry(1), epoch="otherepoch"))
    assert r.head == 1
    assert r.entries == {}


def test_apply_refuses_a_non_event() -> None:
    r = fresh()
    with pytest.raises(ValueError):
        r.apply('{"type":"snapshot","seq":2}')
    assert r.head == 1


@pytest.mark.parametrize(
    "text",
    [
        '{"type":"event","seq":2}',
        '{"type":"event","seq":2,"epoch":"ep0000001"}',
        '{"type":"event","seq":2,"op":"delete","entry":{"id":"a"}}',
    ],
)
def test_malformed_event_is_a_value_error(text: str) -> None:
    # Hub._feed drops a malformed frame by catching ValueError from classify/apply; any other
    # exception escapes into the broker's listener callback.
    r = fresh()
    with pytest.raises(ValueError):
        verdict, ev = r.classify(text)
        if verdict is Live.APPLY:  # what the hub does next
            r.apply(text, ev)
    assert r.head == 1
    assert r.entries == {}


def test_classify() -> None:
    r = fresh()
    cases = [
        (create(2, entry(1)), Live.APPLY, 2), (blog_event(1, blog()), Live.DUPLICATE, 1),
        (create(4, entry(1)), Live.GAP, 4), (create(2, entry(1), epoch="x"), Live.FOREIGN, 2),
    ]  # fmt: skip
    for text, verdict, seq in cases:
        got, ev = r.classify(text)
        assert (got, ev["seq"]) == (verdict, seq)
        assert ev == orjson.loads(text)  # parsed once, handed on to apply


# -- ordering -----------------------------------------------------------------------------------


def test_ordering_pinned_first_then_newest_first() -> None:
    r = fresh()
    es = [entry(1), entry(2, pinned=True), entry(3), entry(4, pinned=True), entry(5)]
    for seq, e in enumerate(es, start=2):
        r.apply(create(seq, e))
    ids = [e["id"] for e in r.ordered_entries()]
    assert ids == ["e00004", "e00002", "e00005", "e00003", "e00001"]


def test_ordering_ties_broken_by_id_newest_first() -> None:
    r = fresh()
    a = EntryDoc(**{**entry(1), "id": "aaaa"})
    b = EntryDoc(**{**entry(1), "id": "bbbb"})
    r.apply(create(2, a))
    r.apply(create(3, b))
    assert [e["id"] for e in r.ordered_entries()] == ["bbbb", "aaaa"]


def test_pin_moves_entry_to_the_top() -> None:
    r = fresh()
    for seq, n in enumerate([1, 2, 3], start=2):
        r.apply(create(seq, entry(n)))
    r.apply(update(5, entry(1, pinned=True)))
    assert [e["id"] for e in r.ordered_entries()] == ["e00001", "e00003", "e00002"]


# -- snapshots ----------------------------------------------------------------------------------


def test_snapshot_content() -> None:
    r = fresh()
    r.apply(create(2, entry(1)))
    r.apply(create(3, entry(2, pinned=True)))
    snap = r.snapshot(reset=False)
    doc = orjson.loads(snap.text)
    assert snap.seq == 3
    assert doc == {
        "type": "snapshot", "seq": 3, "epoch": EPOCH, "blog": blog(),
        "entries": [for_readers(entry(2, pinned=True)), for_readers(entry(1))], "reset": False,
    }  # fmt: skip
    assert orjson.loads(r.snapshot(reset=True).text)["reset"] is True


def test_snapshot_is_cached_per_reset_flag() -> None:
    r = fresh()
    plain, reset = r.snapshot(reset=False), r.snapshot(reset=True)
    assert r.snapshot(reset=False) is plain
    assert r.snapshot(reset=True) is reset
    assert plain is not reset


def test_snapshot_invalidated_on_apply() -> None:
    r = fresh()
    old = r.snapshot(reset=False)
    old_reset = r.snapshot(reset=True)
    r.apply(create(2, entry(1)))
    new = r.snapshot(reset=False)
    assert new is not old
    assert new.seq == 2
    assert orjson.loads(new.text)["entries"] == [for_readers(entry(1))]
    new_reset = r.snapshot(reset=True)
    assert new_reset is not old_reset
    assert orjson.loads(new_reset.text)["seq"] == 2


# -- catch-up -----------------------------------------------------------------------------------


def build(n: int, history_limit: int = 100) -> tuple[BlogReplica, list[str]]:
    """A replica that applied events 2..n on top of the blog's creation; all frames."""
    r = fresh(history_limit)
    frames = [blog_event(1, blog())]
    for seq in range(2, n + 1):
        frames.append(create(seq, entry(seq)))
        r.apply(frames[-1])
    return r, frames


def test_catch_up_returns_exactly_the_events_after_since() -> None:
    r, frames = build(8)
    for since in range(0, 9):
        assert texts(r.catch_up(Position(since, EPOCH))) == frames[since:]


def test_catch_up_seqs_are_consecutive() -> None:
    r, _ = build(8)
    assert [f.seq for f in r.catch_up(Position(3, EPOCH))] == [4, 5, 6, 7, 8]


def test_catch_up_without_since_is_a_snapshot() -> None:
    r, _ = build(4)
    assert r.catch_up(Position()) == [r.snapshot(reset=False)]


def test_catch_up_other_epoch_or_future_is_a_reset_snapshot() -> None:
    r, _ = build(4)
    assert r.catch_up(Position(2, "otherepoch")) == [r.snapshot(reset=True)]
    assert r.catch_up(Position(5, EPOCH)) == [r.snapshot(reset=True)]


def test_history_bounded_by_limit() -> None:
    r, frames = build(10, history_limit=3)
    assert [f.seq for f in r.recent] == [8, 9, 10]
    assert r.oldest == 8
    assert texts(r.catch_up(Position(7, EPOCH))) == frames[7:]
    assert r.catch_up(Position(6, EPOCH)) == [r.snapshot(reset=True)]
    assert r.catch_up(Position(10, EPOCH)) == []


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_catch_up_after_applying_from_any_snapshot_point(data: st.DataObject) -> None:
    n = data.draw(st.integers(min_value=1, max_value=40), label="n")
    k = data.draw(st.integers(min_value=1, max_value=n), label="k")  # store read at seq k
    limit = data.draw(st.integers(min_value=1, max_value=15), label="history_limit")
    frames = [blog_event(1, blog())] + [create(s, entry(s)) for s in range(2, n + 1)]
    entries_at_k = [entry(s) for s in range(2, k + 1)]
    # The store keeps the last `limit` frames up to k, as a consistent read returns them.
    r = BlogReplica(loaded(entries_at_k, k, frames[max(0, k - limit) : k]), limit)
    for text in frames[k:]:
        r.apply(text)
    assert r.head == n
    assert sorted(r.entries) == sorted(e["id"] for e in (entry(s) for s in range(2, n + 1)))
    j = data.draw(st.integers(min_value=0, max_value=n), label="since")
    got = r.catch_up(Position(j, EPOCH))
    if j >= r.oldest - 1:
        assert texts(got) == frames[j:]
    else:
        assert got == [r.snapshot(reset=True)]
    assert r.oldest == max(1, n - limit + 1)


def test_frame_at_returns_held_frames_only() -> None:
    r = fresh(history_limit=3)
    texts = [create(seq, entry(seq)) for seq in range(2, 7)]
    for text in texts:
        r.apply(text)
    # Seqs 4..6 are held (history limit 3); older and future ones are not.
    assert [r.frame_at(s).source for s in (4, 5, 6)] == texts[2:]  # type: ignore[union-attr]
    assert r.frame_at(3) is None and r.frame_at(7) is None and r.frame_at(0) is None


# -- what readers get: entries without their Markdown source --------------------------------


def test_readers_get_entries_without_the_markdown_source_and_the_api_keeps_it() -> None:
    e = entry(1, body="**Lead** runner passes the *bridge*")
    r = fresh()
    created = r.apply(create(2, e))
    edited = {**e, "body": "edited", "html": "<p>edited</p>"}
    updated = r.apply(update(3, edited))  # type: ignore[arg-type]
    gone = r.apply(delete(4, e["id"]))
    renamed = r.apply(blog_event(5, blog("Marathon: the finish")))
    for frame, stored in ((created, create(2, e)), (updated, update(3, edited))):  # type: ignore[arg-type]
        doc, want = orjson.loads(frame.text), orjson.loads(stored)
        want["entry"].pop("body")
        assert doc == want
        assert '"body"' not in frame.text and frame.source == stored
    # Deletes and blog changes carry no source: they go out exactly as stored.
    assert gone.text == gone.source == delete(4, e["id"])
    assert renamed.text == renamed.source
    r.apply(create(6, e))
    assert r.entries[e["id"]] == e  # the replica (GET /api/blogs/…) keeps the source


def test_history_from_the_store_is_held_as_readers_get_it() -> None:
    e1, e2 = entry(1), entry(2)
    history = [blog_event(1, blog()), create(2, e1), update(3, e2)]
    r = BlogReplica(loaded([e1, e2], 3, history), history_limit=10)
    frames = r.catch_up(Position(since=0, epoch=EPOCH))
    assert [f.seq for f in frames] == [1, 2, 3]
    assert [orjson.loads(f.text).get("entry") for f in frames] == [
        None, for_readers(e1), for_readers(e2),
    ]  # fmt: skip
    snapshot = orjson.loads(r.catch_up(Position())[0].text)
    assert snapshot["entries"] == [for_readers(e2), for_readers(e1)]


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 12), st.integers(2, 40), st.integers(0, 45))
def test_events_after_is_the_held_frames_past_since(limit: int, events: int, since: int) -> None:
    r = fresh(history_limit=limit)
    for seq in range(2, events + 1):
        r.apply(create(seq, entry(seq)))
    held = list(r.recent)
    assert [f.seq for f in held] == list(range(max(1, events - limit + 1), events + 1))
    assert r.events_after(since) == [f for f in held if f.seq > since]
