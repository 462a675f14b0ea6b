"""A real HTTP proxy on loopback that loses the server's first answers on purpose.

Each client connection carries one request: the proxy reads it, forwards it to the server with
`Connection: close`, reads the whole answer, and then, for the first `faults` requests, either
drops the client connection without a byte ("drop") or answers 502 ("502") instead of passing the
answer on. The server did the work; the client never heard. It runs its own event loop in a
thread so blocking and asyncio clients can both use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from dataclasses import dataclass
from typing import Literal

from tests.support.servers import HOST

Fault = Literal["drop", "502"]
BAD_GATEWAY = (
    b"HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/html\r\ncontent-length: 25\r\n"
    b"connection: close\r\n\r\n<html>Bad Gateway</html>\n"
)


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    idempotency_key: str | None
    answered: bool


class FaultyProxy:
    def __init__(self, upstream_port: int, *, faults: int = 1, fault: Fault = "drop") -> None:
        self.upstream_port = upstream_port
        self.faults = faults
        self.fault = fault
        self.seen: list[Seen] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def __enter__(self) -> FaultyProxy:
        self._thread.start()
        started = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        started.result(timeout=5)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._handle, HOST, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(10):
                await self._proxy_one(reader, writer)
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _proxy_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = re.search(rb"(?im)^content-length:\s*(\d+)\s*$", head)
        body = await reader.readexactly(int(length[1])) if length else b""
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        key = next(
            (
                ln.split(":", 1)[1].strip()
                for ln in lines
                if ln.lower().startswith("idempotency-key:")
            ),
            None,
        )
        kept = [ln for ln in lines[1:] if ln and not ln.lower().startswith("connection:")]
        request = "\r\n".join([lines[0], *kept, "Connection: close", "", ""]).encode("latin-1")

        up_reader, up_writer = await asyncio.open_connection(HOST, self.upstream_port)
        try:
            up_writer.write(request + body)
            await up_writer.drain()
            answer = await up_reader.read()  # the server closes after one answer
        finally:
            up_writer.close()
        faulty = len(self.seen) < self.faults
        self.seen.append(Seen(method, path, key, answered=not faulty))
        if not faulty:
            writer.write(answer)
        elif self.fault == "502":
            writer.write(BAD_GATEWAY)
        else:
            writer.transport.abort()  # a reset, as when a load balancer loses the backend
            return
        await writer.drain()
