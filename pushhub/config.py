"""One settings object, read from `PUSHHUB_*` environment variables and `pushhub serve` flags.

Every field has an environment variable; the README's configuration table lists them all (a
test keeps the two in step).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    redis_url: str | None = None
    redis_prefix: str = "ph"
    redis_timeout: float = 2.0
    secret: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    data_dir: Path = Path("pushhub-data")
    history_limit: int = 1000
    idempotency_ttl: int = 86400
    max_body: int = 256 * 1024
    reader_buffer: int = 256
    reader_buffer_bytes: int = 1024 * 1024
    wire: str = "fast"
    # Smaller frames go out uncompressed even to readers that negotiated permessage-deflate
    # (RFC 7692 lets each message choose): inflating a few hundred bytes costs the reader more
    # than it saves. 1024 is the `ws` library's and OkHttp's default threshold.
    deflate_min_bytes: int = 1024
    reader_max_message: int = 4096
    ws_ping_interval: float = 20.0
    sse_heartbeat: float = 15.0
    linger: float = 30.0
    watchdog_interval: float = 5.0
    drain_window: float = 5.0
    max_readers: int = 100_000
    # Off by default: whole newsrooms or mobile carriers share one address; set these for a
    # public deployment, behind a proxy only with forwarded_allow_ips (docs/deploy.md).
    ip_max_connections: int = 0
    ip_connect_rate: float = 0.0
    ip_connect_burst: int = 100
    # Proxies whose X-Forwarded-For (and -Proto) are believed: addresses or networks, commas
    # between, "*" for any. Empty: the headers are ignored, since any client can send them, and
    # behind a load balancer every reader has the balancer's address.
    forwarded_allow_ips: str = ""
    publish_rate: float = 20.0
    publish_burst: int = 60
    max_query: int = 2048
    max_headers: int = 16384
    log_level: str = "info"
    demo: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(env_name(f.name))
            if raw is not None and raw != "":
                values[f.name] = _convert(f.type, raw, f.name)
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        if self.workers < 1:
            raise ValueError("workers must be at least 1")
        if self.workers > 1 and not self.redis_url:
            raise ValueError(
                "the embedded store serves one process: --workers > 1 needs PUSHHUB_REDIS_URL"
            )
        if self.history_limit < 1:
            raise ValueError("history_limit must be at least 1")
        if self.wire not in ("fast", "asgi"):
            raise ValueError("wire must be 'fast' or 'asgi'")
        for name in ("redis_timeout", "ws_ping_interval", "sse_heartbeat", "watchdog_interval"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number of seconds")
        for name in ("linger", "drain_window"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be zero or more seconds")
        for name in ("ip_connect_rate", "publish_rate"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be zero (no limit) or a positive rate")
        for proxy in self.trusted_proxies:
            if proxy != "*":
                try:
                    ipaddress.ip_network(proxy, strict=False)
                except ValueError:
                    raise ValueError(
                        f"forwarded_allow_ips: {proxy!r} is not an IP address, a network or '*'"
                    ) from None
        if self.deflate_min_bytes < 0:
            raise ValueError("deflate_min_bytes must be zero (compress all) or more")
        if not 0 <= self.port <= 65535:
            raise ValueError("port must be 0-65535")
        for name in (
            "max_body", "reader_buffer", "reader_buffer_bytes", "reader_max_message",
            "max_query", "max_headers",
        ):  # fmt: skip
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")

    def to_env(self) -> dict[str, str]:
        """The settings as environment variables: how worker processes inherit them."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                out[env_name(f.name)] = str(int(value)) if isinstance(value, bool) else str(value)
        return out

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    @property
    def trusted_proxies(self) -> list[str]:
        return [p.strip() for p in self.forwarded_allow_ips.split(",") if p.strip()]

    @property
    def reader_queue(self) -> int:
        """Frames a reader may have waiting: a full catch-up always fits, live bursts on top."""
        return self.history_limit + 1 + self.reader_buffer


def env_name(field_name: str) -> str:
    return "PUSHHUB_" + field_name.upper()


def _convert(kind: Any, raw: str, name: str) -> Any:
    kind = str(kind)
    try:
        if kind.startswith("int"):
            return int(raw)
        if kind.startswith("float"):
            return float(raw)
        if kind.startswith("bool"):
            if raw.lower() not in ("1", "0", "true", "false", "yes", "no"):
                raise ValueError(raw)
            return raw.lower() in ("1", "true", "yes")
        if kind.startswith("Path"):
            return Path(raw)
    except ValueError:
        raise ValueError(f"{env_name(name)}={raw!r} is not a valid {kind}") from None
    return raw
