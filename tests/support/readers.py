"""Test-side readers: a real WebSocket client that keeps a local copy of a blog the way a
browser would, and asserts the protocol's promises (snapshot first, seq +1, no duplicates)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterable
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
            assert all("body" not in e for e in frame["entries"]), "Markdown source sent to readers"
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
            assert "body" not in frame["entry"], "Markdown source sent to readers"
            self.entries[frame["entry"]["id"]] = frame["entry"]


def as_read(entries: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Entries from the API, keyed by id as a `LocalCopy` holds them: without their Markdown
    source, which readers' frames do not carry."""
    return {e["id"]: {k: v for k, v in e.items() if k != "body"} for e in entries}


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


class RoamingReader:
    """A reader that, like a real client, reconnects with since/epoch after any disconnect,
    trying the given nodes in turn. Records each close code and when it happened."""

    def __init__(self, bases: list[str], blog: str) -> None:
        self.bases = bases
        self.blog = blog
        self.copy = LocalCopy()
        self.closes: list[tuple[float, int | None]] = []
        self.connects = 0
        self._task: asyncio.Task[None] | None = None
        self._stop = False

    def start(self, first: int = 0) -> None:
        self._task = asyncio.create_task(self._run(first))

    async def _run(self, first: int) -> None:
        i = first
        loop = asyncio.get_running_loop()
        while not self._stop:
            base = self.bases[i % len(self.bases)]
            try:
                url = ws_url(base, self.blog, self.copy.seq, self.copy.epoch)
                async with websockets.connect(url, open_timeout=5, close_timeout=1) as ws:
                    self.connects += 1
                    async for raw in ws:
                        self.copy.apply(json.loads(raw))
                code = ws.close_code
            except (OSError, TimeoutError, websockets.InvalidHandshake):
                code = None
            except websockets.ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd else None
            self.closes.append((loop.time(), code))
            i += 1
            await asyncio.sleep(0.05)

    async def until_seq(self, seq: int, timeout: float = 15.0) -> None:
        async with asyncio.timeout(timeout):
            while self.copy.seq is None or self.copy.seq < seq:
                if self._task is not None and self._task.done():
                    self._task.result()  # surfaces an assertion from LocalCopy.apply
                await asyncio.sleep(0.02)

    async def stop(self) -> None:
        self._stop = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
