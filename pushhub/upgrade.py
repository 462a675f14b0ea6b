"""uvicorn's WebSocket protocol for pushhub's fast path: the handshake, then hand-over.

uvicorn parses the HTTP request and, on an upgrade, hands the connection to the `ws` protocol
class it was configured with (`uvicorn.run(ws=...)`). This one runs the ASGI app for the
handshake exactly as uvicorn's own does (same scope; `websocket.accept`, `websocket.close` and
denial responses), and then expects the reader route to take the transport over (wire.py).
It does not keep what a general-purpose protocol keeps per connection (a queue, an event, a
sans-I/O parser, a keepalive timer, a log line), which is most of the CPU of a handshake; a
reconnect storm is made of handshakes.

After `websocket.accept`, a connection that is not taken over can still be sent text and be
closed, but what the client sends is not delivered to `receive`: only the fast path uses this
class. `PUSHHUB_WIRE=asgi` serves readers with uvicorn's own protocol instead.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from pushhub.handshake import (
    Headers,
    Refusal,
    http_response,
    parse_upgrade,
    refusal_response,
    switching_protocols,
)
from pushhub.wsframes import OP_BINARY, OP_TEXT, close_frame, encode_frame

log = logging.getLogger("pushhub.upgrade")

# Clients must wait for the 101 before sending; this bounds what one that does not can park.
MAX_EARLY_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class Handover:
    """What the route takes over: the transport, the 101 it must write before anything else,
    and whatever the client sent before it."""

    transport: asyncio.Transport
    head: bytes
    early: bytes


class ClientGone(Exception):
    """Raised by `send` once the client has gone, as ASGI servers signal it; the route ends."""


class ReaderUpgrade(asyncio.Protocol):
    """One upgrade request, from uvicorn's hand-over until the reader route takes over."""

    def __init__(
        self,
        config: Any,
        server_state: Any,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        if not config.loaded:
            config.load()
        self.config = config
        self.app = config.loaded_app
        self.app_state = app_state
        self.connections: set[Any] = server_state.connections
        self.tasks: set[asyncio.Task[None]] = server_state.tasks
        self.default_headers: Headers = server_state.default_headers
        self.transport: asyncio.Transport | None = None
        self.early = bytearray()  # bytes sent before the hand-over, handed on with it
        self.head = b""  # the 101, until it is written or handed over
        self.key = b""
        self.handshake_complete = False
        self.taken = False
        self._requested = False
        self._connect_given = False
        self._gone: asyncio.Future[None] | None = None
        self._denial: tuple[int, Headers, list[bytes]] | None = None

    # -- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.connections.add(self)

    def data_received(self, data: bytes) -> None:
        if self._requested:
            self.early += data
            if len(self.early) > MAX_EARLY_BYTES:
                self._close()
            return
        self._requested = True
        verdict = parse_upgrade(data)
        if isinstance(verdict, Refusal):
            self._write(refusal_response(verdict, self.default_headers))
            self._close()
            return
        transport = self.transport
        assert transport is not None
        self.key = verdict.key
        scope = {
            "type": "websocket",
            "asgi": {"version": self.config.asgi_version, "spec_version": "2.4"},
            "http_version": "1.1",
            "scheme": "wss" if transport.get_extra_info("sslcontext") else "ws",
            "server": _addr(transport.get_extra_info("sockname")),
            "client": _addr(transport.get_extra_info("peername")),
            "root_path": self.config.root_path,
            "path": self.config.root_path + verdict.path,
            "raw_path": self.config.root_path.encode("ascii") + verdict.raw_path,
            "query_string": verdict.query_string,
            "headers": verdict.headers,
            "subprotocols": verdict.subprotocols,
            "state": self.app_state.copy(),
            "extensions": {"websocket.http.response": {}},
        }
        task = asyncio.get_running_loop().create_task(self._run(scope))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def connection_lost(self, exc: Exception | None) -> None:
        self.connections.discard(self)
        self.transport = None
        if self._gone is not None and not self._gone.done():
            self._gone.set_result(None)

    def eof_received(self) -> bool:
        return False

    def shutdown(self) -> None:
        """uvicorn is stopping: a handshake still in progress is dropped."""
        if self.handshake_complete:
            self._write(close_frame(1012, "server restarting"))
        self._close()

    # -- the hand-over (wire.take_over) ---------------------------------------------------------

    def take_over(self) -> Handover | None:
        transport = self.transport
        if transport is None or transport.is_closing() or not self.head:
            return None
        self.taken = True
        self.transport = None
        self.connections.discard(self)
        handover = Handover(transport, self.head, bytes(self.early))
        self.head, self.early = b"", bytearray()
        return handover

    # -- ASGI ---------------------------------------------------------------------------------

    async def _run(self, scope: dict[str, Any]) -> None:
        try:
            await self.app(scope, self.receive, self.send)
        except ClientGone:
            pass
        except asyncio.CancelledError:  # the server is stopping: not the route's failure
            self._close()
            raise
        except BaseException:
            log.exception("exception in the reader route")
            if not self.handshake_complete:
                self._write(http_response(500, self.default_headers, b"Internal Server Error"))
            self._close()
            return
        if not self.handshake_complete:
            log.error("the reader route returned without answering the handshake")
            self._write(http_response(500, self.default_headers, b"Internal Server Error"))
        if not self.taken:
            self._close()

    async def receive(self) -> dict[str, Any]:
        if not self._connect_given:
            self._connect_given = True
            return {"type": "websocket.connect"}
        self._write(b"")  # the 101, if still held
        if self.transport is not None:
            if self._gone is None:
                self._gone = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._gone)
        return {"type": "websocket.disconnect", "code": 1006}

    async def send(self, message: dict[str, Any]) -> None:
        if self.transport is None:
            raise ClientGone
        kind = message["type"]
        if self.handshake_complete:
            self._send_after_accept(message)
        elif kind == "websocket.accept":
            headers = list(self.default_headers) + list(message.get("headers") or [])
            if message.get("subprotocol"):
                headers.append((b"sec-websocket-protocol", message["subprotocol"].encode()))
            self.handshake_complete = True
            # Held back, so that the route can send it with the reader's first frames.
            self.head = switching_protocols(self.key, headers)
        elif kind == "websocket.close":
            self.handshake_complete = True
            self._write(http_response(403, self.default_headers, b""))
            self._close()
        elif kind == "websocket.http.response.start" and self._denial is None:
            self._denial = (message["status"], list(message.get("headers") or []), [])
        elif kind == "websocket.http.response.body" and self._denial is not None:
            self._denial[2].append(message.get("body", b""))
            if not message.get("more_body", False):
                status, headers, parts = self._denial
                self.handshake_complete = True
                headers = [*self.default_headers, *headers]
                self._write(http_response(status, headers, b"".join(parts)))
                self._close()
        else:
            raise RuntimeError(f"unexpected ASGI message {kind!r} during the handshake")

    def _send_after_accept(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "websocket.send":
            if message.get("text") is not None:
                self._write(encode_frame(OP_TEXT, message["text"].encode()))
            else:
                self._write(encode_frame(OP_BINARY, message.get("bytes") or b""))
        elif kind == "websocket.close":
            self._write(close_frame(message.get("code", 1000), message.get("reason") or ""))
            self._close()
        else:
            raise RuntimeError(f"unexpected ASGI message {kind!r} after the handshake")

    # -- helpers --------------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        if self.head:
            data, self.head = self.head + data, b""
        if self.transport is not None and data:
            self.transport.write(data)

    def _close(self) -> None:
        self._write(b"")
        if self.transport is not None:
            self.transport.close()


def _addr(info: Any) -> tuple[str, int] | None:
    if isinstance(info, tuple | list) and len(info) >= 2:
        return str(info[0]), int(info[1])
    return None
