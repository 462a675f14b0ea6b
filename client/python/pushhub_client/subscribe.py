"""Follow a blog over the WebSocket: every change exactly once, in order, across reconnects.

`Subscription` is an async iterator of frames. The first is a snapshot (unless you resume with
`since`); then one event per change. When the connection drops or the server restarts it
reconnects by itself, with capped exponential backoff and jitter, and resumes after the last seq
it delivered; replayed frames are dropped and a gap makes it reconnect, so nothing is lost or
repeated. If the blog's history was replaced (new epoch) it delivers a snapshot with `reset`.
"""

from __future__ import annotations

import asyncio
import enum
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
from websockets.typing import Origin

from pushhub_client._retry import Backoff
from pushhub_client.cursor import Cursor, Verdict
from pushhub_client.errors import (
    AuthError,
    NotFound,
    ProtocolError,
    PushHubError,
    Unavailable,
    from_response,
)
from pushhub_client.models import Frame, parse_frame
from pushhub_client.version import USER_AGENT


class CloseCode(enum.IntEnum):
    """WebSocket close codes of the protocol (docs/protocol.md)."""

    NORMAL = 1000
    GOING_AWAY = 1001
    UNSUPPORTED_DATA = 1003
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_QUERY = 4400
    ORIGIN_FORBIDDEN = 4403
    UNKNOWN_BLOG = 4404


# Closes that mean our request is wrong: reconnecting would only be refused again.
_FATAL_CLOSES: dict[int, type[PushHubError]] = {
    CloseCode.UNSUPPORTED_DATA: ProtocolError,
    CloseCode.POLICY_VIOLATION: ProtocolError,
    CloseCode.MESSAGE_TOO_BIG: ProtocolError,
    CloseCode.BAD_QUERY: ProtocolError,
    CloseCode.ORIGIN_FORBIDDEN: AuthError,
    CloseCode.UNKNOWN_BLOG: NotFound,
}

# A connection that delivered a frame or stayed up this long was healthy: the next reconnect
# starts again from the shortest delay.
_HEALTHY_AFTER = 5.0


@dataclass(frozen=True)
class Connected:
    """The WebSocket is open; it resumes after seq `resumed_after` (None: from a snapshot)."""

    url: str
    resumed_after: int | None
    attempt: int


@dataclass(frozen=True)
class Disconnected:
    """The connection is down (or could not be opened); the next try is in `retry_in` seconds."""

    reason: str
    retry_in: float
    attempt: int
    code: int | None = None


ConnectionEvent = Connected | Disconnected


def websocket_url(base_url: str, blog: str, query: dict[str, str] | None = None) -> str:
    """`http://host:port` (or `ws://…`) and a slug → `ws://host:port/ws/blogs/{slug}?…`."""
    parts = urlsplit(base_url.rstrip("/"))
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    path = f"{parts.path}/ws/blogs/{quote(blog, safe='')}"
    return urlunsplit((scheme, parts.netloc, path, urlencode(query or {}), ""))


