"""Issue 6 at scale: a rolling restart of both nodes under 1,000 readers loses nothing, and
rounds of stalled readers leave the server's memory flat."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import pytest
import websockets

from tests.support.api import Editor
from tests.support.readers import LocalCopy, RoamingReader, as_read
from tests.support.servers import PushhubProcess, RedisProcess

pytestmark = pytest.mark.slow
READERS = 1000


def _rss_kb(node: PushhubProcess) -> int:
    assert node.proc is not None
    for line in Path(f"/proc/{node.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def _level(readers: list[RoamingReader], editor: Editor) -> int:
    state = await editor.state("live")
    async with asyncio.timeout(90):
        for r in readers:
            await r.until_seq(state["seq"], timeout=90)
    for r in readers:
        assert r.copy.entries == as_read(state["entries"])
        assert len(r.copy.seen) == len(set(r.copy.seen))
    return int(state["seq"])


async def test_rolling_restart_of_two_nodes_under_a_thousand_readers(
    redis_proc: RedisProcess, tmp_path: Path, token: str
) -> None:
    env = {"PUSHHUB_DRAIN_WINDOW": "2", "PUSHHUB_PUBLISH_RATE": "0"}
    nodes = [
        PushhubProcess(tmp_path / n, redis_url=redis_proc.url, extra_env=env).start()
        for n in ("a", "b")
    ]
    editor = Editor(nodes[1].url, token)
    readers = [RoamingReader([n.ws_url for n in nodes], "live") for _ in range(READERS)]
    try:
        await editor.blog("live")
        for i, r in enumerate(readers):
            r.start(first=i % 2)
            if i % 100 == 99:
                await asyncio.sleep(0.2)  # don't make the test itself a connection storm
        await _level(readers, editor)
        acknowledged = 0
        for node in nodes:  # restart one node at a time, publishing all along
            writer = Editor(nodes[1 - nodes.index(node)].url, token)
            publishing = asyncio.gather(*[writer.publish("live", f"roll {i}") for i in range(10)])
            await asyncio.to_thread(node.stop, 30)
            acknowledged += len(await publishing)
            node.start()
            await writer.aclose()
        head = await _level(readers, editor)
        assert acknowledged == 20
        assert sum(1 for r in readers for _, code in r.closes if code == 1012) >= READERS
        assert all(r.copy.seq == head for r in readers)
    finally:
        await asyncio.gather(*[r.stop() for r in readers])
        await editor.aclose()
        for n in nodes:
            n.kill()


async def test_rounds_of_stalled_readers_leave_memory_flat(tmp_path: Path, token: str) -> None:
    # A short history and edits of the same entries keep the blog's own size constant, so any
    # growth across rounds would be what stalled readers leave behind.
    env = {
        "PUSHHUB_PUBLISH_RATE": "0", "PUSHHUB_HISTORY_LIMIT": "20",
        "PUSHHUB_READER_BUFFER_BYTES": "65536",
    }  # fmt: skip
    node = PushhubProcess(tmp_path / "n", extra_env=env).start()
    editor = Editor(node.url, token)
    big = "word " * 16_000  # ~80 KB per frame (the html readers get): 24 pass the bound
    try:
        await editor.blog("live")
        # Three entries keep the snapshot each stalled reader must first receive small.
        ids = [(await editor.publish("live", f"{i} {big}"))["entry"]["id"] for i in range(3)]
        rss: list[int] = []
        for round_ in range(4):
            stalled = []
            for _ in range(4):
                sock = socket.socket()
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
                sock.connect(("127.0.0.1", node.port))
                ws = await websockets.connect(
                    f"{node.ws_url}/ws/blogs/live",
                    sock=sock,
                    max_queue=1,
                    compression=None,
                    max_size=None,
                )
                LocalCopy().apply(json.loads(await ws.recv()))
                stalled.append(ws)
            for i in range(24):
                await editor.edit("live", ids[i % 3], body=f"{round_} {i} {big}")
            async with asyncio.timeout(20):
                while (await editor.http.get("/readyz")).json()["readers"] != 0:
                    await asyncio.sleep(0.1)
            for ws in stalled:
                # The server already cut them; a paused client would wait out its close timeout.
                ws.transport.abort()
            rss.append(_rss_kb(node))
        # The first round warms caches and allocator pools; after it, no growth per round.
        assert rss[-1] - rss[1] < 8 * 1024, rss
    finally:
        await editor.aclose()
        node.kill()
