"""The fast path for WebSocket readers: below ASGI, in this module and upgrade.py.

`pushhub serve` gives uvicorn our own WebSocket protocol class (upgrade.py), which runs the
Starlette route for the handshake and then lets the route take the transport over: a small
protocol object of ours serves the reader from then on, and the endpoint returns. No task,
coroutine or ASGI scope lives per idle reader. Each event's frame is built (and compressed)
once and written to every reader's transport as the same bytes; a reader whose transport
buffer passes the bound is cut off.

When the connection is served by anything else (uvicorn's own protocol: `PUSHHUB_WIRE=asgi`,
or pushhub run under a bare `uvicorn` command), `can_take_over` says no and the route uses the
plain ASGI path (`routes/stream.py`), which tests cover too. Two helpers for that path, `abort`
and `mark_denied`, reach into uvicorn's websockets-sansio protocol (`transport`,
`initial_response`, `handshake_complete`), checked against uvicorn 0.54;
tests/integration/test_wire.py fails loudly if those internals or the hand-over move.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import zlib
from collections.abc import Callable
from typing import Any

from starlette.websockets import WebSocket

from pushhub.protocol import PONG, CloseCode, Frame, ProtocolError, reader_message
from pushhub.upgrade import Handover, ReaderUpgrade
from pushhub.wsframes import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    PING_FRAME,
    FrameError,
    close_frame,
    encode_frame,
    parse_client_frames,
)

log = logging.getLogger("pushhub.wire")

CHECKED_UVICORN_PROTOCOL = "WebSocketsSansIOProtocol"
# Readers send tiny messages; more pieces than this is abuse, not fragmentation.
MAX_FRAGMENTS = 16
CLOSE_GRACE = 1.0
# The keepalive round's slots take their turns this far apart (s).
KEEPALIVE_TICK = 0.1
PONG_FRAME = Frame(0, PONG)


def _server_protocol(ws: WebSocket) -> Any:
    # `receive` reaches the endpoint untouched (`send` is wrapped by Starlette middleware), so
    # it is a bound method of whatever protocol object serves this connection.
    return getattr(ws._receive, "__self__", None)


def _uvicorn_protocol(ws: WebSocket) -> Any:
    proto = _server_protocol(ws)
    if type(proto).__name__ != CHECKED_UVICORN_PROTOCOL or not hasattr(proto, "transport"):
        return None
    return proto


def can_take_over(ws: WebSocket) -> bool:
    return isinstance(_server_protocol(ws), ReaderUpgrade)


def take_over(ws: WebSocket) -> Handover | None:
    """The reader's connection after `websocket.accept`; None when the connection is not ours
    to take or already closing."""
    proto = _server_protocol(ws)
    if not isinstance(proto, ReaderUpgrade):
        return None
    taken = proto.take_over()
    if taken is not None:
        _cap_send_buffer(taken.transport)
    return taken


def abort(ws: WebSocket) -> bool:
    """Cut a connection still served by uvicorn (the ASGI path): ASGI has no abort, and
    uvicorn's close waits for a buffer that a stalled peer never drains."""
    proto = _uvicorn_protocol(ws)
    if proto is None:
        return False
    proto.transport.abort()
    return True


def mark_denied(ws: WebSocket) -> None:
    """uvicorn 0.54 logs "returned without completing handshake" after a denial response it
    sent itself; tell it the handshake is settled so refusals don't flood the error log."""
    proto = _uvicorn_protocol(ws)
    if proto is not None and getattr(proto, "initial_response", None) is not None:
        proto.handshake_complete = True


# The kernel's send buffer autotunes up to megabytes per socket; capping it bounds both the
# memory a stalled reader can hold and how late it is noticed (PUSHHUB_READER_BUFFER_BYTES
# counts only what waits above the kernel).
SOCKET_SEND_BUFFER = 256 * 1024


def _cap_send_buffer(transport: asyncio.Transport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_SEND_BUFFER)


