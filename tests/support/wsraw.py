"""Reading WebSocket frames off a raw stream, for tests that speak the wire themselves."""

from __future__ import annotations

import asyncio


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One server frame (servers do not mask): its first byte (FIN, RSV, opcode) and payload."""
    first, second = await reader.readexactly(2)
    length = second & 0x7F
    if length == 126:
        length = int.from_bytes(await reader.readexactly(2), "big")
    elif length == 127:
        length = int.from_bytes(await reader.readexactly(8), "big")
    return first, await reader.readexactly(length)
