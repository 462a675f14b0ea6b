"""Keepalive on the fast path against a real server: a reader that never answers pings is cut
with 1011, one that does (every WebSocket client library does) stays and keeps getting events.
The spreading of a round over the interval is tested in tests/unit/test_wire_keepalive.py."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import websockets

from tests.support.api import Editor
from tests.support.servers import PushhubProcess
from tests.support.wsraw import read_frame

INTERVAL = 0.5


@pytest.fixture
def node(tmp_path: Path) -> Iterator[PushhubProcess]:
    proc = PushhubProcess(
        tmp_path / "n", extra_env={"PUSHHUB_WS_PING_INTERVAL": str(INTERVAL)}
    ).start()
    try:
        yield proc
    finally:
        proc.kill()


@pytest.fixture
async def editor(node: PushhubProcess, token: str) -> AsyncIterator[Editor]:
    client = Editor(node.url, token)
    try:
        await client.blog("b")
        yield client
    finally:
        await client.aclose()


async def test_a_reader_that_never_answers_pings_is_cut_with_1011(
    node: PushhubProcess, editor: Editor
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", node.port)
    key = base64.b64encode(os.urandom(16))
    writer.write(
        b"GET /ws/blogs/b HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % key
    )
    seen: list[int] = []
    async with asyncio.timeout(10 * INTERVAL + 5):
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101 ")
        while True:
            first, payload = await read_frame(reader)
            opcode = first & 0x0F
            seen.append(opcode)
            if opcode == 0x8:
                break
    writer.close()
    assert seen[0] == 0x1  # the snapshot
    assert 0x9 in seen  # pinged before being given up on
    assert int.from_bytes(payload[:2], "big") == 1011
    assert b"keepalive" in payload[2:]


async def test_a_reader_that_answers_pings_stays_and_gets_events(
    node: PushhubProcess, editor: Editor
) -> None:
    async with websockets.connect(f"{node.ws_url}/ws/blogs/b", close_timeout=1) as ws:
        async with asyncio.timeout(5):
            await ws.recv()  # the snapshot
        # Five intervals: long past the two after which a silent reader is cut.
        await asyncio.sleep(5 * INTERVAL)
        published = await editor.publish("b", "still here")
        async with asyncio.timeout(5):
            frame = await ws.recv()
        assert f'"seq":{published["seq"]}' in str(frame)
