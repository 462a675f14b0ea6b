"""The demo of `pushhub serve --demo`: its script plays through on a real store, and a newcomer
who starts the server sees the blog move within seconds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from client_helpers import new_slug
from pushhub_client import AsyncPushHub, Event, NotFound, Snapshot

from pushhub.config import Settings
from pushhub.demo import SCRIPT, run_demo
from pushhub.runtime import Runtime, make_runtime
from tests.support.servers import TEST_SECRET, PushhubProcess


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    """The server's own service over a real embedded store, without HTTP in between."""
    rt = make_runtime(Settings(data_dir=tmp_path), TEST_SECRET)
    await rt.broker.start(rt.hub)
    try:
        yield rt
    finally:
        await rt.hub.close()
        await rt.broker.close()


async def test_the_script_plays_through_and_a_replay_starts_clean(runtime: Runtime) -> None:
    slug = new_slug("demo")
    async with asyncio.timeout(30):
        await run_demo(runtime.service, slug=slug, interval=0.0, rounds=1)
        first = await runtime.service.read_blog(slug)
        await run_demo(runtime.service, slug=slug, interval=0.0, rounds=1)
        second = await runtime.service.read_blog(slug)

    publishes = sum(step.action == "publish" for step in SCRIPT)
    deletes = sum(step.action == "delete" for step in SCRIPT)
    assert 15 <= publishes - deletes <= 25
    for view in (first, second):
        assert len(view.entries) == publishes - deletes, "every step worked"
        assert view.blog["status"] == "ended"
        titles = [e["title"] for e in view.entries]
        assert "Testing" not in titles, "the mistaken post was deleted"
        assert [e["title"] for e in view.entries if e["pinned"]] == [titles[0]]
        assert titles[0] == "Roe wins the Kestrel Strait Swim"
        assert sum(e["key"] for e in view.entries) >= 2
        assert any(e["image"] and e["image"]["url"].startswith("https://") for e in view.entries)
        by_title = {e["title"]: e for e in view.entries}
        assert "15 °C" in by_title["Conditions at the start"]["body"], "the correction applied"
        assert "<strong>" in by_title["Halfway: Roe in control"]["html"], "Markdown rendered"
    assert not {e["id"] for e in first.entries} & {e["id"] for e in second.entries}, (
        "a replay clears the earlier round's entries"
    )


async def test_the_demo_stops_when_asked(runtime: Runtime) -> None:
    stop = asyncio.Event()
    slug = new_slug("demo")
    task = asyncio.create_task(run_demo(runtime.service, slug=slug, interval=0.05, stop=stop))
    async with asyncio.timeout(10):
        while len((await runtime.service.read_blog(slug)).entries) < 2:
            await asyncio.sleep(0.02)
        stop.set()
        await task


@pytest.mark.timeout(60)
async def test_serve_demo_shows_a_moving_blog_within_seconds(tmp_path: Path) -> None:
    node = PushhubProcess(tmp_path / "node", extra_args=["--demo"]).start()
    try:
        async with AsyncPushHub(node.url) as reader, asyncio.timeout(20):
            while True:  # the demo task creates its blog just after the server starts
                try:
                    await reader.get_blog("demo")
                    break
                except NotFound:
                    await asyncio.sleep(0.1)
            async with reader.subscribe("demo") as sub:
                snapshot = await anext(sub)
                assert isinstance(snapshot, Snapshot)
                assert snapshot.blog.title == "Kestrel Strait Swim — live"
                change = await anext(sub)
                assert isinstance(change, Event) and change.seq == snapshot.seq + 1
    finally:
        node.kill()