class Subscription:
    """An async iterator of a blog's frames (`Snapshot` and `Event`) that never misses or
    repeats one. Use it as `async with hub.subscribe("slug") as sub: async for frame in sub`.

    It ends (StopAsyncIteration) when the server closes normally (1000). It raises `NotFound`
    for an unknown blog, `AuthError` for a forbidden origin, `ProtocolError` when the server
    refuses what we sent, and `Unavailable` after `max_attempts` failed connects in a row
    (default: never give up). `on_connection` is told of every connect and disconnect.
    """

    def __init__(
        self,
        url: str,
        blog: str,
        *,
        since: int | None = None,
        epoch: str | None = None,
        backoff: Backoff | None = None,
        max_attempts: int | None = None,
        on_connection: Callable[[ConnectionEvent], None] | None = None,
        origin: str | None = None,
        open_timeout: float = 10.0,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
    ) -> None:
        self.url = url
        self.blog = blog
        self.backoff = backoff or Backoff(initial=0.5, factor=2.0, cap=30.0, jitter=0.5)
        self.max_attempts = max_attempts
        self.on_connection = on_connection
        self.origin = origin
        self.open_timeout = open_timeout
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self._cursor = Cursor(since, epoch)
        self._ws: ClientConnection | None = None
        self._closed = False
        self._attempt = 0
        self._delay: float | None = None
        self._connected_at = 0.0
        self._delivered_since_connect = False

    @property
    def seq(self) -> int | None:
        """The seq of the last frame delivered: pass it as `since` to resume later."""
        return self._cursor.seq

    @property
    def epoch(self) -> str | None:
        return self._cursor.epoch

    def __aiter__(self) -> Subscription:
        return self

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        self._closed = True
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close()

    async def __anext__(self) -> Frame:
        while True:
            if self._closed:
                raise StopAsyncIteration
            ws = self._ws or await self._connect()
            try:
                message = await ws.recv()
            except ConnectionClosed as exc:
                self._on_closed(exc)
                continue
            frame = self._decode(message)
            if frame is None:
                continue
            verdict = self._cursor.accept(frame)
            if verdict is Verdict.DUPLICATE:
                continue
            if verdict is Verdict.GAP:
                self._ws = None
                await ws.close()
                self._retry_later(f"missing events after seq {self._cursor.seq}", None)
                continue
            self._delivered_since_connect = True
            return frame

    def _decode(self, message: str | bytes) -> Frame | None:
        if isinstance(message, bytes):
            raise ProtocolError("the server sent a binary WebSocket frame")
        try:
            data = json.loads(message)
        except ValueError:
            raise ProtocolError(
                f"the server sent a frame that is not JSON: {message!r:.100}"
            ) from None
        return parse_frame(data) if isinstance(data, dict) else None

    async def _connect(self) -> ClientConnection:
        while True:
            if self._delay is not None:
                await asyncio.sleep(self._delay)
                self._delay = None
            if self._closed:
                raise StopAsyncIteration
            url = websocket_url(self.url, self.blog, self._cursor.query())
            try:
                ws = await connect(
                    url,
                    origin=Origin(self.origin) if self.origin else None,
                    user_agent_header=USER_AGENT,
                    open_timeout=self.open_timeout,
                    ping_interval=self.ping_interval,
                    ping_timeout=self.ping_timeout,
                )
            except InvalidURI as exc:
                raise ProtocolError(f"bad server URL {self.url!r}: {exc}") from None
            except InvalidStatus as exc:
                status = exc.response.status_code
                error = from_response(status, bytes(exc.response.body or b""), exc.response.headers)
                if status < 500 and status != 429:
                    raise error from None
                self._retry_later(f"the server answered HTTP {status}", None)
            except (OSError, TimeoutError, InvalidHandshake) as exc:
                self._retry_later(_describe(exc), None)
            else:
                self._ws = ws
                self._connected_at = time.monotonic()
                self._delivered_since_connect = False
                self._notify(Connected(url, self._cursor.seq, self._attempt))
                return ws

    def _on_closed(self, exc: ConnectionClosed) -> None:
        self._ws = None
        code = exc.rcvd.code if exc.rcvd is not None else None
        reason = exc.rcvd.reason if exc.rcvd is not None else ""
        if code == CloseCode.NORMAL:
            self._closed = True
            return
        if code is not None and code in _FATAL_CLOSES:
            raise _FATAL_CLOSES[code](
                f"the server closed the connection with {code}" + (f": {reason}" if reason else ""),
                code=f"close_{code}",
            )
        healthy = (
            self._delivered_since_connect or time.monotonic() - self._connected_at >= _HEALTHY_AFTER
        )
        if healthy:
            self._attempt = 0
        what = f"closed with {code}" + (f" ({reason})" if reason else "") if code else "dropped"
        self._retry_later(f"connection {what}", code)

    def _retry_later(self, reason: str, code: int | None) -> None:
        if self.max_attempts is not None and self._attempt + 1 >= self.max_attempts:
            raise Unavailable(f"gave up after {self._attempt + 1} tries: {reason}")
        self._delay = self.backoff.delay(self._attempt)
        self._attempt += 1
        self._notify(Disconnected(reason, self._delay, self._attempt, code))

    def _notify(self, event: ConnectionEvent) -> None:
        if self.on_connection is not None:
            self.on_connection(event)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out opening the connection"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
