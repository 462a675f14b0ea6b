"""Faults the core must absorb: a lost pub/sub link, a Redis restart, a reader that stops reading."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import httpx
import redis
import websockets

from tests.support.api import Editor
from tests.support.readers import LocalCopy, WsReader, as_read
from tests.support.servers import PushhubProcess, RedisProcess


async def test_lost_pubsub_link_is_refilled_from_history(
    redis_proc: RedisProcess, tmp_path: Path, token: str
) -> None:
    a = PushhubProcess(tmp_path / "a", redis_url=redis_proc.url).start()
    b = PushhubProcess(tmp_path / "b", redis_url=redis_proc.url).start()
    editor = Editor(b.url, token)
    try:
        await editor.blog("b")
        reader = await WsReader(a.ws_url, "b").connect()
        await reader.recv()
        admin = redis.Redis(port=redis_proc.port)
        # Cut every pub/sub connection (node A's) while node B keeps publishing: the messages
        # published before A resubscribes are lost to pub/sub, and A must refill them.
        publishing = asyncio.gather(*[editor.publish("b", f"e{i}") for i in range(30)])
        await asyncio.sleep(0.01)
        assert admin.client_kill_filter(_type="pubsub") >= 1
        results = await publishing
        head = max(r["seq"] for r in results)
        await reader.until_seq(head, timeout=15)
        assert reader.copy.seen == list(range(2, head + 1))
        # Node B's own pub/sub link was cut too: its reads answer 503 until it resubscribes
        # (after a jittered backoff), which under a loaded test run can outlast A's refill.
        async with asyncio.timeout(15):
            while (await editor.http.get("/readyz")).status_code != 200:
                await asyncio.sleep(0.05)
        assert reader.copy.entries == as_read((await editor.state("b"))["entries"])
        admin.close()
        await reader.close()
    finally:
        await editor.aclose()
        a.kill()
        b.kill()


async def test_redis_restart_keeps_epoch_and_readers_continue(
    redis_proc: RedisProcess, tmp_path: Path, token: str
) -> None:
    node = PushhubProcess(tmp_path / "n", redis_url=redis_proc.url).start()
    editor = Editor(node.url, token)
    try:
        await editor.blog("b")
        first = await editor.publish("b", "before")
        reader = await WsReader(node.ws_url, "b").connect()
        await reader.recv()
        redis_proc.stop()
        redis_proc.start()
        async with asyncio.timeout(15):
            while (await editor.http.get("/readyz")).status_code != 200:
                await asyncio.sleep(0.1)
        after = await editor.publish("b", "after")
        assert after["epoch"] == first["epoch"] and after["seq"] == first["seq"] + 1
        await reader.until_seq(after["seq"], timeout=15)
        assert reader.copy.seen == [after["seq"]] and reader.copy.resets == 0
        await reader.close()
    finally:
        await editor.aclose()
        node.kill()


async def test_slow_reader_is_cut_off_and_resume_makes_it_whole(tmp_path: Path, token: str) -> None:
    # 80 quick publishes would outrun the default per-token rate (a burst of 60, then 20/s).
    env = {"PUSHHUB_HISTORY_LIMIT": "5", "PUSHHUB_READER_BUFFER": "5", "PUSHHUB_PUBLISH_RATE": "0"}
    node = PushhubProcess(tmp_path / "n", extra_env=env).start()
    editor = Editor(node.url, token)
    try:
        await editor.blog("b")
        fast = await WsReader(node.ws_url, "b").connect(max_size=None)
        await fast.recv()
        # This client stops reading after its first frame. A small fixed receive buffer turns
        # off loopback autotuning (up to 32 MB here), so the server sees it stall quickly.
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
        sock.connect(("127.0.0.1", node.port))
        slow_copy = LocalCopy()
        slow = await websockets.connect(
            f"{node.ws_url}/ws/blogs/b",
            sock=sock,
            max_queue=1,
            max_size=None,
            open_timeout=10,
            compression=None,
        )
        async with asyncio.timeout(5):
            slow_copy.apply(json.loads(await slow.recv()))
        big = "word " * 19_000
        for i in range(80):
            published = await editor.publish("b", f"{i} {big}")
            await fast.until_seq(published["seq"], timeout=10)
        # The fast reader kept full speed and the server let go of the slow one.
        async with asyncio.timeout(15):
            while (await editor.http.get("/readyz")).json()["readers"] != 1:
                await asyncio.sleep(0.1)
        code = None
        try:
            async with asyncio.timeout(15):
                while True:
                    slow_copy.apply(json.loads(await slow.recv()))
        except websockets.ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd else 1006
        assert code in (1013, 1006)
        resumed = await WsReader(node.ws_url, "b", slow_copy).connect(max_size=None)
        await resumed.until_seq(published["seq"], timeout=10)
        assert resumed.copy.entries == fast.copy.entries
        await resumed.close()
        await fast.close()
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"{node.url}/healthz")).status_code == 200
    finally:
        await editor.aclose()
        node.kill()
