"""What one server process holds: settings, the broker, the hub and the service over them."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from dataclasses import dataclass, field

from pushhub.auth import Editor, TokenVerifier, require_blog
from pushhub.brokers.base import Broker
from pushhub.config import Settings
from pushhub.errors import Overloaded, RateLimited, Unauthorized, Unavailable
from pushhub.hub import Hub
from pushhub.limits import ConnectionCounter, RateLimiter
from pushhub.protocol import CloseCode
from pushhub.service import Service
from pushhub.wire import WirePool


@dataclass
class Runtime:
    settings: Settings
    secret: str
    broker: Broker
    hub: Hub
    service: Service
    wire: WirePool
    draining: bool = False
    drained: asyncio.Task[None] | None = None
    connect_rate: RateLimiter = field(init=False)
    publish_rate: RateLimiter = field(init=False)
    connections: ConnectionCounter = field(init=False)
    verify: TokenVerifier = field(init=False)
    # For the metrics: reader connections refused, by reason, and API errors, by code.
    refused: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        s = self.settings
        self.verify = TokenVerifier(self.secret, issuer=s.jwt_issuer, audience=s.jwt_audience)
        self.connect_rate = RateLimiter(s.ip_connect_rate, s.ip_connect_burst)
        self.publish_rate = RateLimiter(s.publish_rate, s.publish_burst)
        self.connections = ConnectionCounter(s.ip_max_connections, s.max_readers)

    def admit_reader(self, ip: str) -> None:
        """Count a live reader from `ip`, or refuse it; pair with `release_reader`."""
        if self.draining:
            self.refused["draining"] += 1
            raise Unavailable("server restarting; reconnect")
        now = asyncio.get_running_loop().time()
        wait = self.connect_rate.take(ip, now)
        if wait:
            self.refused["address_rate"] += 1
            raise RateLimited("too many new connections from this address", retry_after=wait)
        why = self.connections.admit(ip)
        if why is not None:
            if self.connections.total >= self.settings.max_readers:
                self.refused["node_full"] += 1
                raise Overloaded(why, retry_after=5)
            self.refused["address_connections"] += 1
            raise RateLimited(why, retry_after=5)

    def release_reader(self, ip: str) -> None:
        self.connections.release(ip)

    def check_connect_rate(self, ip: str) -> None:
        wait = self.connect_rate.take(ip, asyncio.get_running_loop().time())
        if wait:
            raise RateLimited("too many requests from this address", retry_after=wait)

    def begin_drain(self) -> None:
        """Stop taking readers and close the ones we have, spread over the drain window, so
        they do not all land on the other nodes in the same instant."""
        if self.draining:
            return
        self.draining = True
        self.drained = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        readers = [r for ch in self.hub.channels.values() for r in ch.readers]
        random.shuffle(readers)
        if not readers:
            return
        batches = max(1, min(len(readers), 50))
        size = -(-len(readers) // batches)
        pause = self.settings.drain_window / batches
        for start in range(0, len(readers), size):
            for reader in readers[start : start + size]:
                reader.kick(CloseCode.SERVICE_RESTART, "server restarting; reconnect")
            await asyncio.sleep(pause * random.uniform(0.5, 1.5))

    async def editor(self, authorization: str | None, blog: str | None = None) -> Editor:
        """The editor a write comes from: token valid, not revoked, allowed on this blog, and
        within its publish rate."""
        editor = self.verify(authorization)
        if blog is not None:
            require_blog(editor, blog)
        if editor.token_id is not None and await self.broker.is_revoked(editor.token_id):
            raise Unauthorized("this token has been revoked")
        key = editor.token_id or editor.name
        wait = self.publish_rate.take(key, asyncio.get_running_loop().time())
        if wait:
            raise RateLimited("too many writes with this token", retry_after=wait)
        return editor


def make_broker(settings: Settings) -> Broker:
    if settings.redis_url:
        from pushhub.brokers.redis import RedisBroker

        return RedisBroker(
            settings.redis_url, prefix=settings.redis_prefix,
            history_limit=settings.history_limit, idempotency_ttl=settings.idempotency_ttl,
            timeout=settings.redis_timeout, health_interval=settings.watchdog_interval,
        )  # fmt: skip
    from pushhub.brokers.embedded import EmbeddedBroker

    return EmbeddedBroker(
        settings.data_dir / "pushhub.sqlite3",
        history_limit=settings.history_limit, idempotency_ttl=settings.idempotency_ttl,
    )  # fmt: skip


def make_runtime(settings: Settings, secret: str) -> Runtime:
    broker = make_broker(settings)
    hub = Hub(broker, history_limit=settings.history_limit, linger=settings.linger)
    wire = WirePool(
        buffer_limit=settings.reader_buffer_bytes, max_message=settings.reader_max_message,
        ping_interval=settings.ws_ping_interval, deflate_min_bytes=settings.deflate_min_bytes,
    )  # fmt: skip
    return Runtime(settings, secret, broker, hub, Service(broker, hub), wire)
