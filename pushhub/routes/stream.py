"""Live readers: the WebSocket route and its SSE fallback."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from pushhub.errors import NotFound, PushhubError, Unavailable
from pushhub.hub import Channel
from pushhub.protocol import (
    PONG,
    CloseCode,
    Frame,
    Position,
    ProtocolError,
    parse_position,
    reader_message,
)
from pushhub.readers import Kicked, QueueReader
from pushhub.routes.common import (
    check_origin,
    error_response,
    position,
    reader_origin_ok,
    runtime,
)
from pushhub.runtime import Runtime
from pushhub.upgrade import Handover
from pushhub.wire import WireReader, abort, can_take_over, mark_denied, take_over
from pushhub.wsframes import DeflateOffer, negotiate_deflate

log = logging.getLogger("pushhub.stream")
PONG_FRAME = Frame(0, PONG)
NO_DEFLATE = DeflateOffer(False)
CLOSE_GRACE = 1.0


async def websocket_endpoint(ws: WebSocket) -> None:
    rt: Runtime = ws.app.state.runtime
    ip = ws.client.host if ws.client else "?"
    try:
        rt.admit_reader(ip)
    except PushhubError as exc:
        # Refused before the upgrade: the client sees a plain HTTP status (429/503).
        await ws.send_denial_response(error_response(exc))
        mark_denied(ws)
        return
    handed_over = False
    try:
        handed_over = await _serve_reader(rt, ws)
    finally:
        if not handed_over:
            rt.release_reader(ip)


async def _serve_reader(rt: Runtime, ws: WebSocket) -> bool:
    """Serve one reader; True when its connection now lives on in wire.py (which releases
    the reader's admission when the connection ends)."""
    fast = rt.settings.wire == "fast" and can_take_over(ws)
    offer = negotiate_deflate(ws.headers.get("sec-websocket-extensions")) if fast else NO_DEFLATE
    headers = [(b"sec-websocket-extensions", offer.response.encode())] if offer.accept else None
    await ws.accept(headers=headers)
    # Take the transport over before anything else awaits: the reader may send right after
    # the 101, and only our parser knows the deflate we negotiated.
    taken = take_over(ws) if fast else None
    if taken is not None:
        _serve_wire(rt, ws, taken, offer)
        return True
    if not fast:
        await _serve_asgi(rt, ws)
    return False  # fast, but the reader left during the handshake


def _serve_wire(rt: Runtime, ws: WebSocket, taken: Handover, offer: DeflateOffer) -> None:
    ip = ws.client.host if ws.client else "?"
    transport = taken.transport
    reader = WireReader(
        transport, rt.wire, deflate=offer.accept,
        inflate_bits=offer.client_window_bits, inflate_reset=offer.client_no_context,
    )  # fmt: skip
    acquired: list[Channel] = []

    def lost() -> None:
        for ch in acquired:
            rt.hub.detach(ch, reader)
            rt.hub.release(ch)
        rt.release_reader(ip)

    reader.on_lost = lost
    transport.set_protocol(reader)
    rt.wire.adopt(reader)
    opened = _open_warm(rt, ws)
    if opened is not None:
        # The 101 and the catch-up leave in one write: one send, one packet.
        reader.prefix = taken.head
        _attach(rt, reader, acquired, opened)
        reader.flush()
    else:
        # The blog is not warm here: load it in a task of its own; the endpoint returns now.
        transport.write(taken.head)
        rt.wire.track(asyncio.create_task(_attach_cold(rt, ws, reader, acquired)))
    if taken.early:
        reader.data_received(taken.early)


Opened = tuple[Position, Channel] | tuple[int, str]


async def _open(rt: Runtime, ws: WebSocket) -> Opened:
    """The reader's position and its blog's warm channel, or the close code and reason that
    refuse it. Both WebSocket paths use it."""
    blog = ws.path_params["blog"]
    try:
        pos = _position(ws)
        ch = await rt.hub.acquire(blog)
    except ProtocolError as exc:
        return exc.code, exc.reason
    except NotFound:
        return CloseCode.UNKNOWN_BLOG, f"no blog named {blog!r}"[:120]
    except Unavailable:
        return CloseCode.TRY_AGAIN_LATER, "store unavailable; reconnect with backoff"
    return _allowed(rt, ws, pos, ch)


def _open_warm(rt: Runtime, ws: WebSocket) -> Opened | None:
    """`_open` without awaiting, for a blog already warm here; None when it is not."""
    ch = rt.hub.acquire_warm(ws.path_params["blog"])
    if ch is None:
        return None
    try:
        pos = _position(ws)
    except ProtocolError as exc:
        rt.hub.release(ch)
        return exc.code, exc.reason
    return _allowed(rt, ws, pos, ch)


def _position(ws: WebSocket) -> Position:
    return parse_position(ws.query_params.get("since"), ws.query_params.get("epoch"))


def _allowed(rt: Runtime, ws: WebSocket, pos: Position, ch: Channel) -> Opened:
    if not reader_origin_ok(ch.live.blog, ws.headers):
        rt.hub.release(ch)
        return CloseCode.ORIGIN_NOT_ALLOWED, "origin not allowed for this blog"
    return pos, ch


async def _attach_cold(
    rt: Runtime, ws: WebSocket, reader: WireReader, acquired: list[Channel]
) -> None:
    _attach(rt, reader, acquired, await _open(rt, ws))


def _attach(rt: Runtime, reader: WireReader, acquired: list[Channel], opened: Opened) -> None:
    if isinstance(opened[1], str):
        reader.kick(int(opened[0]), opened[1])
        return
    pos, ch = opened
    if reader.closed:  # left while we were loading the blog
        rt.hub.release(ch)
        return
    acquired.append(ch)
    rt.hub.attach(ch, reader, pos)


async def _serve_asgi(rt: Runtime, ws: WebSocket) -> None:
    opened = await _open(rt, ws)
    if isinstance(opened[1], str):
        await ws.close(int(opened[0]), opened[1])
        return
    pos, ch = opened
    reader = QueueReader(rt.settings.reader_queue, "websocket")
    pump: asyncio.Task[None] | None = None
    try:
        rt.hub.attach(ch, reader, pos)
        pump = asyncio.create_task(_pump(ws, reader))
        await _receive(ws, reader, pump)
    finally:
        rt.hub.detach(ch, reader)
        rt.hub.release(ch)
        if pump is not None and not pump.done():
            pump.cancel()
            with contextlib.suppress(BaseException):
                await pump


async def _pump(ws: WebSocket, reader: QueueReader) -> None:
    send = ws.send
    with contextlib.suppress(Kicked, WebSocketDisconnect, OSError, RuntimeError):
        while True:
            for frame in await reader.take():
                await send({"type": "websocket.send", "text": frame.text})


async def _receive(ws: WebSocket, reader: QueueReader, pump: asyncio.Task[None]) -> None:
    """Read what the reader sends until it leaves, the pump ends, or the hub kicks it."""
    recv = asyncio.ensure_future(ws.receive())
    kicked = asyncio.ensure_future(reader.kicked.wait())
    try:
        while True:
            done, _ = await asyncio.wait({recv, pump, kicked}, return_when=asyncio.FIRST_COMPLETED)
            if kicked in done:
                await _close_kicked(ws, reader, pump)
                return
            if pump in done:
                return
            message = recv.result()
            if message["type"] == "websocket.disconnect":
                return
            try:
                reader_message(message.get("text"), message.get("bytes"))
                reader.push(PONG_FRAME)
            except ProtocolError as exc:
                reader.kick(exc.code, exc.reason)
                continue
            recv = asyncio.ensure_future(ws.receive())
    finally:
        for task in (recv, kicked):
            if not task.done():
                task.cancel()


async def _close_kicked(ws: WebSocket, reader: QueueReader, pump: asyncio.Task[None]) -> None:
    pump.cancel()
    reason = reader.kick_reason
    assert reason is not None
    try:
        # A peer that reads gets a close frame with the reason; one that stopped reading
        # never drains its buffer, so after a short grace the connection is cut.
        async with asyncio.timeout(CLOSE_GRACE):
            await ws.close(reason.code, reason.reason)
    except (TimeoutError, RuntimeError, OSError, WebSocketDisconnect):
        abort(ws)


async def sse_endpoint(request: Request) -> Response:
    rt = runtime(request)
    blog = request.path_params["blog"]
    q = request.query_params
    last_id = request.headers.get("last-event-id")
    pos = position(last_id if last_id else q.get("since"), q.get("epoch"))
    ip = request.client.host if request.client else "?"
    rt.admit_reader(ip)
    try:
        ch = await rt.hub.acquire(blog)
    except BaseException:
        rt.release_reader(ip)
        raise
    try:
        origin = request.headers.get("origin")
        check_origin(ch.live.blog, request.headers)
        reader = QueueReader(rt.settings.reader_queue, "sse")
        rt.hub.attach(ch, reader, pos)
    except BaseException:
        rt.hub.release(ch)
        rt.release_reader(ip)
        raise
    headers = {
        "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no",
    }
    if origin is not None:
        headers["Access-Control-Allow-Origin"] = origin
        headers["Vary"] = "Origin"

    async def stream() -> AsyncIterator[bytes]:
        try:
            yield b"retry: 2000\n\n"
            while True:
                try:
                    async with asyncio.timeout(rt.settings.sse_heartbeat):
                        frames = await reader.take()
                except TimeoutError:
                    yield b": ping\n\n"
                    continue
                yield b"".join(f.sse() for f in frames)
        except Kicked as kicked:
            log.info("sse reader on %s closed: %s", blog, kicked.reason)
        finally:
            rt.hub.detach(ch, reader)
            rt.hub.release(ch)
            rt.release_reader(ip)

    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)


routes = [
    WebSocketRoute("/ws/blogs/{blog}", websocket_endpoint),
    Route("/sse/blogs/{blog}", sse_endpoint, methods=["GET"]),
]
