"""Property: whatever the interleaving of publishes, edits, deletes, disconnects and resumes
(including publishes racing a reconnect's replay), every reader ends with the server's state
and applies each seq exactly once, in order."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pushhub.auth import issue_token
from tests.support.api import Editor
from tests.support.readers import WsReader, as_read
from tests.support.servers import TEST_SECRET, PushhubProcess, RedisProcess

READERS = 3
_blogs = itertools.count()

action = st.one_of(
    st.tuples(st.just("publish"), st.integers(1, 3)),
    st.tuples(st.just("edit"), st.integers(0, 10)),
    st.tuples(st.just("delete"), st.integers(0, 10)),
    st.tuples(st.just("drop"), st.integers(0, READERS - 1)),
    st.tuples(st.just("resume"), st.integers(0, READERS - 1)),
    st.tuples(st.just("resume_racing"), st.integers(0, READERS - 1)),
    st.tuples(st.just("read"), st.integers(0, READERS - 1)),
)


@pytest.fixture(scope="module", params=["embedded", "redis"])
def node(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PushhubProcess]:
    base: Path = tmp_path_factory.mktemp(f"prop-{request.param}")
    redis = RedisProcess(base / "redis").start() if request.param == "redis" else None
    # A short history makes some resumes fall off the end and get a reset snapshot.
    server = PushhubProcess(
        base / "node", redis_url=redis.url if redis else None,
        extra_env={"PUSHHUB_HISTORY_LIMIT": "8"},
    ).start()  # fmt: skip
    yield server
    server.kill()
    if redis:
        redis.kill()


async def _scenario(node: PushhubProcess, steps: list[tuple[str, int]]) -> None:
    slug = f"prop-{next(_blogs)}"
    editor = Editor(node.url, issue_token(TEST_SECRET, subject="prop"))
    readers = [WsReader(node.ws_url, slug) for _ in range(READERS)]
    try:
        await editor.blog(slug)
        ids: list[str] = []
        for r in readers:
            await r.connect()
            await r.recv()

        async def publish(n: int) -> None:
            for i in range(n):
                ids.append((await editor.publish(slug, f"entry {len(ids)} {i}"))["entry"]["id"])

        for kind, arg in steps:
            if kind == "publish":
                await publish(arg)
            elif kind in ("edit", "delete") and ids:
                entry_id = ids[arg % len(ids)]
                if kind == "edit":
                    await editor.edit(slug, entry_id, title=f"edited {arg}", pinned=arg % 2 == 0)
                else:
                    await editor.delete(slug, entry_id)
                    ids.remove(entry_id)
            elif kind == "drop" and readers[arg].ws is not None:
                await readers[arg].close()
            elif kind in ("resume", "resume_racing") and readers[arg].ws is None:
                if kind == "resume":
                    await readers[arg].connect()
                else:
                    await asyncio.gather(readers[arg].connect(), publish(2))
            elif kind == "read" and readers[arg].ws is not None:
                head = (await editor.state(slug))["seq"]
                await readers[arg].until_seq(head)
        state = await editor.state(slug)
        for r in readers:
            if r.ws is None:
                await r.connect()
            await r.until_seq(state["seq"])
            await r.quiet(0.1)
            # LocalCopy.apply already failed on any gap, duplicate or reordering.
            assert r.copy.seq == state["seq"] and r.copy.epoch == state["epoch"]
            assert r.copy.entries == as_read(state["entries"])
            assert r.copy.blog == state["blog"]
            assert len(r.copy.seen) == len(set(r.copy.seen))
    finally:
        for r in readers:
            await r.close()
        await editor.aclose()


@settings(
    max_examples=12, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)  # fmt: skip
@given(steps=st.lists(action, min_size=5, max_size=25))
def test_every_reader_ends_level_with_the_server(
    node: PushhubProcess, steps: list[tuple[str, int]]
) -> None:
    async def bounded() -> None:
        async with asyncio.timeout(60):
            await _scenario(node, steps)

    asyncio.run(bounded())
