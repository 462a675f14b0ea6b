"""bench/floor.py, the floor the benchmark compares against, delivers what it claims: the
published body, framed once, to every subscriber of that channel and to no other."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets

from tests.support.servers import free_port, wait_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def floor() -> Iterator[int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bench.floor", "--port", str(port)], cwd=ROOT)
    try:
        wait_port(port, timeout=10)
        yield port
    finally:
        proc.kill()
        proc.wait(timeout=10)


async def test_a_publish_reaches_every_subscriber_of_its_channel_only(floor: int) -> None:
    url = f"ws://127.0.0.1:{floor}/sub"
    async with (
        websockets.connect(f"{url}/news", compression=None, close_timeout=0.1) as a,
        websockets.connect(f"{url}/news", compression=None, close_timeout=0.1) as b,
        websockets.connect(f"{url}/sport", compression=None, close_timeout=0.1) as other,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{floor}") as http,
    ):
        r = await http.post("/pub/news", content=b"0|1796000000000|hello")
        assert r.json() == {"subscribers": 2}
        async with asyncio.timeout(5):
            assert await a.recv() == "0|1796000000000|hello"
            assert await b.recv() == "0|1796000000000|hello"
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await other.recv()


async def test_a_bad_upgrade_is_refused(floor: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", floor)
    writer.write(
        b"GET /sub/x HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    )
    async with asyncio.timeout(5):
        assert (await reader.read()).startswith(b"HTTP/1.1 400 ")
    writer.close()
