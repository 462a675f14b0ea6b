"""This process's readers: one broker subscription per blog with local readers, a replica of
each such blog kept current by that subscription, and fan-out of each frame to every reader.

Everything here runs on the event loop and the fan-out never awaits, so attaching a reader
(catch-up from the replica, then registration) happens between two events: a reader can neither
miss an event nor get one twice, without any extra buffering per reader.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

from pushhub.brokers.base import Broker
from pushhub.errors import NotFound, Unavailable
from pushhub.ids import new_epoch
from pushhub.model import valid_slug
from pushhub.protocol import CloseCode, Frame, Position, parse_event
from pushhub.recovery import Live, Watch, judge_head, plan_refill
from pushhub.replica import BlogReplica, Loaded

log = logging.getLogger("pushhub.hub")


class ReaderSink(Protocol):
    """Where the hub hands frames for one reader. `push` must not block: it returns False when
    the reader's bounded buffer is full, and the hub then disconnects the reader with `kick`."""

    kind: str  # the transport ("websocket", "sse"), for the metrics

    def push(self, frame: Frame) -> bool: ...

    def push_all(self, frames: list[Frame]) -> bool:
        """`push` for several frames at once (a catch-up): one write where that helps."""
        ...

    def kick(self, code: int, reason: str) -> None: ...


@dataclass(eq=False)
class Channel:
    blog: str
    ready: asyncio.Future[None]
    replica: BlogReplica | None = None
    readers: set[ReaderSink] = field(default_factory=set)
    refs: int = 0
    syncing: bool = True  # live frames are buffered in `pending` while we (re)load
    pending: list[str] = field(default_factory=list)
    changed: asyncio.Future[None] | None = None
    linger: asyncio.TimerHandle | None = None
    task: asyncio.Task[None] | None = None
    behind: int | None = None  # the store's head when the watchdog last found us behind it
    rotating: bool = False

    @property
    def live(self) -> BlogReplica:
        if self.replica is None:
            raise Unavailable("blog is still loading")
        return self.replica


