"""Per-reader buffers: a bounded queue of shared frames that the hub fills without awaiting
and that one writer (a WebSocket pump or an SSE stream) empties."""

from __future__ import annotations

import asyncio
from collections import deque

from pushhub.protocol import Frame


class Kicked(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class QueueReader:
    __slots__ = ("_kicked", "_wake", "kicked", "kind", "limit", "queue")

    def __init__(self, limit: int, kind: str) -> None:
        self.kind = kind  # the transport, for the metrics: "websocket" or "sse"
        self.limit = limit
        self.queue: deque[Frame] = deque()
        self._wake = asyncio.Event()
        self._kicked: Kicked | None = None
        # Set on kick, so a handler whose writer is blocked on a stuck peer still notices.
        self.kicked = asyncio.Event()

    def push(self, frame: Frame) -> bool:
        if len(self.queue) >= self.limit:
            return False
        self.queue.append(frame)
        self._wake.set()
        return True

    def push_all(self, frames: list[Frame]) -> bool:
        return all(self.push(frame) for frame in frames)

    def kick(self, code: int, reason: str) -> None:
        if self._kicked is None:
            self._kicked = Kicked(code, reason)
        self.queue.clear()
        self._wake.set()
        self.kicked.set()

    @property
    def kick_reason(self) -> Kicked | None:
        return self._kicked

    async def take(self) -> list[Frame]:
        """Everything queued, waiting for at least one frame; raises Kicked once kicked."""
        while True:
            if self._kicked is not None:
                raise self._kicked
            if self.queue:
                frames = list(self.queue)
                self.queue.clear()
                return frames
            self._wake.clear()
            await self._wake.wait()
