"""What one server process holds: settings, the broker, the hub and the service over them."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

from pushhub.auth import Editor, require_blog, verify
from pushhub.brokers.base import Broker
from pushhub.config import Settings
from pushhub.hub import Hub
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

    def editor(self, authorization: str | None, blog: str | None = None) -> Editor:
        editor = verify(
            authorization, self.secret,
            issuer=self.settings.jwt_issuer, audience=self.settings.jwt_audience,
        )  # fmt: skip
        if blog is not None:
            require_blog(editor, blog)
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
        ping_interval=settings.ws_ping_interval,
    )  # fmt: skip
    return Runtime(settings, secret, broker, hub, Service(broker, hub), wire)