class Hub:
    def __init__(self, broker: Broker, *, history_limit: int, linger: float) -> None:
        self.broker = broker
        self.history_limit = history_limit
        self.linger = linger
        self.channels: dict[str, Channel] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.kicked_slow = 0
        self.events_fanned_out = 0
        self.deliveries = 0
        self.stalls = 0
        self.divergences = 0
        self.last_stall: float | None = None

    # -- channel lifetime ----------------------------------------------------------------------

    async def acquire(self, blog: str) -> Channel:
        """The blog's channel, warm (replica loaded, subscription live). Release it when done."""
        if not valid_slug(blog):  # never a store call, lock or subscription for such a name
            raise NotFound(f"no blog named {blog[:80]!r}")
        ch = self.channels.get(blog)
        if ch is None:
            ch = Channel(blog, asyncio.get_running_loop().create_future())
            ch.ready.add_done_callback(_consume_exception)
            self.channels[blog] = ch
            ch.task = self._spawn(self._warm(ch))
        self._hold(ch)
        try:
            await asyncio.shield(ch.ready)
        except BaseException:
            self.release(ch)
            raise
        return ch

    def acquire_warm(self, blog: str) -> Channel | None:
        """The blog's channel if it is already warm here, acquired without awaiting; else None.
        Most readers of a busy blog come this way, with no task or lock of their own."""
        ch = self.channels.get(blog)
        if ch is None or ch.replica is None or not ch.ready.done():
            return None
        self._hold(ch)
        return ch

    def _hold(self, ch: Channel) -> None:
        ch.refs += 1
        if ch.linger is not None:
            ch.linger.cancel()
            ch.linger = None

    def release(self, ch: Channel) -> None:
        ch.refs -= 1
        if ch.refs == 0 and self.channels.get(ch.blog) is ch and ch.ready.done():
            loop = asyncio.get_running_loop()
            ch.linger = loop.call_later(self.linger, self._expire, ch)

    def _expire(self, ch: Channel) -> None:
        if ch.refs == 0 and self.channels.get(ch.blog) is ch:
            del self.channels[ch.blog]
            self._spawn(self._unsubscribe(ch.blog))

    def _lock(self, blog: str) -> asyncio.Lock:
        lock = self._locks.get(blog)
        if lock is None:
            lock = self._locks[blog] = asyncio.Lock()
        return lock

    async def _unsubscribe(self, blog: str) -> None:
        async with self._lock(blog):
            with contextlib.suppress(Unavailable):
                await self.broker.unsubscribe(blog)
        self._forget_lock(blog)

    def _forget_lock(self, blog: str) -> None:
        # Locks live only while a blog is warm or changing: names asked for once and never
        # again (unknown blogs above all) must not pile up.
        lock = self._locks.get(blog)
        if lock is not None and not lock.locked() and blog not in self.channels:
            del self._locks[blog]

    async def _warm(self, ch: Channel) -> None:
        # The lock orders this subscribe after the unsubscribe of an expired channel of the blog.
        async with self._lock(ch.blog):
            try:
                await self.broker.subscribe(ch.blog)
                loaded = await self.broker.load(ch.blog)
                if loaded is None:
                    raise NotFound(f"no blog named {ch.blog!r}")
            except Exception as exc:
                if self.channels.get(ch.blog) is ch:
                    del self.channels[ch.blog]
                with contextlib.suppress(Unavailable):
                    await self.broker.unsubscribe(ch.blog)
                ch.ready.set_exception(exc)
                failed = True
            else:
                failed = False
        if failed:
            self._forget_lock(ch.blog)
            return
        assert loaded is not None
        ch.replica = BlogReplica(loaded, self.history_limit)
        self._drain(ch)
        ch.ready.set_result(None)

    # -- live frames from the broker -----------------------------------------------------------

    def on_message(self, blog: str, frame: str) -> None:
        ch = self.channels.get(blog)
        if ch is None:
            return
        if ch.syncing:
            ch.pending.append(frame)
            return
        self._feed(ch, frame)

    def on_commit(self, blog: str, seq: int, epoch: str, frame: str) -> None:
        """A write this process made, known from the store's answer: if it is the next event of
        our copy, fan it out now instead of after the store's pub/sub message, which then comes
        as a duplicate. The message waits behind the editor's answer and redis-py's pub/sub
        path: ~1 ms, most of the server's share of publish-to-first-delivery. Anything else
        (a gap, another epoch, a copy still loading) is left to the subscription."""
        ch = self.channels.get(blog)
        if ch is None or ch.syncing or ch.rotating:
            return
        replica = ch.live
        if seq == replica.head + 1 and epoch == replica.epoch:
            self._feed(ch, frame)

    def on_resync(self) -> None:
        """The subscription was re-established: whatever was published meanwhile is lost."""
        for ch in list(self.channels.values()):
            if not ch.syncing:
                self._start_refill(ch)

    def _feed(self, ch: Channel, frame: str) -> None:
        replica = ch.live
        try:
            verdict, ev = replica.classify(frame)
        except (ValueError, KeyError, TypeError):
            log.error("dropping malformed frame on %s: %.200s", ch.blog, frame)
            return
        seq = ev["seq"]
        if verdict is Live.APPLY:
            self._fan_out(ch, replica.apply(frame, ev))
        elif verdict is Live.DUPLICATE:
            if self._reused(replica, seq, frame):
                # The same seq and epoch with other content: the store lost events we had
                # already passed on, and is handing their seqs to new writes.
                self._diverged(ch, f"seq {seq} came again with other content")
        else:
            ch.pending.append(frame)
            self._start_refill(ch)

    @staticmethod
    def _reused(replica: BlogReplica, seq: int, text: str) -> bool:
        """A frame of a seq we hold, with other content than ours."""
        held = replica.frame_at(seq)
        return held is not None and held.source != text

    def _drain(self, ch: Channel) -> None:
        """Apply what arrived while loading; leaves `syncing` on if a refill had to start."""
        pending, ch.pending = ch.pending, []
        ch.syncing = False
        for i, frame in enumerate(pending):
            self._feed(ch, frame)
            if ch.syncing:  # a gap: keep the rest for after the refill
                ch.pending[:0] = pending[i + 1 :]
                return

    def _start_refill(self, ch: Channel) -> None:
        ch.syncing = True
        self._spawn(self._refill(ch))

    async def _refill(self, ch: Channel) -> None:
        delay = 0.05
        while self.channels.get(ch.blog) is ch:
            try:
                loaded = await self.broker.load(ch.blog)
                break
            except Unavailable as exc:
                log.warning("refill of %s waits for the store: %s", ch.blog, exc.message)
                await asyncio.sleep(random.uniform(0, delay))
                delay = min(5.0, delay * 2)
        else:
            return
        if loaded is None:
            self._drop_channel(ch, CloseCode.UNKNOWN_BLOG, "blog no longer exists")
            return
        self._catch_up_from(ch, loaded)
        # Frames of an epoch that is not the store's are from a history that is gone;
        # feeding them again would start another refill, forever.
        epoch = ch.live.epoch
        ch.pending = [f for f in ch.pending if _epoch_of(f) == epoch]
        self._drain(ch)

    def _catch_up_from(self, ch: Channel, loaded: Loaded) -> None:
        replica = ch.live
        oldest = parse_event(loaded.history[0])["seq"] if loaded.history else loaded.seq + 1
        plan = plan_refill(
            head=replica.head, epoch=replica.epoch,
            store_head=loaded.seq, store_epoch=loaded.epoch, store_oldest=oldest,
        )  # fmt: skip
        if plan.replace:
            log.warning("replacing %s from the store (epoch or history changed)", ch.blog)
            if loaded.epoch == replica.epoch and loaded.seq < replica.head:
                # Same epoch, shorter history: readers elsewhere may hold the lost events.
                self._diverged(ch, f"the store's head went back to {loaded.seq}")
            ch.replica = BlogReplica(loaded, self.history_limit)
            self._fan_out(ch, ch.replica.snapshot(reset=True))
            return
        reused = False
        for text in loaded.history:
            verdict, ev = replica.classify(text)
            seq = ev["seq"]
            if verdict is Live.APPLY:
                self._fan_out(ch, replica.apply(text, ev))
            elif verdict is Live.DUPLICATE and not reused and self._reused(replica, seq, text):
                # The store lost events we passed on, and new writes took their seqs before we
                # reloaded: its head is not behind ours, so only the content tells. The rest is
                # still applied, so no gap sends us back here before the new epoch arrives.
                reused = True
                self._diverged(ch, f"seq {seq} in the store's history differs from ours")

    def _drop_channel(self, ch: Channel, code: int, reason: str) -> None:
        if self.channels.get(ch.blog) is ch:
            del self.channels[ch.blog]
        for reader in list(ch.readers):
            reader.kick(code, reason)
        ch.readers.clear()
        self._spawn(self._unsubscribe(ch.blog))

    # -- watchdog ------------------------------------------------------------------------------

    async def watch(self, interval: float) -> None:
        """Compare each warm blog's head with the store's. Behind at two checks in a row means
        the subscription stopped delivering: refill from the store and report the stall, so
        /readyz turns red and a load balancer drains this node."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(interval)
            for ch in list(self.channels.values()):
                replica = ch.replica
                if replica is None or ch.syncing:
                    continue
                asked_at = replica.head
                try:
                    head = await self.broker.head(ch.blog)
                except Unavailable:
                    continue  # the store itself is down: /readyz says so through ping
                if head is None or ch.replica is not replica or ch.syncing:
                    continue
                seq, epoch = head
                verdict = judge_head(
                    asked_at=asked_at, head=replica.head, epoch=replica.epoch,
                    store_head=seq, store_epoch=epoch, behind=ch.behind,
                )  # fmt: skip
                if verdict is Watch.DIVERGED:
                    self._diverged(ch, f"the store's head went back to {seq}")
                elif verdict is Watch.IN_STEP:
                    ch.behind = None
                elif verdict is Watch.STALLED:
                    log.error("subscription for %s stalled at seq %d (store: %d)",
                              ch.blog, replica.head, seq)  # fmt: skip
                    self.stalls += 1
                    self.last_stall = loop.time()
                    ch.behind = None
                    self._start_refill(ch)
                else:
                    ch.behind = seq

    def _diverged(self, ch: Channel, why: str) -> None:
        """Readers hold events the store no longer has. Patching cannot fix that: a new epoch
        makes every node and every reader replace its copy with the store's."""
        if ch.replica is None or ch.rotating:
            return
        log.error("blog %s diverged from the store (%s): starting a new epoch", ch.blog, why)
        self.divergences += 1
        ch.rotating = True
        self._spawn(self._rotate(ch, ch.replica.epoch))

    async def _rotate(self, ch: Channel, epoch: str) -> None:
        try:
            delay = 0.05
            while self.channels.get(ch.blog) is ch:
                try:
                    await self.broker.rotate_epoch(ch.blog, epoch, new_epoch())
                    return  # its frame (another epoch) makes every node refill and reset
                except Unavailable:
                    await asyncio.sleep(random.uniform(0, delay))
                    delay = min(5.0, delay * 2)
        finally:
            ch.rotating = False

    def stalled_recently(self, window: float) -> bool:
        if self.last_stall is None:
            return False
        return asyncio.get_running_loop().time() - self.last_stall < window

    # -- readers -------------------------------------------------------------------------------

    def attach(self, ch: Channel, reader: ReaderSink, pos: Position) -> bool:
        """Send the reader what it missed, then make it a live reader; no await in between."""
        if not reader.push_all(ch.live.catch_up(pos)):
            reader.kick(CloseCode.TRY_AGAIN_LATER, "catch-up larger than the reader buffer")
            return False
        ch.readers.add(reader)
        return True

    def detach(self, ch: Channel, reader: ReaderSink) -> None:
        ch.readers.discard(reader)

    def _fan_out(self, ch: Channel, frame: Frame) -> None:
        slow = [r for r in ch.readers if not r.push(frame)]
        for reader in slow:
            ch.readers.discard(reader)
            reader.kick(CloseCode.TRY_AGAIN_LATER, "reader too slow; resume with since")
        self.kicked_slow += len(slow)
        self.events_fanned_out += 1
        self.deliveries += len(ch.readers)
        if ch.changed is not None:
            ch.changed.set_result(None)
            ch.changed = None

    async def wait_past(self, ch: Channel, seq: int) -> None:
        """Return once the blog's head moves past `seq` (callers bound the wait): long-polls."""
        if ch.live.head > seq:
            return
        if ch.changed is None:
            ch.changed = asyncio.get_running_loop().create_future()
        await asyncio.shield(ch.changed)

    # -- process lifetime ----------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("hub task failed", exc_info=task.exception())

    @property
    def reader_count(self) -> int:
        return sum(len(ch.readers) for ch in self.channels.values())

    async def close(self) -> None:
        for ch in list(self.channels.values()):
            for reader in list(ch.readers):
                reader.kick(CloseCode.SERVICE_RESTART, "server restarting")
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task


def _epoch_of(frame: str) -> str | None:
    try:
        return parse_event(frame)["epoch"]
    except ValueError:
        return None


def _consume_exception(fut: asyncio.Future[None]) -> None:
    # Marks the exception as retrieved when no one was left waiting for a failed warm-up.
    if not fut.cancelled():
        fut.exception()
