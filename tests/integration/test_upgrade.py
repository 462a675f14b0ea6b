"""pushhub/upgrade.py under a real uvicorn, with a toy ASGI app: the ASGI WebSocket messages a
route may send during and after the handshake are answered as uvicorn's own protocol does."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn

from pushhub.handshake import accept_key
from pushhub.upgrade import ReaderUpgrade
from pushhub.wsframes import OP_CLOSE, OP_TEXT
from tests.support.servers import free_port

seen: list[dict[str, Any]] = []


async def toy(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    assert scope["type"] == "websocket"
    seen.append(await receive())
    path = scope["path"]
    if path == "/talk":
        await send({"type": "websocket.accept", "headers": [(b"x-toy", b"1")]})
        await send({"type": "websocket.send", "text": "hi " + scope["query_string"].decode()})
        await send({"type": "websocket.close", "code": 4000, "reason": "bye"})
    elif path == "/wait":
        await send({"type": "websocket.accept"})
        seen.append(await receive())  # returns when the client has gone
    elif path == "/close":
        await send({"type": "websocket.close"})
    elif path == "/deny":
        await send({"type": "websocket.http.response.start", "status": 429, "headers": []})
        await send({"type": "websocket.http.response.body", "body": b"slow", "more_body": True})
        await send({"type": "websocket.http.response.body", "body": b" down"})
    elif path == "/boom":
        raise RuntimeError("toy failure")
    # any other path: returns without answering


@pytest.fixture
async def toy_server() -> AsyncIterator[int]:
    port = free_port()
    config = uvicorn.Config(
        toy, host="127.0.0.1", port=port, ws=ReaderUpgrade, log_level="critical"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(10):
        while not server.started:
            await asyncio.sleep(0.02)
    seen.clear()
    yield port
    server.should_exit = True
    async with asyncio.timeout(10):
        await task


async def handshake(port: int, target: str) -> tuple[bytes, bytes, asyncio.StreamReader, Any]:
    """Send an upgrade request; the response head, the key sent, and the open streams."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16))
    writer.write(
        b"GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (target.encode(), key)
    )
    async with asyncio.timeout(5):
        head = await reader.readuntil(b"\r\n\r\n")
    return head, key, reader, writer


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    async with asyncio.timeout(5):
        first, length = await reader.readexactly(2)
        assert length < 126
        return first & 0x0F, await reader.readexactly(length)


async def test_accept_then_text_then_close(toy_server: int) -> None:
    head, key, reader, writer = await handshake(toy_server, "/talk?x=1")

    assert head.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert b"Sec-WebSocket-Accept: " + accept_key(key) + b"\r\n" in head
    assert b"x-toy: 1\r\n" in head
    assert await read_frame(reader) == (OP_TEXT, b"hi x=1")
    assert await read_frame(reader) == (OP_CLOSE, (4000).to_bytes(2, "big") + b"bye")
    assert seen == [{"type": "websocket.connect"}]
    writer.close()


async def test_receive_after_accept_reports_the_client_leaving(toy_server: int) -> None:
    head, _, _, writer = await handshake(toy_server, "/wait")
    assert head.startswith(b"HTTP/1.1 101 ")

    writer.close()
    async with asyncio.timeout(5):
        while len(seen) < 2:
            await asyncio.sleep(0.02)
    assert seen[1] == {"type": "websocket.disconnect", "code": 1006}


@pytest.mark.parametrize(
    ("target", "status", "body"),
    [
        ("/close", b"403", b""),
        ("/deny", b"429", b"slow down"),
        ("/boom", b"500", b"Internal Server Error"),
        ("/silent", b"500", b"Internal Server Error"),
    ],
)
async def test_answers_before_accept_are_http_and_close(
    toy_server: int, target: str, status: bytes, body: bytes
) -> None:
    head, _, reader, writer = await handshake(toy_server, target)

    assert head.split(b" ")[1] == status, head
    assert b"connection: close" in head
    async with asyncio.timeout(5):
        assert await reader.read() == body  # then EOF: the server closed the connection
    writer.close()


async def test_a_bad_upgrade_never_reaches_the_app(toy_server: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", toy_server)
    writer.write(
        b"GET /talk HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n"
    )
    async with asyncio.timeout(5):
        answer = await reader.read()

    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"Sec-WebSocket-Key" in answer
    assert seen == []
    writer.close()
