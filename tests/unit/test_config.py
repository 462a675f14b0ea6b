"""Settings: one object from PUSHHUB_* variables, checked, and passed on to workers."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from pushhub.config import Settings, env_name

EVERY_FIELD = {
    "PUSHHUB_HOST": "0.0.0.0",
    "PUSHHUB_PORT": "9001",
    "PUSHHUB_WORKERS": "3",
    "PUSHHUB_REDIS_URL": "redis://127.0.0.1:6390/2",
    "PUSHHUB_REDIS_PREFIX": "news",
    "PUSHHUB_REDIS_TIMEOUT": "0.75",
    "PUSHHUB_SECRET": "s3cret-from-env",
    "PUSHHUB_JWT_ISSUER": "newsroom",
    "PUSHHUB_JWT_AUDIENCE": "pushhub",
    "PUSHHUB_DATA_DIR": "/var/lib/pushhub",
    "PUSHHUB_HISTORY_LIMIT": "50",
    "PUSHHUB_IDEMPOTENCY_TTL": "3600",
    "PUSHHUB_MAX_BODY": "1024",
    "PUSHHUB_READER_BUFFER": "16",
    "PUSHHUB_READER_BUFFER_BYTES": "65536",
    "PUSHHUB_WIRE": "asgi",
    "PUSHHUB_DEFLATE_MIN_BYTES": "0",
    "PUSHHUB_READER_MAX_MESSAGE": "512",
    "PUSHHUB_WS_PING_INTERVAL": "5.5",
    "PUSHHUB_SSE_HEARTBEAT": "2",
    "PUSHHUB_LINGER": "0.25",
    "PUSHHUB_WATCHDOG_INTERVAL": "1.5",
    "PUSHHUB_DRAIN_WINDOW": "0",
    "PUSHHUB_MAX_READERS": "20000",
    "PUSHHUB_IP_MAX_CONNECTIONS": "50",
    "PUSHHUB_IP_CONNECT_RATE": "2.5",
    "PUSHHUB_IP_CONNECT_BURST": "10",
    "PUSHHUB_FORWARDED_ALLOW_IPS": "10.0.0.0/8, ::1",
    "PUSHHUB_PUBLISH_RATE": "0",
    "PUSHHUB_PUBLISH_BURST": "5",
    "PUSHHUB_MAX_QUERY": "4096",
    "PUSHHUB_MAX_HEADERS": "8192",
    "PUSHHUB_LOG_LEVEL": "debug",
    "PUSHHUB_DEMO": "true",
}


def test_defaults_from_empty_env() -> None:
    assert Settings.from_env({}) == Settings()
    s = Settings()
    assert (s.host, s.port, s.workers, s.redis_url) == ("127.0.0.1", 8000, 1, None)
    assert s.history_limit == 1000
    assert s.data_dir == Path("pushhub-data")


def test_every_field_parsed_with_its_type() -> None:
    s = Settings.from_env(EVERY_FIELD)
    assert s == Settings(
        host="0.0.0.0", port=9001, workers=3, redis_url="redis://127.0.0.1:6390/2",
        redis_prefix="news", redis_timeout=0.75, secret="s3cret-from-env",
        jwt_issuer="newsroom", jwt_audience="pushhub", data_dir=Path("/var/lib/pushhub"),
        history_limit=50, idempotency_ttl=3600, max_body=1024, reader_buffer=16,
        reader_buffer_bytes=65536, wire="asgi", deflate_min_bytes=0, reader_max_message=512, ws_ping_interval=5.5,
        sse_heartbeat=2.0, linger=0.25, watchdog_interval=1.5, drain_window=0.0,
        max_readers=20000, ip_max_connections=50, ip_connect_rate=2.5, ip_connect_burst=10,
        forwarded_allow_ips="10.0.0.0/8, ::1", publish_rate=0.0, publish_burst=5, max_query=4096, max_headers=8192,
        log_level="debug", demo=True,
    )  # fmt: skip
    assert isinstance(s.port, int)
    assert isinstance(s.redis_timeout, float)
    assert isinstance(s.sse_heartbeat, float)
    assert isinstance(s.data_dir, Path)
    assert s.demo is True


def test_the_test_covers_every_field() -> None:
    assert {env_name(f.name) for f in dataclasses.fields(Settings)} == set(EVERY_FIELD)


def test_env_names() -> None:
    assert env_name("redis_url") == "PUSHHUB_REDIS_URL"
    assert env_name("history_limit") == "PUSHHUB_HISTORY_LIMIT"


@pytest.mark.parametrize(
    ("raw", "value"),
    [("1", True), ("true", True), ("TRUE", True), ("yes", True), ("Yes", True),
     ("0", False), ("false", False), ("False", False), ("no", False)],
)  # fmt: skip
def test_bool_values(raw: str, value: bool) -> None:
    assert Settings.from_env({"PUSHHUB_DEMO": raw}).demo is value


def test_empty_value_means_default() -> None:
    env = {"PUSHHUB_PORT": "", "PUSHHUB_DEMO": "", "PUSHHUB_REDIS_URL": ""}
    assert Settings.from_env(env) == Settings()


def test_unrelated_variables_ignored() -> None:
    assert Settings.from_env({"PORT": "1", "PUSHHUB_NOPE": "x", "pushhub_port": "2"}) == Settings()


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("PUSHHUB_PORT", "eighty"), ("PUSHHUB_PORT", "80.5"), ("PUSHHUB_WORKERS", "two"),
        ("PUSHHUB_HISTORY_LIMIT", "1e3"), ("PUSHHUB_MAX_BODY", "256KiB"),
        ("PUSHHUB_IDEMPOTENCY_TTL", "1d"), ("PUSHHUB_READER_BUFFER", "-"),
        ("PUSHHUB_READER_MAX_MESSAGE", "4k"), ("PUSHHUB_READER_BUFFER_BYTES", "1MiB"), ("PUSHHUB_REDIS_TIMEOUT", "fast"),
        ("PUSHHUB_WS_PING_INTERVAL", "20s"), ("PUSHHUB_SSE_HEARTBEAT", "1,5"),
        ("PUSHHUB_LINGER", "soon"), ("PUSHHUB_DEMO", "maybe"), ("PUSHHUB_DEMO", "on"),
        ("PUSHHUB_DEMO", "2"),
    ],
)  # fmt: skip
def test_invalid_value_names_the_variable(name: str, raw: str) -> None:
    with pytest.raises(ValueError) as info:
        Settings.from_env({name: raw})
    assert name in str(info.value)
    assert repr(raw) in str(info.value)


def test_workers_need_redis() -> None:
    with pytest.raises(ValueError, match="PUSHHUB_REDIS_URL"):
        Settings.from_env({"PUSHHUB_WORKERS": "2"})
    assert (
        Settings.from_env({"PUSHHUB_WORKERS": "2", "PUSHHUB_REDIS_URL": "redis://h"}).workers == 2
    )


@pytest.mark.parametrize(
    ("name", "raw", "word"),
    [
        ("PUSHHUB_WORKERS", "0", "workers"), ("PUSHHUB_HISTORY_LIMIT", "0", "history_limit"),
        ("PUSHHUB_REDIS_TIMEOUT", "0", "redis_timeout"),
        ("PUSHHUB_REDIS_TIMEOUT", "-1", "redis_timeout"),
        ("PUSHHUB_REDIS_TIMEOUT", "nan", "redis_timeout"),
        ("PUSHHUB_WIRE", "slow", "wire"),
        ("PUSHHUB_FORWARDED_ALLOW_IPS", "10.0.0.1,nginx", "'nginx' is not an IP address"),
        ("PUSHHUB_FORWARDED_ALLOW_IPS", "10.0.0.0/33", "forwarded_allow_ips"),
    ],
)  # fmt: skip
def test_out_of_range_values(name: str, raw: str, word: str) -> None:
    with pytest.raises(ValueError, match=word):
        Settings.from_env({name: raw})


def test_trusted_proxies_are_the_listed_addresses_and_none_by_default() -> None:
    assert Settings().trusted_proxies == []
    listed = Settings.from_env({"PUSHHUB_FORWARDED_ALLOW_IPS": " 10.0.0.0/8,, 192.0.2.1 ,*"})
    assert listed.trusted_proxies == ["10.0.0.0/8", "192.0.2.1", "*"]


def test_overrides_win_over_env_and_none_is_ignored() -> None:
    s = Settings.from_env({"PUSHHUB_PORT": "9001", "PUSHHUB_HOST": "h"}, port=9002, host=None)
    assert (s.port, s.host) == (9002, "h")


def test_overrides_are_checked() -> None:
    with pytest.raises(ValueError):
        Settings.from_env({}, workers=4)


def test_to_env_round_trips_every_field() -> None:
    s = Settings.from_env(EVERY_FIELD)
    env = s.to_env()
    assert set(env) == set(EVERY_FIELD)
    assert all(isinstance(v, str) for v in env.values())
    assert Settings.from_env(env) == s


def test_to_env_round_trips_defaults_and_leaves_out_none() -> None:
    env = Settings().to_env()
    assert "PUSHHUB_REDIS_URL" not in env
    assert "PUSHHUB_SECRET" not in env
    assert env["PUSHHUB_DEMO"] == "0"
    assert Settings.from_env(env) == Settings()


def test_to_env_round_trips_unusual_values() -> None:
    s = Settings(
        host="::1", redis_timeout=0.1, ws_ping_interval=1e-3, linger=12345.678, demo=True,
        data_dir=Path("relative dir/with space"), secret="a=b c", log_level="warning",
    )  # fmt: skip
    assert Settings.from_env(s.to_env()) == s


def test_replace_and_reader_queue() -> None:
    s = Settings().replace(history_limit=10, reader_buffer=5)
    assert s.reader_queue == 16
    assert Settings().reader_queue == 1000 + 1 + 256


def test_from_env_reads_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in EVERY_FIELD:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PUSHHUB_PORT", "8123")
    assert Settings.from_env().port == 8123
