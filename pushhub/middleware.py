"""Checks every request passes before routing: query and header sizes; and headers every
HTTP answer carries. Plain ASGI, so WebSocket handshakes are covered too."""

from __future__ import annotations

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_COMMON_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
]


class LimitsMiddleware:
    def __init__(self, app: ASGIApp, *, max_query: int, max_headers: int) -> None:
        self.app = app
        self.max_query = max_query
        self.max_headers = max_headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        refusal = None
        if len(scope.get("query_string", b"")) > self.max_query:
            refusal = (414, "bad_request", f"query string over {self.max_query} bytes")
        elif sum(len(k) + len(v) for k, v in scope["headers"]) > self.max_headers:
            refusal = (431, "bad_request", f"request headers over {self.max_headers} bytes")
        if refusal is not None:
            await _refuse(kind, send, *refusal)
            return
        if kind == "websocket":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in _COMMON_HEADERS if k not in names]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, with_headers)


async def _refuse(kind: str, send: Send, status: int, code: str, message: str) -> None:
    body = orjson.dumps({"error": code, "message": message})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    prefix = "http" if kind == "http" else "websocket.http"
    # A WebSocket handshake is refused with an HTTP answer (ASGI's denial-response extension).
    await send({"type": f"{prefix}.response.start", "status": status, "headers": headers})
    await send({"type": f"{prefix}.response.body", "body": body})
