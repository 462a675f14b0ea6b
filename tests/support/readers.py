"""Test-side readers: a real WebSocket client that keeps a local copy of a blog the way a
browser would, and asserts the protocol's promises (snapshot first, seq +1, no duplicates)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection


@dataclass
class LocalCopy:
    """A blog as a reader holds it, built only from frames."""

    seq: int | None = None
    epoch: str | None = None
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    blog: dict[str, Any] | None = None
    seen: list[int] = field(default_factory=list)  # seq of every event applied
    snapshots: int = 0
    resets: int = 0

    def apply(self, frame: dict[str, Any]) -> None:
        if frame["type"] == "snapshot":
            self.snapshots += 1
            self.resets += bool(frame["reset"])
            self.seq, self.epoch, self.blog = frame["seq"], frame["epoch"], frame["blog"]
            self.entries = {e["id"]: e for e in frame["entries"]}
            return
        assert frame["type"] == "event", frame
        assert self.seq is not None, "event before any snapshot or resume point"
        assert frame["epoch"] == self.epoch, (frame["epoch"], self.epoch)
        assert frame["seq"] == self.seq + 1, f"got seq {frame['seq']} after {self.seq}"
        self.seq = frame["seq"]
        self.seen.append(frame["seq"])
        if frame["op"] == "blog":
            self.blog = frame["blog"]
        elif frame["op"] == "delete":
            self.entries.pop(frame["entry"]["id"])
        else:
            self.entries[frame["entry"]["id"]] = frame["entry"]


def ws_url(base: str, blog: str, since: int | None = None, epoch: str | None = None) -> str:
    url = f"{base}/ws/blogs/{blog}"
    params = []
    if since is not None:
        params.append(f"since={since}")
    if epoch is not None:
        params.append(f"epoch={epoch}")
    return url + ("?" + "&".join(params) if params else "")


class WsReader:
    def __init__(self, base: str, blog: str, copy: LocalCopy | None = None) -> None:
        self.base = base
        self.blog = blog
        self.copy = copy or LocalCopy()
        self.frames: list[dict[str, Any]] = []
        self.ws: ClientConnection | None = None

    async def connect(self, *, resume: bool = True, **kwargs: Any) -> WsReader:
        since = self.copy.seq if resume else None
        epoch = self.copy.epoch if resume else None
        url = ws_url(self.base, self.blog, since, epoch)
        async with asyncio.timeout(10):
            self.ws = await websockets.connect(url, open_timeout=10, **kwargs)
        return self

    async def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        assert self.ws is not None
        async with asyncio.timeout(timeout):
            frame: dict[str, Any] = json.loads(await self.ws.recv())
        self.frames.append(frame)
        self.copy.apply(frame)
        return frame

    async def until_seq(self, seq: int, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while self.copy.seq is None or self.copy.seq < seq:
                await self.recv(timeout)

    async def quiet(self, window: float = 0.3) -> None:
        """Assert nothing more arrives within `window` seconds."""
        assert self.ws is not None
        try:
            async with asyncio.timeout(window):
                extra = await self.ws.recv()
        except TimeoutError:
            return
        raise AssertionError(f"unexpected frame: {extra[:200]!r}")

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
            self.ws = None
