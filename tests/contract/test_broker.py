"""The `Broker` contract (pushhub/brokers/base.py), one suite run against every implementation:
`EmbeddedBroker` on a temporary SQLite file and `RedisBroker` on a real redis-server.

Changes are built the way `pushhub/service.py` builds them. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis

from pushhub import model
from pushhub.brokers.base import Broker, Change, Committed
from pushhub.brokers.embedded import EmbeddedBroker
from pushhub.brokers.redis import RedisBroker
from pushhub.errors import BlogMissing, Unavailable, WriteConflict
from pushhub.ids import new_epoch
from pushhub.model import EntryDoc
from pushhub.protocol import event_body, event_frame, parse_event
from tests.support.servers import RedisProcess

HISTORY_LIMIT = 5
TIMEOUT = 1.0
PREFIX = "ph"
WAIT = 10.0  # upper bound for anything asynchronous to show up


# -- listener and waiting -----------------------------------------------------------------------


@dataclass
class Recorder:
    """A BrokerListener that keeps every call."""

    messages: list[tuple[str, str]] = field(default_factory=list)
    resyncs: int = 0

    def on_message(self, blog: str, frame: str) -> None:
        self.messages.append((blog, frame))

    def on_resync(self) -> None:
        self.resyncs += 1

    def frames(self, blog: str) -> list[str]:
        return [frame for b, frame in self.messages if b == blog]

    def seqs(self, blog: str) -> list[int]:
        return [parse_event(frame)["seq"] for frame in self.frames(blog)]


async def eventually(check: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not check():
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"not within {timeout}s: {what}") from None


# -- building changes the way the service does --------------------------------------------------


def dumps(doc: Any) -> str:
    return orjson.dumps(doc).decode()


def key() -> str:
    return secrets.token_hex(16)


def blog_change(
    slug: str, current: str | None, fields: dict[str, Any] | None = None, *,
    idem: str | None = None, epoch: str | None = None,
) -> Change:  # fmt: skip
    doc = None if current is None else orjson.loads(current)
    blog = model.put_blog(slug, doc, fields if fields is not None else {"title": f"Blog {slug}"})
    blog_json = dumps(blog)
    return Change(
        blog=slug, kind="meta", entry_id="", expect=current, new=blog_json,
        event_body=event_body("blog", blog_json),
        result=dumps({"blog": blog, "created": current is None}),
        idempotency_key=idem or key(), new_epoch=epoch or new_epoch(),
    )  # fmt: skip


def create_change(
    slug: str, body: str = "Hello *world*", *, idem: str | None = None, entry_id: str | None = None
) -> tuple[Change, EntryDoc]:
    entry = model.new_entry({"body": body}, editor="Ana Ruiz", entry_id=entry_id)
    entry_json = dumps(entry)
    change = Change(
        blog=slug, kind="entry", entry_id=entry["id"], expect=None, new=entry_json,
        event_body=event_body("create", entry_json), result=dumps({"entry": entry}),
        idempotency_key=idem or key(), new_epoch=new_epoch(),
    )  # fmt: skip
    return change, entry


def update_change(
    slug: str, current: str, fields: dict[str, Any], *, idem: str | None = None
) -> Change:
    entry = model.patch_entry(orjson.loads(current), fields)
    new_json = dumps(entry)
    return Change(
        blog=slug, kind="entry", entry_id=entry["id"], expect=current, new=new_json,
        event_body=event_body("update", new_json), result=dumps({"entry": entry}),
        idempotency_key=idem or key(), new_epoch=new_epoch(),
    )  # fmt: skip


def delete_change(slug: str, current: str, *, idem: str | None = None) -> Change:
    entry_id = orjson.loads(current)["id"]
    return Change(
        blog=slug, kind="entry", entry_id=entry_id, expect=current, new=None,
        event_body=event_body("delete", dumps({"id": entry_id})),
        result=dumps({"entry": orjson.loads(current)}),
        idempotency_key=idem or key(), new_epoch=new_epoch(),
    )  # fmt: skip


# -- fixtures -----------------------------------------------------------------------------------


def make_broker(
    kind: str, tmp: Path, redis_proc: RedisProcess | None, *, history_limit: int = HISTORY_LIMIT,
    idempotency_ttl: int = 3600, name: str = "store",
) -> Broker:  # fmt: skip
    if kind == "redis":
        assert redis_proc is not None
        return RedisBroker(
            redis_proc.url, prefix=f"{PREFIX}-{name}" if name != "store" else PREFIX,
            history_limit=history_limit, idempotency_ttl=idempotency_ttl, timeout=TIMEOUT,
        )  # fmt: skip
    return EmbeddedBroker(
        tmp / name / "pushhub.sqlite3", history_limit=history_limit,
        idempotency_ttl=idempotency_ttl,
    )  # fmt: skip


@contextlib.asynccontextmanager
async def started(broker: Broker) -> AsyncIterator[Recorder]:
    recorder = Recorder()
    await broker.start(recorder)
    try:
        yield recorder
    finally:
        await broker.close()


@dataclass
class Harness:
    kind: str
    broker: Broker
    rec: Recorder
    tmp: Path
    redis: RedisProcess | None

    def another(self, **kwargs: Any) -> Broker:
        """A second broker of the same kind, on its own store (different file or prefix)."""
        return make_broker(self.kind, self.tmp, self.redis, **kwargs)

    async def blog(self, slug: str, epoch: str | None = None) -> Committed:
        return await self.broker.commit(blog_change(slug, None, epoch=epoch))

    async def entry(self, slug: str, body: str = "text") -> tuple[Committed, EntryDoc]:
        change, entry = create_change(slug, body)
        return await self.broker.commit(change), entry

    async def settle(self, slug: str) -> str:
        """Commit a marker to `slug` and wait for its frame: since frames arrive in seq order,
        everything published to `slug` before it has arrived too. Returns the marker frame."""
        committed, _ = await self.entry(slug, "marker")
        await eventually(
            lambda: committed.seq in self.rec.seqs(slug), f"frame {committed.seq} of {slug}"
        )
        return self.rec.frames(slug)[-1]


@pytest.fixture
def redis_or_none(store_kind: str, request: pytest.FixtureRequest) -> RedisProcess | None:
    if store_kind == "redis":
        proc: RedisProcess = request.getfixturevalue("redis_proc")
        return proc
    return None


@pytest.fixture
async def h(
    store_kind: str, tmp_path: Path, redis_or_none: RedisProcess | None
) -> AsyncIterator[Harness]:
    broker = make_broker(store_kind, tmp_path, redis_or_none)
    rec = Recorder()
    await broker.start(rec)
    harness = Harness(store_kind, broker, rec, tmp_path, redis_or_none)
    try:
        yield harness
    finally:
        await harness.broker.close()  # a test may have replaced it


@pytest.fixture
async def rh(tmp_path: Path, redis_proc: RedisProcess) -> AsyncIterator[Harness]:
    """Redis only."""
    broker = make_broker("redis", tmp_path, redis_proc)
    async with started(broker) as rec:
        yield Harness("redis", broker, rec, tmp_path, redis_proc)


async def stored_history_len(hh: Harness, slug: str) -> int:
    """How many event frames the store keeps for the blog (not just what `load` returns)."""
    if hh.kind == "redis":
        assert hh.redis is not None
        client = aioredis.Redis.from_url(hh.redis.url, decode_responses=True)
        try:
            return int(await client.llen(f"{PREFIX}:{{{slug}}}:history"))
        finally:
            await client.aclose()
    assert isinstance(hh.broker, EmbeddedBroker)
    with contextlib.closing(sqlite3.connect(hh.broker.path)) as db:
        (count,) = db.execute("SELECT COUNT(*) FROM events WHERE blog=?", (slug,)).fetchone()
    return int(count)


# -- creating blogs -----------------------------------------------------------------------------


async def test_first_meta_commit_creates_blog_at_seq_1(h: Harness) -> None:
    change = blog_change("marathon", None, {"title": "City Marathon live"}, epoch="epochone1")
    committed = await h.broker.commit(change)
    assert committed == Committed(1, "epochone1", change.result, replayed=False)
    assert await h.broker.head("marathon") == (1, "epochone1")
    assert await h.broker.read_meta("marathon") == change.new
    loaded = await h.broker.load("marathon")
    assert loaded is not None
    assert (loaded.blog_json, loaded.entries_json, loaded.seq, loaded.epoch) == (
        change.new,
        [],
        1,
        "epochone1",
    )
    assert loaded.history == [event_frame(1, "epochone1", change.event_body)]


async def test_unknown_blog_reads_as_none(h: Harness) -> None:
    assert await h.broker.head("nope") is None
    assert await h.broker.load("nope") is None
    assert await h.broker.read_meta("nope") is None
    assert await h.broker.read_entry("nope", "abc") is None
    assert await h.broker.list_blogs() == []


async def test_entry_commit_on_missing_blog(h: Harness) -> None:
    change, entry = create_change("ghost")
    with pytest.raises(BlogMissing):
        await h.broker.commit(change)
    assert await h.broker.head("ghost") is None
    assert await h.broker.read_entry("ghost", entry["id"]) is None
    assert await h.broker.list_blogs() == []


async def test_update_and_delete_on_missing_blog(h: Harness) -> None:
    _, entry = create_change("ghost")
    raw = dumps(entry)
    with pytest.raises(BlogMissing):
        await h.broker.commit(update_change("ghost", raw, {"body": "x"}))
    with pytest.raises(BlogMissing):
        await h.broker.commit(delete_change("ghost", raw))
    assert await h.broker.head("ghost") is None


async def test_later_meta_commits_keep_the_epoch(h: Harness) -> None:
    await h.blog("marathon", epoch="firstepoch")
    current = await h.broker.read_meta("marathon")
    change = blog_change("marathon", current, {"status": "ended"}, epoch="secondepoch")
    committed = await h.broker.commit(change)
    assert (committed.seq, committed.epoch) == (2, "firstepoch")
    assert await h.broker.head("marathon") == (2, "firstepoch")
    assert await h.broker.read_meta("marathon") == change.new
    assert orjson.loads(change.new or "")["status"] == "ended"


# -- entries ------------------------------------------------------------------------------------


async def test_create_update_delete(h: Harness) -> None:
    created = await h.blog("marathon", epoch="e1")
    assert created.seq == 1
    change, entry = create_change("marathon", "first *post*")
    committed = await h.broker.commit(change)
    assert committed == Committed(2, "e1", change.result, replayed=False)
    assert await h.broker.read_entry("marathon", entry["id"]) == change.new

    assert change.new is not None
    upd = update_change("marathon", change.new, {"body": "edited", "pinned": True})
    assert (await h.broker.commit(upd)).seq == 3
    assert await h.broker.read_entry("marathon", entry["id"]) == upd.new

    assert upd.new is not None
    dele = delete_change("marathon", upd.new)
    assert (await h.broker.commit(dele)).seq == 4
    assert await h.broker.read_entry("marathon", entry["id"]) is None
    assert await h.broker.head("marathon") == (4, "e1")

    loaded = await h.broker.load("marathon")
    assert loaded is not None
    assert loaded.entries_json == []
    bodies = [change.event_body, upd.event_body, dele.event_body]
    assert loaded.history[1:] == [
        event_frame(s, "e1", b) for s, b in zip((2, 3, 4), bodies, strict=True)
    ]
    assert orjson.loads(loaded.history[-1])["entry"] == {"id": entry["id"]}


async def test_load_returns_state_and_history_oldest_first(h: Harness) -> None:
    await h.blog("marathon", epoch="e1")
    bodies = []
    entries = {}
    for i in range(3):
        change, entry = create_change("marathon", f"entry {i}")
        await h.broker.commit(change)
        bodies.append(change.event_body)
        entries[entry["id"]] = change.new
    meta = await h.broker.read_meta("marathon")
    loaded = await h.broker.load("marathon")
    assert loaded is not None
    assert loaded.blog_json == meta
    assert sorted(loaded.entries_json) == sorted(entries.values())
    assert (loaded.seq, loaded.epoch) == (4, "e1")
    assert [parse_event(f)["seq"] for f in loaded.history] == [1, 2, 3, 4]
    assert loaded.history[1:] == [event_frame(i + 2, "e1", b) for i, b in enumerate(bodies)]


async def test_history_bounded_by_limit(h: Harness) -> None:
    await h.blog("marathon", epoch="e1")
    changes = []
    for i in range(11):
        change, _ = create_change("marathon", f"entry {i}")
        await h.broker.commit(change)
        changes.append(change)
    loaded = await h.broker.load("marathon")
    assert loaded is not None
    assert loaded.seq == 12
    assert len(loaded.entries_json) == 11
    assert [parse_event(f)["seq"] for f in loaded.history] == [8, 9, 10, 11, 12]
    assert loaded.history == [
        event_frame(seq, "e1", c.event_body)
        for seq, c in zip(range(8, 13), changes[-5:], strict=True)
    ]
    assert await stored_history_len(h, "marathon") == HISTORY_LIMIT


async def test_head_and_list_blogs(h: Harness) -> None:
    for slug in ("charlie", "alpha", "bravo"):
        await h.blog(slug, epoch=f"ep{slug}")
    await h.entry("bravo")
    assert await h.broker.head("alpha") == (1, "epalpha")
    assert await h.broker.head("bravo") == (2, "epbravo")
    metas = await h.broker.list_blogs()
    assert [orjson.loads(m)["slug"] for m in metas] == ["alpha", "bravo", "charlie"]
    assert metas == [await h.broker.read_meta(s) for s in ("alpha", "bravo", "charlie")]

    current = await h.broker.read_meta("alpha")
    change = blog_change("alpha", current, {"title": "Renamed"})
    await h.broker.commit(change)
    assert (await h.broker.list_blogs())[0] == change.new


async def test_blogs_have_independent_seqs(h: Harness) -> None:
    await h.blog("a")
    await h.blog("b")
    for _ in range(3):
        await h.entry("a")
    c, _ = await h.entry("b")
    assert c.seq == 2
    head_a = await h.broker.head("a")
    assert head_a is not None
    assert head_a[0] == 4


async def test_another_broker_on_the_same_store_sees_everything(h: Harness) -> None:
    # What a restarted node (or a second node) finds: the same state, seq, epoch and history.
    await h.blog("m", epoch="e1")
    for i in range(3):
        await h.entry("m", f"entry {i}")
    before = await h.broker.load("m")
    assert before is not None
    await h.broker.close()  # as a restarted node would: a new broker on the same store
    h.broker = make_broker(h.kind, h.tmp, h.redis)
    await h.broker.start(h.rec)
    after = await h.broker.load("m")
    assert after is not None
    assert (after.blog_json, sorted(after.entries_json), after.seq, after.epoch, after.history) == (
        before.blog_json,
        sorted(before.entries_json),
        before.seq,
        before.epoch,
        before.history,
    )
    committed, _ = await h.entry("m")
    assert (committed.seq, committed.epoch) == (5, "e1")


async def test_ping(h: Harness) -> None:
    await h.broker.ping()


# -- compare-and-set ----------------------------------------------------------------------------


async def _conflicting_change(h: Harness, case: str) -> Change:
    """Set up blog `m` with one entry and return a change whose `expect` is wrong."""
    meta = await h.broker.read_meta("m")
    change, entry = create_change("m", "original")
    await h.broker.commit(change)
    raw = change.new
    assert raw is not None and meta is not None
    stale_entry = dumps({**entry, "body": "something else"})
    stale_meta = dumps({**orjson.loads(meta), "title": "Old title"})
    if case == "create-existing-blog":
        return blog_change("m", None)
    if case == "stale-meta":
        return blog_change("m", stale_meta, {"title": "New"})
    if case == "create-existing-entry":
        return create_change("m", "again", entry_id=entry["id"])[0]
    if case == "stale-update":
        return update_change("m", stale_entry, {"body": "mine"})
    if case == "stale-delete":
        return delete_change("m", stale_entry)
    if case == "update-missing-entry":
        _, other = create_change("m")
        return update_change("m", dumps(other), {"body": "x"})
    raise AssertionError(case)


CONFLICTS = [
    "create-existing-blog", "stale-meta", "create-existing-entry", "stale-update",
    "stale-delete", "update-missing-entry",
]  # fmt: skip


@pytest.mark.parametrize("case", CONFLICTS)
async def test_wrong_expect_is_a_conflict_and_changes_nothing(h: Harness, case: str) -> None:
    await h.blog("m", epoch="e1")
    await h.broker.subscribe("m")
    change = await _conflicting_change(h, case)
    before = await h.broker.load("m")
    assert before is not None
    frames_before = len(h.rec.frames("m"))

    with pytest.raises(WriteConflict):
        await h.broker.commit(change)

    assert await h.broker.load("m") == before
    assert await h.broker.head("m") == (before.seq, "e1")
    marker = await h.settle("m")
    # The only frame after the conflict is the marker, right after the old head.
    assert h.rec.frames("m")[frames_before:] == [marker]
    assert parse_event(marker)["seq"] == before.seq + 1


async def test_conflict_does_not_burn_the_idempotency_key(h: Harness) -> None:
    await h.blog("m")
    change, entry = create_change("m")
    await h.broker.commit(change)
    assert change.new is not None
    stale = update_change("m", dumps({**entry, "body": "old"}), {"body": "x"}, idem="retry-key")
    with pytest.raises(WriteConflict):
        await h.broker.commit(stale)
    fresh = update_change("m", change.new, {"body": "x"}, idem="retry-key")
    committed = await h.broker.commit(fresh)
    assert (committed.seq, committed.replayed) == (3, False)
    assert await h.broker.read_entry("m", entry["id"]) == fresh.new


# -- idempotency --------------------------------------------------------------------------------


async def test_idempotency_key_replays_first_answer(h: Harness) -> None:
    await h.blog("m", epoch="e1")
    await h.broker.subscribe("m")
    first, entry = create_change("m", "first", idem="k-1")
    committed = await h.broker.commit(first)
    assert committed == Committed(2, "e1", first.result, replayed=False)
    await eventually(lambda: 2 in h.rec.seqs("m"), "frame 2")
    before = await h.broker.load("m")

    again = await h.broker.commit(first)
    assert again == Committed(2, "e1", first.result, replayed=True)

    # A retry whose content differs (another id, body) still gets the first answer only.
    other, other_entry = create_change("m", "second", idem="k-1")
    replay = await h.broker.commit(other)
    assert replay == Committed(2, "e1", first.result, replayed=True)
    assert await h.broker.read_entry("m", other_entry["id"]) is None
    assert await h.broker.load("m") == before
    assert await h.broker.read_entry("m", entry["id"]) == first.new

    marker = await h.settle("m")
    assert h.rec.seqs("m") == [2, 3]
    assert h.rec.frames("m")[-1] == marker


async def test_idempotent_replay_wins_over_a_conflict(h: Harness) -> None:
    # The retry of a write that succeeded would now conflict (expect is stale): it is a replay.
    await h.blog("m")
    change, _ = create_change("m", idem="k-2")
    first = await h.broker.commit(change)
    again = await h.broker.commit(change)
    assert again.replayed and again.seq == first.seq


async def test_idempotency_key_of_a_blog_write(h: Harness) -> None:
    change = blog_change("m", None, idem="create-m", epoch="e1")
    first = await h.broker.commit(change)
    again = await h.broker.commit(change)
    assert again == Committed(first.seq, "e1", change.result, replayed=True)
    assert orjson.loads(again.result)["created"] is True
    assert await h.broker.head("m") == (1, "e1")


async def test_idempotency_keys_are_per_blog(h: Harness) -> None:
    await h.blog("a")
    await h.blog("b")
    ca, _ = create_change("a", idem="same")
    cb, eb = create_change("b", idem="same")
    assert (await h.broker.commit(ca)).replayed is False
    got = await h.broker.commit(cb)
    assert (got.seq, got.replayed, got.result) == (2, False, cb.result)
    assert await h.broker.read_entry("b", eb["id"]) == cb.new


async def test_idempotency_key_expires(h: Harness) -> None:
    broker = h.another(idempotency_ttl=1, name="shortttl")
    async with started(broker):
        await broker.commit(blog_change("m", None))
        change, _ = create_change("m", idem="k")
        assert (await broker.commit(change)).seq == 2
        assert (await broker.commit(change)).replayed is True
        await asyncio.sleep(1.3)
        other, _ = create_change("m", idem="k")
        late = await broker.commit(other)
        assert (late.seq, late.replayed) == (3, False)


# -- subscriptions ------------------------------------------------------------------------------


async def test_subscribed_frames_arrive_once_in_order_and_match_history(h: Harness) -> None:
    await h.broker.subscribe("m")
    bodies = []
    first = blog_change("m", None, epoch="e1")
    await h.broker.commit(first)
    bodies.append(first.event_body)
    raws = []
    for i in range(6):
        change, _ = create_change("m", f"entry {i}")
        await h.broker.commit(change)
        bodies.append(change.event_body)
        raws.append(change.new)
    assert raws[0] is not None
    upd = update_change("m", raws[0], {"pinned": True})
    await h.broker.commit(upd)
    bodies.append(upd.event_body)
    await eventually(lambda: len(h.rec.frames("m")) >= len(bodies), "all frames")
    marker = await h.settle("m")

    expected = [event_frame(seq, "e1", b) for seq, b in enumerate(bodies, start=1)]
    assert h.rec.frames("m") == [*expected, marker]  # exactly once each, in seq order
    loaded = await h.broker.load("m")
    assert loaded is not None
    assert loaded.history == h.rec.frames("m")[-HISTORY_LIMIT:]  # byte for byte
    assert {b for b, _ in h.rec.messages} == {"m"}


async def test_frames_of_unsubscribed_blogs_do_not_arrive(h: Harness) -> None:
    await h.blog("other")
    await h.blog("watched")
    await h.broker.subscribe("watched")
    for _ in range(3):
        await h.entry("other")
    await h.settle("watched")
    assert h.rec.frames("other") == []


async def test_unsubscribe_stops_delivery(h: Harness) -> None:
    await h.blog("a")
    await h.blog("b")
    await h.broker.subscribe("a")
    await h.broker.subscribe("b")
    await h.settle("a")
    delivered_a = h.rec.frames("a")
    assert len(delivered_a) == 1

    await h.broker.unsubscribe("a")
    for _ in range(3):
        await h.entry("a")
    await h.settle("b")  # frames of b published after those of a have arrived
    assert h.rec.frames("a") == delivered_a

    await h.broker.subscribe("a")  # and a new subscription delivers again
    await h.settle("a")
    assert h.rec.seqs("a") == [2, 6]


async def test_subscribe_twice_delivers_once(h: Harness) -> None:
    await h.blog("m")
    await h.broker.subscribe("m")
    await h.broker.subscribe("m")
    await h.settle("m")
    await h.settle("m")
    assert h.rec.seqs("m") == [2, 3]


# -- concurrency --------------------------------------------------------------------------------

N_CONCURRENT = 60


async def test_concurrent_commits_get_gapless_seqs(h: Harness) -> None:
    broker = h.another(history_limit=1000, name="bighistory")
    async with started(broker) as rec:
        await broker.commit(blog_change("m", None, epoch="e1"))
        await broker.subscribe("m")
        changes = [create_change("m", f"entry {i}")[0] for i in range(N_CONCURRENT)]
        async with asyncio.timeout(WAIT):
            results = await asyncio.gather(*(broker.commit(c) for c in changes))
        seqs = [r.seq for r in results]
        assert sorted(seqs) == list(range(2, N_CONCURRENT + 2))
        assert not any(r.replayed for r in results)
        assert await broker.head("m") == (N_CONCURRENT + 1, "e1")

        loaded = await broker.load("m")
        assert loaded is not None
        assert len(loaded.entries_json) == N_CONCURRENT
        assert [parse_event(f)["seq"] for f in loaded.history] == list(range(1, N_CONCURRENT + 2))
        # Each change's frame sits at the seq its commit was told.
        for change, committed in zip(changes, results, strict=True):
            frame = event_frame(committed.seq, "e1", change.event_body)
            assert loaded.history[committed.seq - 1] == frame

        await eventually(
            lambda: len(rec.frames("m")) >= N_CONCURRENT, f"{N_CONCURRENT} live frames"
        )
        await asyncio.sleep(0.1)  # a duplicate would show up now
        assert rec.seqs("m") == list(range(2, N_CONCURRENT + 2))
        assert rec.frames("m") == loaded.history[1:]


async def test_concurrent_commits_on_one_small_history(h: Harness) -> None:
    await h.blog("m", epoch="e1")
    changes = [create_change("m", f"entry {i}")[0] for i in range(N_CONCURRENT)]
    async with asyncio.timeout(WAIT):
        results = await asyncio.gather(*(h.broker.commit(c) for c in changes))
    assert sorted(r.seq for r in results) == list(range(2, N_CONCURRENT + 2))
    loaded = await h.broker.load("m")
    assert loaded is not None
    last = N_CONCURRENT + 1
    assert [parse_event(f)["seq"] for f in loaded.history] == list(range(last - 4, last + 1))


async def test_concurrent_edits_of_one_entry_exactly_one_wins(h: Harness) -> None:
    await h.blog("m")
    await h.broker.subscribe("m")
    change, entry = create_change("m", "base")
    await h.broker.commit(change)
    assert change.new is not None
    edits = [update_change("m", change.new, {"body": f"edit {i}"}) for i in range(20)]
    async with asyncio.timeout(WAIT):
        outcomes = await asyncio.gather(
            *(h.broker.commit(e) for e in edits), return_exceptions=True
        )
    wins = [(e, o) for e, o in zip(edits, outcomes, strict=True) if isinstance(o, Committed)]
    assert len(wins) == 1, outcomes
    assert all(isinstance(o, WriteConflict) for o in outcomes if not isinstance(o, Committed))
    winner, committed = wins[0]
    assert committed.seq == 3
    assert await h.broker.read_entry("m", entry["id"]) == winner.new
    await h.settle("m")
    assert h.rec.seqs("m") == [2, 3, 4]


async def test_concurrent_retries_with_one_key_write_once(h: Harness) -> None:
    await h.blog("m")
    change, _ = create_change("m", idem="one-key")
    async with asyncio.timeout(WAIT):
        results = await asyncio.gather(*(h.broker.commit(change) for _ in range(20)))
    assert sum(not r.replayed for r in results) == 1
    assert {r.seq for r in results} == {2}
    head = await h.broker.head("m")
    assert head is not None and head[0] == 2


async def test_concurrent_blog_creation_one_wins(h: Harness) -> None:
    changes = [blog_change("m", None, {"title": f"T{i}"}, epoch=f"ep{i}") for i in range(10)]
    async with asyncio.timeout(WAIT):
        outcomes = await asyncio.gather(
            *(h.broker.commit(c) for c in changes), return_exceptions=True
        )
    wins = [(c, o) for c, o in zip(changes, outcomes, strict=True) if isinstance(o, Committed)]
    assert len(wins) == 1, outcomes
    winner, committed = wins[0]
    assert committed.seq == 1
    assert await h.broker.head("m") == (1, winner.new_epoch)
    assert await h.broker.read_meta("m") == winner.new
    assert await h.broker.list_blogs() == [winner.new]


# -- Redis: outages, restarts, keys -------------------------------------------------------------


async def _unavailable_within(aw: Any, limit: float) -> float:
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(Unavailable):
        async with asyncio.timeout(limit + 2.0):  # the test's own bound, beyond the broker's
            await aw
    return loop.time() - start


async def test_redis_killed_then_restarted(rh: Harness) -> None:
    assert rh.redis is not None
    await rh.blog("m", epoch="keepme1")
    await rh.broker.subscribe("m")
    await rh.settle("m")
    before = await rh.broker.load("m")
    assert before is not None and before.seq == 2

    rh.redis.kill()
    change, entry = create_change("m", "while down")
    elapsed = await _unavailable_within(rh.broker.commit(change), TIMEOUT)
    assert elapsed <= TIMEOUT + 0.25
    for call in (rh.broker.load("m"), rh.broker.head("m"), rh.broker.ping()):
        assert await _unavailable_within(call, TIMEOUT) <= TIMEOUT + 0.25

    rh.redis.start()  # same port, same directory, append-only file
    assert await rh.broker.head("m") == (2, "keepme1")
    assert await rh.broker.load("m") == before
    assert await rh.broker.read_entry("m", entry["id"]) is None  # the failed write is not there
    await eventually(lambda: rh.rec.resyncs >= 1, "on_resync after the pub/sub reconnect")
    frames = len(rh.rec.frames("m"))
    committed = await rh.broker.commit(change)  # the retry of the failed request
    assert (committed.seq, committed.epoch, committed.replayed) == (3, "keepme1", False)
    await eventually(lambda: 3 in rh.rec.seqs("m"), "a new frame after the reconnect")
    assert rh.rec.frames("m")[frames:] == [event_frame(3, "keepme1", change.event_body)]


async def test_redis_down_at_start_then_up(tmp_path: Path, redis_proc: RedisProcess) -> None:
    redis_proc.kill()
    broker = make_broker("redis", tmp_path, redis_proc)
    async with asyncio.timeout(TIMEOUT + 2.0):
        recorder = Recorder()
        await broker.start(recorder)  # starts anyway, bounded by the timeout
    try:
        with pytest.raises(Unavailable):
            await broker.commit(blog_change("m", None))
        redis_proc.start()
        committed = await broker.commit(blog_change("m", None, epoch="late1"))
        assert committed.seq == 1

        async def subscribed() -> None:
            while True:
                with contextlib.suppress(Unavailable):
                    await broker.subscribe("m")
                    return
                await asyncio.sleep(0.05)

        async with asyncio.timeout(WAIT):
            await subscribed()
        change, _ = create_change("m")
        await broker.commit(change)
        await eventually(lambda: recorder.seqs("m") == [2], "frame after a late start")
    finally:
        await broker.close()


async def test_redis_frozen_calls_time_out_and_retry_writes_once(rh: Harness) -> None:
    assert rh.redis is not None
    await rh.blog("m", epoch="e1")
    await rh.broker.subscribe("m")
    change, entry = create_change("m", "during freeze", idem="frozen-key")

    rh.redis.freeze()
    try:
        loop = asyncio.get_running_loop()
        start = loop.time()
        outcomes = await asyncio.gather(
            rh.broker.commit(change), rh.broker.load("m"), rh.broker.head("m"),
            rh.broker.ping(), return_exceptions=True,
        )  # fmt: skip
        elapsed = loop.time() - start
    finally:
        rh.redis.thaw()
    assert all(isinstance(o, Unavailable) for o in outcomes), outcomes
    assert elapsed <= TIMEOUT + 0.5

    # The client cannot know whether the timed-out write happened; the idempotency key makes
    # the retry safe: exactly one write, at seq 2, whatever Redis did with the first attempt.
    async def retry() -> Committed:
        while True:
            with contextlib.suppress(Unavailable):
                return await rh.broker.commit(change)
            await asyncio.sleep(0.05)

    async with asyncio.timeout(WAIT):
        committed = await retry()
    assert committed.seq == 2
    assert await rh.broker.head("m") == (2, "e1")
    assert await rh.broker.read_entry("m", entry["id"]) == change.new
    marker = await rh.settle("m")
    assert rh.rec.frames("m") == [event_frame(2, "e1", change.event_body), marker]


async def test_redis_two_nodes_share_frames(rh: Harness) -> None:
    assert rh.redis is not None
    node_b = RedisBroker(
        rh.redis.url, prefix=PREFIX, history_limit=HISTORY_LIMIT, idempotency_ttl=3600,
        timeout=TIMEOUT,
    )  # fmt: skip
    async with started(node_b) as rec_b:
        await rh.blog("m", epoch="e1")
        await node_b.subscribe("m")
        change, _ = create_change("m")
        await rh.broker.commit(change)  # written through node A
        await eventually(lambda: rec_b.seqs("m") == [2], "node B gets node A's frame")
        assert rec_b.frames("m") == [event_frame(2, "e1", change.event_body)]
        assert await node_b.head("m") == (2, "e1")


async def test_redis_keys_of_a_blog_share_its_hash_tag(rh: Harness) -> None:
    assert rh.redis is not None
    for slug in ("city-marathon", "election-night"):
        await rh.blog(slug)
        await rh.broker.subscribe(slug)
        for i in range(7):
            await rh.entry(slug, f"entry {i}")
        meta = await rh.broker.read_meta(slug)
        await rh.broker.commit(blog_change(slug, meta, {"summary": "s"}, idem=f"idem-{slug}"))

    client = aioredis.Redis.from_url(rh.redis.url, decode_responses=True)
    try:
        keys = [k async for k in client.scan_iter(match="*", count=1000)]
        channels = await client.pubsub_channels()
        ttl = await client.ttl(f"{PREFIX}:{{city-marathon}}:idem:idem-city-marathon")
        history_len = await client.llen(f"{PREFIX}:{{city-marathon}}:history")
    finally:
        await client.aclose()

    blog_keys = [k for k in keys if k != f"{PREFIX}:blogs"]
    for slug in ("city-marathon", "election-night"):
        mine = [k for k in blog_keys if slug in k]
        assert mine, keys
        assert all(k.startswith(f"{PREFIX}:{{{slug}}}:") for k in mine), mine
        parts = {k.split("}:", 1)[1] for k in mine}
        assert {"meta", "entries", "seq", "epoch", "history"} <= parts
        known = {"meta", "entries", "seq", "epoch", "history"}
        assert all(p in known or p.startswith("idem:") for p in parts), parts
        assert sum(p.startswith("idem:") for p in parts) == 9  # one per write
    assert all(any(f"{{{s}}}" in k for s in ("city-marathon", "election-night")) for k in blog_keys)
    assert set(channels) >= {
        f"{PREFIX}:{{city-marathon}}:events",
        f"{PREFIX}:{{election-night}}:events",
    }
    assert 0 < ttl <= 3600  # idempotency keys expire
    assert history_len == HISTORY_LIMIT
