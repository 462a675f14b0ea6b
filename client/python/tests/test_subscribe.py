"""`subscribe` and `LiveBlog` over real WebSockets, including a server restart mid-stream."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from client_helpers import FAST_RETRY, new_slug
from pushhub_client import (
    AsyncPushHub,
    Backoff,
    Connected,
    Disconnected,
    Event,
    Frame,
    NotFound,
    Snapshot,
    Subscription,
    Unavailable,
)
from pushhub_client.subscribe import ConnectionEvent

from tests.support.servers import PushhubProcess, free_port

QUICK = Backoff(initial=0.1, factor=2.0, cap=0.5)


async def take(sub: Subscription, count: int, seconds: float = 10.0) -> list[Frame]:
    frames: list[Frame] = []
    async with asyncio.timeout(seconds):
        while len(frames) < count:
            frames.append(await anext(sub))
    return frames


async def test_snapshot_first_then_every_change_in_order(ahub: AsyncPushHub) -> None:
    slug = new_slug()
    await ahub.create_blog(slug, "Follow me")
    old = await ahub.publish(slug, "before we subscribed")
    async with ahub.subscribe(slug) as sub:
        [snapshot] = await take(sub, 1)
        assert isinstance(snapshot, Snapshot) and not snapshot.reset
        assert [e.id for e in snapshot.entries] == [old.entry.id]
        assert snapshot.seq == old.seq and sub.seq == old.seq

        new = await ahub.publish(slug, "hello", title="Hi")
        await ahub.pin(slug, new.entry.id)
        edited = await ahub.edit(slug, new.entry.id, body="hello *again*")
        await ahub.delete(slug, old.entry.id)
        await ahub.update_blog(slug, status="ended")
        events = await take(sub, 5)

    assert all(isinstance(e, Event) for e in events)
    assert [e.seq for e in events] == list(range(old.seq + 1, old.seq + 6))
    ops = [(e.op, e.entry_id) for e in events if isinstance(e, Event)]
    assert ops == [
        ("create", new.entry.id),
        ("update", new.entry.id),
        ("update", new.entry.id),
        ("delete", old.entry.id),
        ("blog", None),
    ]
    pin, edit, _, blog = events[1], events[2], events[3], events[4]
    assert isinstance(pin, Event) and pin.entry is not None and pin.entry.pinned
    assert isinstance(edit, Event) and edit.entry is not None
    # Readers get the rendered HTML, not the editor's Markdown.
    assert edit.entry.body is None and edit.entry.html == edited.entry.html
    assert edit.entry.text == "hello again"
    assert edited.entry.body == "hello *again*", "the editor's own answer keeps the source"
    assert isinstance(blog, Event) and blog.blog is not None and blog.blog.status == "ended"


async def test_resume_with_since_gets_only_what_was_missed(ahub: AsyncPushHub) -> None:
    slug = new_slug()
    start = await ahub.create_blog(slug, "Resume")
    missed = [await ahub.publish(slug, f"missed {i}") for i in range(3)]
    async with ahub.subscribe(slug, since=start.seq, epoch=start.epoch) as sub:
        frames = await take(sub, 3)
    assert [f.seq for f in frames] == [m.seq for m in missed]
    assert all(isinstance(f, Event) and f.op == "create" for f in frames)


async def test_resume_in_another_epoch_starts_over_with_a_reset_snapshot(
    ahub: AsyncPushHub,
) -> None:
    slug = new_slug()
    await ahub.create_blog(slug, "Reset")
    entry = await ahub.publish(slug, "kept")
    async with ahub.subscribe(slug, since=1, epoch="0ldepoch") as sub:
        [frame] = await take(sub, 1)
    assert isinstance(frame, Snapshot) and frame.reset
    assert [e.id for e in frame.entries] == [entry.entry.id] and frame.epoch == entry.epoch


async def test_unknown_blog_raises_not_found(ahub: AsyncPushHub) -> None:
    async with ahub.subscribe(new_slug("missing"), backoff=QUICK) as sub:
        with pytest.raises(NotFound):
            await take(sub, 1)


async def test_nobody_listening_gives_up_after_max_attempts() -> None:
    notices: list[ConnectionEvent] = []
    sub = Subscription(
        f"http://127.0.0.1:{free_port()}",
        "any",
        backoff=QUICK,
        max_attempts=3,
        on_connection=notices.append,
    )
    async with sub:
        with pytest.raises(Unavailable, match="gave up after 3 tries"):
            await take(sub, 1)
    assert [type(n) for n in notices] == [Disconnected, Disconnected]
    assert all(isinstance(n, Disconnected) and n.retry_in <= 0.5 for n in notices)


async def test_live_blog_stays_equal_to_the_server(ahub: AsyncPushHub) -> None:
    slug = new_slug()
    await ahub.create_blog(slug, "Live copy")
    first = await ahub.publish(slug, "first")
    async with ahub.live(slug) as live:
        assert [e.id for e in live.entries] == [first.entry.id]
        second = await ahub.publish(slug, "second", key=True)
        await ahub.pin(slug, first.entry.id)
        third = await ahub.publish(slug, "third")
        await ahub.delete(slug, second.entry.id)
        last = await ahub.update_blog(slug, title="Live copy, renamed")
        async with asyncio.timeout(10):
            await live.wait_seq(last.seq)
        server = await ahub.get_blog(slug)
        # The API answers with the Markdown source; the reader stream carries everything else.
        assert all(e.body is None for e in live.entries)
        assert live.entries == [replace(e, body=None) for e in server.entries]
        assert [e.id for e in live.entries] == [first.entry.id, third.entry.id]
        assert live.blog == server.blog and live.seq == server.seq


@pytest.mark.timeout(90)
async def test_subscription_survives_a_server_restart_without_loss_or_repeat(
    server: PushhubProcess, token: str
) -> None:
    notices: list[ConnectionEvent] = []
    async with AsyncPushHub(server.url, token, retry=FAST_RETRY) as hub:
        slug = new_slug()
        start = await hub.create_blog(slug, "Restart")
        sub = hub.subscribe(slug, backoff=QUICK, on_connection=notices.append)
        async with sub:
            [snapshot] = await take(sub, 1)
            assert snapshot.seq == start.seq
            before = [await hub.publish(slug, f"before {i}") for i in range(3)]
            got = await take(sub, 3)

            await asyncio.to_thread(server.restart)
            # Published while the subscriber is still reconnecting: it must catch up on these.
            after = [await hub.publish(slug, f"after {i}") for i in range(3)]
            await hub.pin(slug, before[0].entry.id)
            got += await take(sub, 4, seconds=30)

            # And live events keep flowing on the new connection.
            tail = await hub.publish(slug, "still live")
            got += await take(sub, 1)
            assert sub.seq == tail.seq

    expected = [w.entry.id for w in before + after] + [before[0].entry.id, tail.entry.id]
    assert [f.entry_id for f in got if isinstance(f, Event)] == expected
    assert [f.seq for f in got] == list(range(start.seq + 1, tail.seq + 1)), "no gap, no repeat"
    kinds = [type(n) for n in notices]
    assert kinds[0] is Connected and Disconnected in kinds and kinds[-1] is Connected
    resumed = notices[-1]
    assert isinstance(resumed, Connected) and resumed.resumed_after is not None
    assert resumed.resumed_after >= before[-1].seq
