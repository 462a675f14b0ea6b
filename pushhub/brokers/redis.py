"""The Redis store: history, state and idempotency keys in Redis, fan-out over pub/sub.

Every key of a blog carries the hash tag `{slug}`, so a Redis Cluster keeps one blog in one slot
and the commit script stays a single-slot script. The commit is one Lua script (atomic); the
frame it publishes is the frame every node sends to its readers.

One pub/sub connection per process carries every blog this node has readers for. If it drops,
a supervisor reconnects with capped, jittered backoff, resubscribes, and calls `on_resync` so the
hub refills from history what pub/sub lost meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable
from importlib import resources
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from pushhub.brokers.base import BrokerListener, Change, Committed
from pushhub.errors import BlogMissing, Unavailable, WriteConflict
from pushhub.replica import Loaded

log = logging.getLogger("pushhub.redis")
T = TypeVar("T")

_COMMIT_LUA = resources.files("pushhub").joinpath("lua/commit.lua").read_text()
_ROTATE_LUA = resources.files("pushhub").joinpath("lua/rotate_epoch.lua").read_text()


class RedisBroker:
    name = "redis"

    def __init__(
        self,
        url: str,
        *,
        prefix: str,
        history_limit: int,
        idempotency_ttl: int,
        timeout: float,
        backoff_cap: float = 5.0,
        health_interval: float = 5.0,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.history_limit = history_limit
        self.idempotency_ttl = idempotency_ttl
        self.timeout = timeout
        self.backoff_cap = backoff_cap
        self.health_interval = health_interval
        self.client: aioredis.Redis = aioredis.Redis.from_url(
            url,
            decode_responses=True,
            # No socket timeout: `_call` bounds every command whole. redis-py would wrap each
            # send in `asyncio.wait_for`, a task per command, for the same bound.
            socket_timeout=None,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )
        self._commit = self.client.register_script(_COMMIT_LUA)
        self._rotate = self.client.register_script(_ROTATE_LUA)
        self._listener: BrokerListener | None = None
        self._channels: set[str] = set()
        self._pending: dict[str, asyncio.Future[None]] = {}
        self._pubsub: PubSub | None = None
        self._connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._control = f"{prefix}:node"

    # -- keys ---------------------------------------------------------------------------------

    def key(self, blog: str, part: str) -> str:
        return f"{self.prefix}:{{{blog}}}:{part}"

    def channel(self, blog: str) -> str:
        return f"{self.prefix}:{{{blog}}}:events"

    def _blog_of(self, channel: str) -> str | None:
        head = f"{self.prefix}:{{"
        if channel.startswith(head) and channel.endswith("}:events"):
            return channel[len(head) : -len("}:events")]
        return None

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self, listener: BrokerListener) -> None:
        self._listener = listener
        self._task = asyncio.create_task(self._supervise(), name="pushhub-redis-pubsub")
        # Start even if Redis is down: readers are refused until it is back, and /readyz says so.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.timeout):
                await self._connected.wait()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.aclose()  # type: ignore[no-untyped-call]
        await self.client.aclose()

    async def _call(self, aw: Awaitable[T]) -> T:
        try:
            async with asyncio.timeout(self.timeout):
                return await aw
        except (RedisError, OSError, TimeoutError) as exc:
            raise Unavailable(f"redis is unavailable: {exc.__class__.__name__}: {exc}") from exc

    # -- writes -------------------------------------------------------------------------------

    async def commit(self, change: Change) -> Committed:
        b = change.blog
        keys = [
            self.key(b, "meta"), self.key(b, "entries"), self.key(b, "seq"),
            self.key(b, "epoch"), self.key(b, "history"),
            self.key(b, "idem:" + change.idempotency_key),
        ]  # fmt: skip
        args: list[Any] = [
            change.kind, change.entry_id,
            "0" if change.expect is None else "1", change.expect or "",
            "0" if change.new is None else "1", change.new or "",
            change.event_body, change.new_epoch, self.history_limit, self.channel(b),
            self.idempotency_ttl, change.result,
        ]  # fmt: skip
        if change.kind == "meta" and change.expect is None:
            await self._call(self.client.sadd(f"{self.prefix}:blogs", b))
        reply = await self._call(self._commit(keys=keys, args=args))
        status = reply[0]
        if status == "OK":
            return Committed(int(reply[1]), str(reply[2]), change.result, replayed=False)
        if status == "DUP":
            seq, epoch, result = str(reply[1]).split("|", 2)
            return Committed(int(seq), epoch, result, replayed=True)
        if status == "NOBLOG":
            raise BlogMissing(b)
        raise WriteConflict(b)

    async def recall(self, blog: str, idempotency_key: str) -> Committed | None:
        raw: Any = await self._call(self.client.get(self.key(blog, "idem:" + idempotency_key)))
        if raw is None:
            return None
        seq, epoch, result = str(raw).split("|", 2)
        return Committed(int(seq), epoch, result, replayed=True)

    # -- reads --------------------------------------------------------------------------------

    async def load(self, blog: str) -> Loaded | None:
        pipe = self.client.pipeline(transaction=True)
        pipe.get(self.key(blog, "meta"))
        pipe.hvals(self.key(blog, "entries"))
        pipe.get(self.key(blog, "seq"))
        pipe.get(self.key(blog, "epoch"))
        pipe.lrange(self.key(blog, "history"), -self.history_limit, -1)
        meta, entries, seq, epoch, history = await self._call(pipe.execute())
        if meta is None or seq is None or epoch is None:
            return None
        return Loaded(meta, list(entries), int(seq), epoch, list(history))

    # The client decodes responses, so every reply below is str; redis-py's stubs cannot know.

    async def read_meta(self, blog: str) -> str | None:
        value: Any = await self._call(self.client.get(self.key(blog, "meta")))
        return None if value is None else str(value)

    async def read_entry(self, blog: str, entry_id: str) -> str | None:
        value: Any = await self._call(self.client.hget(self.key(blog, "entries"), entry_id))
        return None if value is None else str(value)

    async def list_blogs(self) -> list[str]:
        members: Any = await self._call(self.client.smembers(f"{self.prefix}:blogs"))
        slugs = sorted(str(m) for m in members)
        if not slugs:
            return []
        metas: Any = await self._call(self.client.mget([self.key(s, "meta") for s in slugs]))
        return [str(m) for m in metas if m is not None]

    async def head(self, blog: str) -> tuple[int, str] | None:
        pair: Any = await self._call(
            self.client.mget([self.key(blog, "seq"), self.key(blog, "epoch")])
        )
        seq, epoch = pair
        return None if seq is None or epoch is None else (int(seq), str(epoch))

    async def rotate_epoch(self, blog: str, expected: str, new: str) -> bool:
        keys = [self.key(blog, p) for p in ("meta", "seq", "epoch", "history")]
        done: Any = await self._call(
            self._rotate(keys=keys, args=[expected, new, self.channel(blog)])
        )
        return bool(done)

    async def revoke(self, token_id: str, until: float) -> None:
        key = f"{self.prefix}:revoked:{token_id}"
        await self._call(self.client.set(key, "1", exat=max(int(until) + 1, int(time.time()) + 1)))

    async def is_revoked(self, token_id: str) -> bool:
        found: Any = await self._call(self.client.exists(f"{self.prefix}:revoked:{token_id}"))
        return bool(found)

    async def ping(self) -> None:
        # Ready means both halves work: commands answer and the subscription is live.
        await self._call(self.client.ping())
        if not self._connected.is_set():
            raise Unavailable("redis pub/sub is reconnecting")

    # -- pub/sub ------------------------------------------------------------------------------

    async def subscribe(self, blog: str) -> None:
        channel = self.channel(blog)
        self._channels.add(channel)
        if not self._connected.is_set() or self._pubsub is None:
            raise Unavailable("redis pub/sub is reconnecting")
        fut = asyncio.get_running_loop().create_future()
        self._pending[channel] = fut
        try:
            await self._call(self._pubsub.subscribe(channel))
            await self._call(asyncio.shield(fut))
        finally:
            self._pending.pop(channel, None)

    async def unsubscribe(self, blog: str) -> None:
        channel = self.channel(blog)
        self._channels.discard(channel)
        if self._connected.is_set() and self._pubsub is not None:
            with contextlib.suppress(Unavailable):
                await self._call(self._pubsub.unsubscribe(channel))

    async def _supervise(self) -> None:
        delay = 0.05
        first = True
        while True:
            try:
                await self._connect()
                delay = 0.05
                if not first and self._listener is not None:
                    self._listener.on_resync()
                first = False
                await self._pump()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure: drop the connection, back off, start over
                log.warning("redis pub/sub lost (%s: %s); reconnecting", type(exc).__name__, exc)
            self._connected.clear()
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(Unavailable("redis pub/sub connection lost"))
            if self._pubsub is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._pubsub.aclose(), self.timeout)  # type: ignore[no-untyped-call]
                self._pubsub = None
            first = False
            # Full jitter keeps a fleet of nodes from reconnecting in lockstep.
            await asyncio.sleep(random.uniform(0, delay))
            delay = min(self.backoff_cap, delay * 2)

    async def _connect(self) -> None:
        ps = self.client.pubsub()
        self._pubsub = ps
        channels = sorted(self._channels)
        async with asyncio.timeout(self.timeout):
            await ps.subscribe(self._control, *channels)
            # Wait for the confirmations so a resync sees every channel live.
            expected = len(channels) + 1
            while expected:
                msg = await ps.get_message(timeout=self.timeout)
                if msg is not None and msg["type"] == "subscribe":
                    expected -= 1
        self._connected.set()

    async def _pump(self) -> None:
        ps = self._pubsub
        assert ps is not None
        listener = self._listener
        assert listener is not None
        loop = asyncio.get_running_loop()
        last_heard = loop.time()
        ping_sent: float | None = None
        while True:
            msg = await ps.get_message(timeout=min(1.0, self.timeout))
            now = loop.time()
            if msg is None:
                # A silent link may be dead (half-open TCP, frozen server): ping it, and give
                # up on it if the pong does not come back within the timeout.
                if ping_sent is not None and now - ping_sent > self.timeout:
                    raise TimeoutError("redis pub/sub did not answer a ping")
                if ping_sent is None and now - last_heard > self.health_interval:
                    async with asyncio.timeout(self.timeout):
                        await ps.ping()
                    ping_sent = now
                continue
            last_heard = now
            ping_sent = None
            kind = msg["type"]
            channel = msg["channel"]
            if kind == "message":
                blog = self._blog_of(channel)
                if blog is not None:
                    listener.on_message(blog, msg["data"])
            elif kind == "subscribe":
                fut = self._pending.get(channel)
                if fut is not None and not fut.done():
                    fut.set_result(None)