class WireReader(asyncio.Protocol):
    """One reader's connection after the handshake: a `ReaderSink` for the hub and the
    asyncio protocol that reads what the reader sends."""

    kind = "websocket"  # the transport, for the metrics

    __slots__ = (
        "_frag_size",
        "_fragments",
        "_inflater",
        "_rsv1_first",
        "buf",
        "closed",
        "closing",
        "deflate",
        "deflate_min",
        "inflate_bits",
        "inflate_reset",
        "last_seen",
        "limit",
        "max_message",
        "on_lost",
        "pool",
        "prefix",
        "slot",
        "transport",
    )

    def __init__(
        self, transport: asyncio.Transport, pool: WirePool, *, deflate: bool,
        inflate_bits: int, inflate_reset: bool,
    ) -> None:  # fmt: skip
        self.transport = transport
        self.pool = pool
        self.limit = pool.buffer_limit
        self.max_message = pool.max_message
        self.deflate = deflate
        self.deflate_min = pool.deflate_min_bytes
        self.inflate_bits = inflate_bits
        self.inflate_reset = inflate_reset
        self._inflater: Any = None  # made on the first compressed message: readers rarely send
        self._fragments: list[bytes] | None = None
        self._frag_size = 0
        self._rsv1_first = False
        self.buf = bytearray()
        self.closing = False
        self.closed = False
        self.last_seen = pool.now()
        # Bytes that must go out first (the 101), sent with the catch-up or the close.
        self.prefix = b""
        self.on_lost: Callable[[], None] | None = None
        self.slot = 0  # its turn in the pool's keepalive round (WirePool.adopt)

    # -- ReaderSink ---------------------------------------------------------------------------

    def push(self, frame: Frame) -> bool:
        if self.closing:
            return True  # being closed: the hub need not kick it again
        transport = self.transport
        if transport.get_write_buffer_size() > self.limit:
            return False
        # _encoded(), inlined: this line runs once per reader per event.
        data = frame.ws()
        if self.deflate and len(data) >= self.deflate_min:
            data = frame.ws_deflate()
        transport.write(data)
        return True

    def push_all(self, frames: list[Frame]) -> bool:
        # One write (one send) for a whole catch-up: a storm of resumes is mostly these.
        if self.closing:
            return True
        transport = self.transport
        if transport.get_write_buffer_size() > self.limit:
            return False
        transport.write(self._prefixed(b"".join([self._encoded(f) for f in frames])))
        return transport.get_write_buffer_size() <= self.limit

    def _encoded(self, frame: Frame) -> bytes:
        data = frame.ws()
        if self.deflate and len(data) >= self.deflate_min:
            return frame.ws_deflate()
        return data

    def _prefixed(self, data: bytes) -> bytes:
        if self.prefix:
            data, self.prefix = self.prefix + data, b""
        return data

    def flush(self) -> None:
        if self.prefix and not self.closed:
            self.transport.write(self._prefixed(b""))

    def kick(self, code: int, reason: str) -> None:
        if self.closing:
            return
        self.closing = True
        self.transport.write(self._prefixed(close_frame(code, reason)))
        self.transport.close()
        # A peer that does not read never lets close() finish: cut it after a grace period.
        self.pool.loop.call_later(CLOSE_GRACE, self._abort)

    def _abort(self) -> None:
        if not self.closed:
            self.transport.abort()

    # -- asyncio.Protocol ---------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self.last_seen = self.pool.now()
        if self.closing:
            return
        self.buf += data
        try:
            for frame in parse_client_frames(self.buf, self.max_message):
                self._handle(frame.opcode, frame.fin, frame.rsv1, frame.payload)
                if self.closing:
                    return
        except FrameError as exc:
            self.kick(exc.code, exc.reason)
        except ProtocolError as exc:
            self.kick(exc.code, exc.reason)

    def _handle(self, opcode: int, fin: bool, rsv1: bool, payload: bytes) -> None:
        if opcode == OP_PING:
            # A reader that pings but never reads must not grow our buffer without bound.
            if self.transport.get_write_buffer_size() > self.limit:
                raise FrameError(1008, "pinging without reading")
            self.transport.write(encode_frame(OP_PONG, payload))
        elif opcode == OP_PONG:
            pass
        elif opcode == OP_CLOSE:
            self.closing = True
            self.transport.write(encode_frame(OP_CLOSE, _close_reply(payload)))
            self.transport.close()
        elif opcode in (OP_TEXT, OP_BINARY):
            if self._fragments is not None:
                raise FrameError(1002, "new message inside a fragmented one")
            if opcode == OP_BINARY:
                raise ProtocolError(CloseCode.UNSUPPORTED_DATA, "binary frames are not accepted")
            if fin:
                self._message(payload, rsv1)
            else:
                self._fragments = [payload]
                self._frag_size = len(payload)
                self._rsv1_first = rsv1
        elif opcode == OP_CONT:
            if self._fragments is None:
                raise FrameError(1002, "continuation without a message")
            self._fragments.append(payload)
            self._frag_size += len(payload)
            if self._frag_size > self.max_message:
                raise FrameError(1009, "message too big")
            if len(self._fragments) > MAX_FRAGMENTS:
                raise FrameError(1008, "too many fragments")
            if fin:
                parts, self._fragments = self._fragments, None
                self._message(b"".join(parts), self._rsv1_first)
        else:
            raise FrameError(1002, f"unknown opcode {opcode}")

    def _message(self, payload: bytes, compressed: bool) -> None:
        if compressed:
            if not self.deflate:
                raise FrameError(1002, "compressed frame without permessage-deflate")
            if self._inflater is None or self.inflate_reset:
                self._inflater = zlib.decompressobj(-self.inflate_bits)
            payload = self._inflater.decompress(payload + b"\x00\x00\xff\xff", self.max_message)
            if self._inflater.unconsumed_tail:
                raise FrameError(1009, "message too big")
        try:
            text = payload.decode()
        except UnicodeDecodeError:
            raise FrameError(1007, "text frame is not UTF-8") from None
        reader_message(text, None)
        self.push(PONG_FRAME)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.closing = True
        self.pool.discard(self)
        if self.on_lost is not None:
            on_lost, self.on_lost = self.on_lost, None
            on_lost()

    def eof_received(self) -> bool:
        return False


