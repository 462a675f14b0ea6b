"""What a redis-server did over a window: commands by name (INFO commandstats) and CPU (INFO cpu).

The benchmark reads INFO over one raw RESP connection rather than a client library: a library
may send HELLO or CLIENT SETINFO when it connects, which would be counted as the server's work.
Here every command on the wire is an INFO the benchmark sent, and it knows how many it sent.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import IO

SECTIONS = ("commandstats", "cpu")


class RedisInfoError(Exception):
    pass


class RedisInfo:
    """One connection that sends only INFO; `sent` counts them."""

    def __init__(self, host: str, port: int, timeout: float = 5.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.reader = self.sock.makefile("rb")
        self.sent = 0

    def info(self, section: str) -> str:
        request = f"*2\r\n$4\r\nINFO\r\n${len(section)}\r\n{section}\r\n".encode()
        try:
            self.sock.sendall(request)
            self.sent += 1
            return _read_bulk(self.reader)
        except OSError as exc:
            raise RedisInfoError(f"INFO {section} failed: {exc!r}") from None

    def sample(self) -> RedisSample:
        sent_before = self.sent
        stats = parse_commandstats(self.info("commandstats"))
        return RedisSample(sent_before, stats, parse_cpu(self.info("cpu")))

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


def _read_bulk(reader: IO[bytes]) -> str:
    head = reader.readline()
    if head.startswith(b"-"):
        raise RedisInfoError(head.decode(errors="replace").strip())
    if not head.startswith(b"$"):
        raise RedisInfoError(f"unexpected reply {head[:40]!r}")
    size = int(head[1:])
    body = reader.read(size + 2)
    return body[:size].decode(errors="replace")


@dataclass(frozen=True)
class RedisSample:
    sent_before: int  # INFO commands this benchmark had sent before this sample's first one
    calls: dict[str, int]
    cpu_s: float


def parse_commandstats(text: str) -> dict[str, int]:
    """{command: calls} from `cmdstat_get:calls=3,usec=…` lines (subcommands as `client|id`)."""
    calls: dict[str, int] = {}
    for line in text.splitlines():
        name, sep, fields = line.partition(":")
        if not sep or not name.startswith("cmdstat_"):
            continue
        for field in fields.split(","):
            key, _, value = field.partition("=")
            if key == "calls":
                calls[name.removeprefix("cmdstat_")] = int(value)
    return calls


def parse_cpu(text: str) -> float:
    """The main process's user + system CPU seconds (children, e.g. a fork for RDB, excluded)."""
    values = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    return float(values["used_cpu_user"]) + float(values["used_cpu_sys"])


@dataclass(frozen=True)
class RedisWindow:
    by_command: dict[str, int]  # the server's commands only
    total: int
    own_info: int  # our INFO calls inside the window, left out of the counts
    cpu_s: float


def window(before: RedisSample, after: RedisSample) -> RedisWindow:
    """Commands issued between two samples, less the INFO calls of the samples themselves.

    A command is counted once it has run, so the `after` commandstats include every INFO sent
    from the `before` sample's first one up to, not including, itself.
    """
    own = after.sent_before - before.sent_before
    delta = {
        name: calls - before.calls.get(name, 0)
        for name, calls in after.calls.items()
        if calls != before.calls.get(name, 0)
    }
    delta["info"] = delta.get("info", 0) - own
    by_command = {name: n for name, n in sorted(delta.items()) if n}
    return RedisWindow(by_command, sum(by_command.values()), own, after.cpu_s - before.cpu_s)
