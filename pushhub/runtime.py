"""What one server process holds: settings, the broker, the hub and the service over them."""

from __future__ import annotations

from dataclasses import dataclass

from pushhub.auth import Editor, require_blog, verify
from pushhub.brokers.base import Broker
from pushhub.config import Settings
from pushhub.hub import Hub
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
            timeout=settings.redis_timeout,
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
