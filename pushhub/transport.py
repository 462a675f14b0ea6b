"""The one place that reaches below ASGI: uvicorn's WebSocket transport, to abort a peer that
stopped reading. ASGI offers no abort, and uvicorn's `send` (close included) waits for the
transport to drain, which a stuck peer never lets happen.

Checked against uvicorn 0.54 (websockets-sansio and websockets implementations); when the
attribute is missing we fall back to letting uvicorn close the connection on its own.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.websockets import WebSocket


def transport_of(ws: WebSocket) -> asyncio.Transport | None:
    protocol: Any = getattr(ws._receive, "__self__", None)
    transport = getattr(protocol, "transport", None)
    # uvloop's transports are not asyncio.Transport subclasses; abort() is what we need.
    return transport if callable(getattr(transport, "abort", None)) else None


def abort(ws: WebSocket) -> bool:
    transport = transport_of(ws)
    if transport is None:
        return False
    transport.abort()
    return True