def _close_reply(payload: bytes) -> bytes:
    """Echo a valid close code (RFC 6455 7.4); answer anything else with 1002."""
    if not payload:
        return b""
    if len(payload) >= 2:
        code = int.from_bytes(payload[:2], "big")
        valid = code in (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011)
        valid = valid or 3000 <= code <= 4999
        try:
            payload[2:].decode()
        except UnicodeDecodeError:
            return (1007).to_bytes(2, "big")
        if valid:
            return payload[:2]
    return (1002).to_bytes(2, "big")


class WirePool:
    """Every fast-path reader of this process: keepalive pings and shutdown."""

    def __init__(
        self, *, buffer_limit: int, max_message: int, ping_interval: float,
        deflate_min_bytes: int = 0,
    ) -> None:  # fmt: skip
        self.buffer_limit = buffer_limit
        self.deflate_min_bytes = deflate_min_bytes
        self.max_message = max_message
        self.ping_interval = ping_interval
        # Every reader, each in the slot of its turn in the keepalive round.
        self._slots: list[set[WireReader]] = [
            set() for _ in range(max(1, round(ping_interval / KEEPALIVE_TICK)))
        ]
        self._next_slot = 0
        self._attaching: set[asyncio.Task[None]] = set()
        self.loop = asyncio.get_event_loop_policy().get_event_loop()
        self._task: asyncio.Task[None] | None = None

    def now(self) -> float:
        return self.loop.time()

    def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._keepalive(), name="pushhub-wire-keepalive")

    def track(self, task: asyncio.Task[None]) -> None:
        """Keep a reader's attach task referenced (and logged if it fails) until it is done."""
        self._attaching.add(task)
        task.add_done_callback(self._attached)

    def _attached(self, task: asyncio.Task[None]) -> None:
        self._attaching.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("attaching a reader failed", exc_info=task.exception())

    @property
    def readers(self) -> list[WireReader]:
        return [reader for due in self._slots for reader in due]

    def adopt(self, reader: WireReader) -> None:
        reader.slot = self._next_slot
        self._next_slot = (self._next_slot + 1) % len(self._slots)
        self._slots[reader.slot].add(reader)

    def discard(self, reader: WireReader) -> None:
        self._slots[reader.slot].discard(reader)

    async def _keepalive(self) -> None:
        # One timer for all readers: ping the quiet ones, cut those silent for two intervals.
        # Each reader has a slot, and the slots' turns come a tick apart: a ping and its pong
        # cost ~20 µs of the loop per reader, so one sweep of 5000 readers held every fan-out
        # ~0.1 s. Every reader is still looked at once per interval, at its own phase.
        while True:
            for due in self._slots:
                await asyncio.sleep(self.ping_interval / len(self._slots))
                self._check(list(due), self.now())

    def _check(self, readers: list[WireReader], now: float) -> None:
        for reader in readers:
            if reader.closing:
                continue
            idle = now - reader.last_seen
            if idle > 2 * self.ping_interval:
                reader.kick(1011, "keepalive ping timeout")
            elif idle > self.ping_interval / 2:
                reader.transport.write(PING_FRAME)

    async def close(self, code: int, reason: str, spread: float = 0.0) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        readers = self.readers
        random.shuffle(readers)
        for i, reader in enumerate(readers):
            reader.kick(code, reason)
            if spread and i % 100 == 99:
                await asyncio.sleep(spread * 100 / max(1, len(readers)))
