"""A Redis that loses acknowledged events (appendfsync everysec and a crash, or a failover to
a replica that was behind) hands their seqs to new writes. Nodes must notice and move every
reader to a new epoch rather than keep a copy that silently differs from the store."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.api import Editor
from tests.support.readers import WsReader, as_read
from tests.support.servers import PushhubProcess, RedisProcess
from tests.support.tcpproxy import StallingProxy

pytestmark = pytest.mark.slow


def _aof(redis: RedisProcess) -> Path:
    (incr,) = (redis.dir / "appendonlydir").glob("*.incr.aof")
    return incr


async def _publish_then_lose(
    redis: RedisProcess, editor: Editor, reader: WsReader, lost: int,
    before_kill: Callable[[], None] = lambda: None,
) -> tuple[dict[str, Any], dict[str, Any]]:  # fmt: skip
    """One entry kept, then `lost` more that the reader gets and Redis then loses: it dies and
    comes back from an append-only file cut back to before them. (kept, last lost)."""
    kept = await editor.publish("live", "kept")
    size_then = _aof(redis).stat().st_size
    for i in range(lost):
        last = await editor.publish("live", f"acknowledged, then lost {i}")
    await reader.until_seq(last["seq"])
    before_kill()
    redis.kill()
    with _aof(redis).open("r+b") as f:
        f.truncate(size_then)
    redis.start()
    return kept, last


async def _until_moved(reader: WsReader, editor: Editor, old_epoch: str) -> dict[str, Any]:
    """The store's state once the reader holds its head in an epoch other than `old_epoch`."""
    async with asyncio.timeout(20):
        while True:
            state = await editor.state("live")
            copy = reader.copy
            moved = state["epoch"] != old_epoch and copy.epoch == state["epoch"]
            if moved and copy.seq == state["seq"]:
                return state
            with contextlib.suppress(TimeoutError):
                await reader.recv(timeout=0.5)


async def test_lost_acknowledged_events_move_everyone_to_a_new_epoch(
    redis_proc: RedisProcess, tmp_path: Path, token: str
) -> None:
    env = {"PUSHHUB_WATCHDOG_INTERVAL": "0.5", "PUSHHUB_REDIS_TIMEOUT": "1"}
    a = PushhubProcess(tmp_path / "a", redis_url=redis_proc.url, extra_env=env).start()
    editor_a = Editor(a.url, token)
    b: PushhubProcess | None = None
    try:
        await editor_a.blog("live")
        reader = await WsReader(a.ws_url, "live").connect()
        await reader.recv()
        kept, _ = await _publish_then_lose(redis_proc, editor_a, reader, 3)
        b = PushhubProcess(tmp_path / "b", redis_url=redis_proc.url, extra_env=env).start()
        editor_b = Editor(b.url, token)
        for i in range(3):
            await editor_b.publish("live", f"new write {i}")
        state = await _until_moved(reader, editor_b, kept["epoch"])
        assert reader.copy.resets >= 1
        assert reader.copy.entries == as_read(state["entries"])
        assert (await editor_a.http.get("/readyz")).json()["divergences"] >= 1
        await reader.close()
        await editor_b.aclose()
    finally:
        await editor_a.aclose()
        a.kill()
        if b is not None:
            b.kill()


async def test_lost_events_whose_seqs_were_taken_before_a_node_reloaded_still_reset_it(
    redis_proc: RedisProcess, tmp_path: Path, token: str
) -> None:
    """Node A's subscription stays down until new writes have taken the lost seqs, so when it
    reloads, the store's head is not behind its own: only the content of those seqs tells. The
    watchdog is kept out of it (its check would see the head go back while A waits)."""
    proxy = await StallingProxy(redis_proc.port).start()
    env = {"PUSHHUB_WATCHDOG_INTERVAL": "600", "PUSHHUB_REDIS_TIMEOUT": "1"}
    a = PushhubProcess(tmp_path / "a", redis_url=proxy.url, extra_env=env).start()
    editor_a = Editor(a.url, token)
    b: PushhubProcess | None = None
    try:
        await editor_a.blog("live")
        async with asyncio.timeout(15):
            while (await editor_a.http.get("/readyz")).status_code != 200:
                await asyncio.sleep(0.1)
        reader = await WsReader(a.ws_url, "live").connect()
        await reader.recv()

        def stall() -> None:  # from before Redis dies: A's next subscription waits
            proxy.stall_pubsub = True

        kept, lost = await _publish_then_lose(redis_proc, editor_a, reader, 3, stall)
        b = PushhubProcess(tmp_path / "b", redis_url=redis_proc.url, extra_env=env).start()
        editor_b = Editor(b.url, token)
        for i in range(4):
            taken = await editor_b.publish("live", f"new write {i}")
        assert taken["seq"] > lost["seq"] and taken["epoch"] == kept["epoch"]
        proxy.stall_pubsub = False
        state = await _until_moved(reader, editor_b, kept["epoch"])
        assert reader.copy.resets >= 1
        assert reader.copy.entries == as_read(state["entries"])
        assert (await editor_a.http.get("/readyz")).json()["divergences"] >= 1
        await reader.close()
        await editor_b.aclose()
    finally:
        await editor_a.aclose()
        a.kill()
        if b is not None:
            b.kill()
        await proxy.close()
