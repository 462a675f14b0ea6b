"""`LiveBlog`: a local copy of one blog that stays current by applying its frames.

`apply` is pure bookkeeping (usable with frames from anywhere: the WebSocket, long-poll);
`follow` runs a `Subscription` in the background and keeps a `LiveBlog` up to date:

    async with follow("http://127.0.0.1:8000", "city-marathon") as live:
        async with asyncio.timeout(30):
            await live.wait_for(lambda b: len(b.entries) >= 10)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import Any

from pushhub_client.errors import ProtocolError
from pushhub_client.models import Blog, Entry, Event, Frame, Snapshot, sort_entries
from pushhub_client.subscribe import Subscription


class LiveBlog:
    """The blog, its entries and the seq/epoch they are at.

    The entries come from readers' frames, which carry no Markdown source: their `body` is None
    (show `html`, or `text` in a terminal). `get_blog` answers with the bodies.
    """

    def __init__(self, slug: str) -> None:
        self.slug = slug
        self.blog: Blog | None = None
        self.seq: int | None = None
        self.epoch: str | None = None
        self._entries: dict[str, Entry] = {}
        self._changed = asyncio.Condition()
        self._failure: BaseException | None = None
        self._done = False

    @property
    def entries(self) -> list[Entry]:
        """The entries in the protocol's order: pinned first, then newest first."""
        return sort_entries(list(self._entries.values()))

    def get(self, entry_id: str) -> Entry | None:
        return self._entries.get(entry_id)

    def apply(self, frame: Frame) -> bool:
        """Apply one frame; False if it was already applied (an older or equal seq).

        Raises `ProtocolError` on a gap or a foreign epoch: frames must come in seq order.
        """
        if isinstance(frame, Snapshot):
            self.blog = frame.blog
            self._entries = {e.id: e for e in frame.entries}
            self.seq, self.epoch = frame.seq, frame.epoch
            return True
        if self.seq is None or (self.epoch is not None and frame.epoch != self.epoch):
            raise ProtocolError(f"event {frame.seq} arrived before a snapshot of its history")
        if frame.seq <= self.seq:
            return False
        if frame.seq != self.seq + 1:
            raise ProtocolError(f"event {frame.seq} arrived after {self.seq}: a gap")
        self._apply_event(frame)
        self.seq, self.epoch = frame.seq, frame.epoch
        return True

    def _apply_event(self, event: Event) -> None:
        if event.op == "blog" and event.blog is not None:
            self.blog = event.blog
        elif event.op == "delete" and event.entry_id is not None:
            self._entries.pop(event.entry_id, None)
        elif event.entry is not None:
            self._entries[event.entry.id] = event.entry

    async def run(self, frames: AsyncIterable[Frame]) -> None:
        """Apply every frame from `frames` until it ends; waiters learn of each change, and of
        the error if `frames` fails."""
        self._done = False
        try:
            async for frame in frames:
                if self.apply(frame):
                    async with self._changed:
                        self._changed.notify_all()
        except Exception as exc:
            self._failure = exc
            raise
        finally:
            self._done = True
            async with self._changed:
                self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[LiveBlog], bool]) -> None:
        """Wait until `predicate(self)` holds, or raise the subscription's error if it failed.

        Bound it yourself: `async with asyncio.timeout(5): await live.wait_for(...)`.
        """

        def ready() -> bool:
            return self._failure is not None or self._done or predicate(self)

        async with self._changed:
            await self._changed.wait_for(ready)
        if self._failure is not None:
            raise self._failure
        if not predicate(self):
            raise ProtocolError(f"the subscription to {self.slug!r} ended")

    async def wait_seq(self, seq: int) -> None:
        """Wait until the copy includes the change with this seq."""
        await self.wait_for(lambda b: b.seq is not None and b.seq >= seq)


@contextlib.asynccontextmanager
async def follow(
    url: str, blog: str, *, ready_timeout: float = 10.0, **subscribe_options: Any
) -> AsyncIterator[LiveBlog]:
    """A `LiveBlog` kept current in the background while the `async with` block runs.

    On entry it waits (up to `ready_timeout`) for the first snapshot, so the copy is complete;
    an unknown blog raises `NotFound` here. `subscribe_options` go to `Subscription`.
    """
    live = LiveBlog(blog)
    subscription = Subscription(url, blog, **subscribe_options)
    task = asyncio.create_task(live.run(subscription), name=f"pushhub-follow-{blog}")
    try:
        async with asyncio.timeout(ready_timeout):
            await live.wait_for(lambda b: b.seq is not None)
        yield live
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        await subscription.aclose()
