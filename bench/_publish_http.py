"""A minimal HTTP/1.1 keep-alive client for the editors of `bench.publish`.

The editors run in the benchmark's own process on the same two cores as the server. httpx
spends a few hundred µs of CPU per request on its own machinery; this writes the request bytes
and reads one Content-Length response, so the publish rate measured is the server's, not the
client's. It speaks only what pushhub answers with (no chunked bodies, no redirects).
"""

from __future__ import annotations

import asyncio
import contextlib


class ProtocolError(Exception):
    """The answer was not an HTTP/1.1 response this client can read."""


class Connection:
    """One editor's connection. Not safe for concurrent requests: a closed loop, one at a time."""

    def __init__(self, host: str, port: int, headers: dict[str, str]) -> None:
        self.host = host
        self.port = port
        fixed = {"Host": f"{host}:{port}", **headers}
        self._fixed = "".join(f"{k}: {v}\r\n" for k, v in fixed.items()).encode("latin-1")
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def connect(self) -> None:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)

    async def request(
        self, method: str, path: str, body: bytes, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        """(status, body). Any exception leaves the connection closed; the next call reopens."""
        await self.connect()
        reader, writer = self._reader, self._writer
        assert reader is not None and writer is not None
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items()).encode("latin-1")
        try:
            writer.write(
                f"{method} {path} HTTP/1.1\r\n".encode("latin-1")
                + self._fixed
                + extra
                + b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
                + body
            )
            head = await reader.readuntil(b"\r\n\r\n")
            status, length, close = _parse_head(head)
            data = await reader.readexactly(length)
        except BaseException:
            # A cancelled or failed request may leave half an answer in the stream.
            self.close()
            raise
        if close:
            self.close()
        return status, data

    def close(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.transport.abort()
        self._reader = self._writer = None


def _parse_head(head: bytes) -> tuple[int, int, bool]:
    """(status, content length, server will close) from a response's status line and headers."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise ProtocolError(f"bad status line {lines[0][:80]!r}")
    length: int | None = None
    close = parts[0] == "HTTP/1.0"
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value.strip())
        elif name == "transfer-encoding":
            raise ProtocolError(f"transfer-encoding {value.strip()} is not supported")
        elif name == "connection":
            close = value.strip().lower() == "close"
    if length is None:
        raise ProtocolError("response without Content-Length")
    return int(parts[1]), length, close
