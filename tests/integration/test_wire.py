"""The fast path (pushhub/wire.py) and its fallback: the same reader behaviour either way,
one compression per event for deflate readers, and a loud failure if uvicorn's internals move."""

from __future__ import annotations

import asyncio
import json
import zlib
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from uvicorn.config import WS_PROTOCOLS
from uvicorn.importer import import_from_string
from uvicorn.protocols.http import h11_impl, httptools_impl
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState

import pushhub.cli
from pushhub.upgrade import ReaderUpgrade
from pushhub.wire import CHECKED_UVICORN_PROTOCOL
from tests.integration import test_readers
from tests.support.api import Editor
from tests.support.readers import WsReader
from tests.support.servers import PushhubProcess
from tests.support.wsraw import read_frame as read_raw_frame


def test_uvicorn_internals_the_fast_path_relies_on() -> None:
    # If this fails, uvicorn changed: re-check pushhub/upgrade.py and wire.py before moving
    # the pin.
    assert uvicorn.__version__.startswith("0.54."), uvicorn.__version__
    # The hand-over to a `ws` protocol class (pushhub.upgrade.ReaderUpgrade), in both HTTP
    # implementations: built with these keywords, then the request head as bytes.
    for module in (httptools_impl, h11_impl):
        source = Path(module.__file__ or "").read_text()
        for needle in (
            "protocol = self.ws_protocol_class(",
            "config=self.config,",
            "server_state=self.server_state,",
            "app_state=self.app_state,",
            "protocol.connection_made(self.transport)",
            'protocol.data_received(b"".join(output))',
            "self.transport.set_protocol(protocol)",
        ):
            assert needle in source, (module.__name__, needle)
    for name in ("connections", "tasks", "default_headers"):
        assert name in ServerState().__dict__, name
    # The ASGI path's helpers (wire.abort, wire.mark_denied) reach into uvicorn's own protocol.
    assert WebSocketsSansIOProtocol.__name__ == CHECKED_UVICORN_PROTOCOL
    source = Path(uvicorn.protocols.websockets.websockets_sansio_impl.__file__).read_text()
    for needle in (
        "self.transport = transport",
        "self.initial_response",
        "self.handshake_complete",
    ):
        assert needle in source, needle


@pytest.mark.parametrize(
    ("wire", "protocol"), [("fast", ReaderUpgrade), ("asgi", WebSocketsSansIOProtocol)]
)
def test_serve_gives_uvicorn_the_websocket_protocol_of_its_wire(
    wire: str, protocol: type, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: calls.append(kw))
    monkeypatch.setenv("PUSHHUB_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PUSHHUB_WIRE", wire)

    assert pushhub.cli.main(["serve", "--port", "0"]) == 0

    (kwargs,) = calls
    config = uvicorn.Config(lambda: None, ws=kwargs["ws"])
    assert import_from_string(WS_PROTOCOLS.get(config.ws, config.ws)) is protocol


@pytest.fixture
def asgi_node(tmp_path: Path) -> Iterator[PushhubProcess]:
    node = PushhubProcess(tmp_path / "asgi", extra_env={"PUSHHUB_WIRE": "asgi"}).start()
    yield node
    node.kill()


@pytest.mark.parametrize(
    "scenario",
    [
        test_readers.test_snapshot_then_live_events,
        test_readers.test_resume_gets_exactly_the_missed_events,
        test_readers.test_bad_readers_are_closed_with_a_code_and_others_unaffected,
    ],
    ids=lambda f: f.__name__,
)
async def test_asgi_fallback_behaves_the_same(
    asgi_node: PushhubProcess,
    token: str,
    scenario: Callable[[PushhubProcess, Editor], Awaitable[None]],
) -> None:
    editor = Editor(asgi_node.url, token)
    try:
        await scenario(asgi_node, editor)
    finally:
        await editor.aclose()


async def test_deflate_readers_get_one_shared_compressed_frame(
    server: PushhubProcess, editor: Editor
) -> None:
    await editor.blog("b")
    body = "The leaders pass the harbour bridge. " * 200
    plain = await WsReader(server.ws_url, "b").connect(compression=None)
    squeezed = await WsReader(server.ws_url, "b").connect()  # offers permessage-deflate
    assert plain.ws is not None and squeezed.ws is not None
    ext = squeezed.ws.response.headers["sec-websocket-extensions"]
    assert ext.startswith("permessage-deflate") and "server_no_context_takeover" in ext
    assert "sec-websocket-extensions" not in plain.ws.response.headers
    await plain.recv()
    await squeezed.recv()
    published = [await editor.publish("b", body) for _ in range(3)]
    await plain.until_seq(published[-1]["seq"])
    await squeezed.until_seq(published[-1]["seq"])
    assert plain.copy.entries == squeezed.copy.entries
    # Readers may send compressed messages too: a compressed ping gets its pong.
    await squeezed.ws.send('{"type":"ping"}')
    async with asyncio.timeout(5):
        assert json.loads(await squeezed.ws.recv()) == {"type": "pong"}
    await plain.close()
    await squeezed.close()


@pytest.mark.parametrize("min_bytes", [1024, 0])
async def test_compressed_bytes_on_the_wire_are_context_free(
    min_bytes: int, tmp_path: Path, token: str
) -> None:
    """Read the raw frames of a deflate reader and inflate each with a fresh decompressor:
    that only works if every message was compressed without shared context. Frames under
    PUSHHUB_DEFLATE_MIN_BYTES go out plain (RFC 7692 lets each message choose)."""
    env = {"PUSHHUB_DEFLATE_MIN_BYTES": str(min_bytes)}
    node = PushhubProcess(tmp_path / "node", extra_env=env).start()
    editor = Editor(node.url, token)
    try:
        await editor.blog("b")
        reader, writer = await asyncio.open_connection("127.0.0.1", node.port)
        writer.write(
            b"GET /ws/blogs/b HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
        )
        async with asyncio.timeout(5):
            head = await reader.readuntil(b"\r\n\r\n")
        assert b" 101 " in head and b"server_no_context_takeover" in head
        texts: list[dict[str, object]] = []
        compressed: list[bool] = []

        async def read_frame() -> dict[str, object]:
            b0, payload = await read_raw_frame(reader)
            if b0 & 0x40:
                payload = zlib.decompressobj(-15).decompress(payload + b"\x00\x00\xff\xff")
            compressed.append(bool(b0 & 0x40))
            plain_frame = len(payload) + (2 if len(payload) < 126 else 4)
            assert compressed[-1] == (plain_frame >= min_bytes), (plain_frame, b0)
            texts.append(json.loads(payload))
            return texts[-1]

        async with asyncio.timeout(5):
            await read_frame()  # the snapshot of the empty blog, before anything is published
            # A short entry (its frame under 1024 bytes) and long ones.
            last = await editor.publish("b", "short")
            for i in range(3):
                last = await editor.publish("b", f"same words again and again {i} " * 50)
            while (await read_frame())["seq"] != last["seq"]:
                pass
        assert texts[0]["type"] == "snapshot"
        seqs = [t["seq"] for t in texts]
        assert all(t["type"] == "event" for t in texts[1:])
        assert seqs == list(range(int(str(seqs[0])), last["seq"] + 1))
        assert any(compressed)
        assert all(compressed) == (min_bytes == 0)
        writer.close()
    finally:
        await editor.aclose()
        node.kill()
