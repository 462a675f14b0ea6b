"""Tools for the hostile-input suites: real nodes tuned for fuzzing, a bystander reader that runs
in a thread while the abuse goes on, raw sockets that speak just enough HTTP and WebSocket to
misbehave on purpose, and the checks every suite ends with (process alive, log clean, memory).

Everything is synchronous on purpose: Hypothesis drives plain functions, and a thread keeps the
bystander reading across examples. Every socket has a timeout; every wait has a deadline.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from pushhub.auth import issue_token
from tests.support.readers import LocalCopy, as_read
from tests.support.servers import HOST, TEST_SECRET, PushhubProcess, RedisProcess

# The abuse comes from one address: rates would turn most of it into 429s and hide the code
# paths we want to reach, so they are off. The node takes only a few readers at once: a reader
# slot that an abusive client never gives back soon leaves the node refusing everyone (503).
FUZZ_ENV = {
    "PUSHHUB_IP_CONNECT_RATE": "0",
    "PUSHHUB_PUBLISH_RATE": "0",
    "PUSHHUB_MAX_READERS": "32",
}

# docs/protocol.md, "Errors are JSON": status -> error code. 405 is Starlette's answer for a
# known path with another method (not in the table, but JSON like the rest).
DOCUMENTED_ERRORS = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 413: "too_large", 414: "bad_request",
    415: "unsupported_media_type", 422: "invalid", 429: "rate_limited", 431: "bad_request",
}  # fmt: skip

# Close codes a reader may be sent: the table in docs/protocol.md, plus RFC 6455 codes the table
# does not list: broken framing (1002), text that is not UTF-8 (1007), and 1001 (going away) as
# the echo of a client's own close.
DOCUMENTED_CLOSE_CODES = {1000, 1003, 1008, 1009, 1011, 1012, 1013, 4400, 4403, 4404}
PROTOCOL_CLOSE_CODES = {1001, 1002, 1007}

# What a server log must never show, whatever a client sent.
_LOG_PROBLEMS = re.compile(
    r"Traceback|\bERROR\b|CRITICAL|Exception in ASGI application|Task exception was never"
)


def editor_token(blogs: tuple[str, ...] = ("*",), subject: str = "Fuzz Editor") -> str:
    return issue_token(TEST_SECRET, subject=subject, blogs=list(blogs), ttl_seconds=3600)


@contextlib.contextmanager
def fuzz_node(
    base: Path, store: str, env: dict[str, str] | None = None
) -> Iterator[PushhubProcess]:
    """A pushhub node (and its redis-server when `store` is "redis"), killed afterwards."""
    redis = RedisProcess(base / "redis").start() if store == "redis" else None
    try:
        node = PushhubProcess(
            base / "node", redis_url=redis.url if redis else None,
            extra_env={**FUZZ_ENV, **(env or {})},
        )  # fmt: skip
        node.start()
        try:
            yield node
        finally:
            node.kill()
    finally:
        if redis is not None:
            redis.kill()


def http_client(
    node: PushhubProcess, token: str | None = None, timeout: float = 10.0
) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=node.url, headers=headers, timeout=timeout, trust_env=False)


def make_blog(client: httpx.Client, slug: str, **fields: Any) -> dict[str, Any]:
    fields.setdefault("title", f"Blog {slug}")
    r = client.put(f"/api/blogs/{slug}", json=fields)
    assert r.status_code in (200, 201), r.text
    return dict(r.json())


def publish(client: httpx.Client, slug: str, body: str = "still here") -> dict[str, Any]:
    r = client.post(f"/api/blogs/{slug}/entries", json={"body": body})
    assert r.status_code == 201, r.text
    return dict(r.json())


# -- the server process -----------------------------------------------------------------------


def rss_kib(node: PushhubProcess) -> int:
    """The node's resident memory (VmRSS), in KiB."""
    assert node.proc is not None
    for line in Path(f"/proc/{node.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS line")


def log_offset(node: PushhubProcess) -> int:
    try:
        return node.log_path.stat().st_size
    except OSError:
        return 0


def log_problems(node: PushhubProcess, since: int = 0, allow: tuple[str, ...] = ()) -> list[str]:
    """Lines of the node's log (from byte `since`) that say something went wrong inside it,
    each with the line before it and the end of its traceback; blocks that mention one of
    `allow` are left out."""
    try:
        with node.log_path.open("rb") as f:
            f.seek(since)
            text = f.read().decode(errors="replace")
    except OSError:
        return []
    lines = text.splitlines()
    out = []
    i = 0
    while i < len(lines) and len(out) < 3:
        if not _LOG_PROBLEMS.search(lines[i]):
            i += 1
            continue
        end = i + 1
        while end < len(lines) and (
            lines[end].startswith((" ", "Traceback", "The above", "During")) or not lines[end]
        ):
            end += 1
        tail = lines[end : end + 1]  # the exception line closes a traceback
        block = [*lines[max(0, i - 1) : i + 2], "  [...]", *lines[max(i + 2, end - 4) : end], *tail]
        if not any(a in line for a in allow for line in lines[max(0, i - 1) : end + 1]):
            out.append("\n".join(block))
        i = end + 1
    return out


def assert_node_healthy(
    node: PushhubProcess,
    since: int = 0,
    timeout: float = 5.0,
    context: str = "",
    allow: tuple[str, ...] = (),
) -> None:
    """Alive, answering /healthz in time, and nothing in its log that says it failed."""
    assert node.proc is not None and node.proc.poll() is None, f"node died:\n{node.log()}"
    r = httpx.get(f"{node.url}/healthz", timeout=timeout, trust_env=False)
    assert r.status_code == 200, r.text
    problems = log_problems(node, since, allow)
    assert not problems, f"{context}: server log shows a failure:\n" + "\n----\n".join(problems)


def reader_count(node: PushhubProcess) -> int:
    r = httpx.get(f"{node.url}/readyz", timeout=5.0, trust_env=False)
    return int(r.json()["readers"])


def wait_reader_count(node: PushhubProcess, expected: int, timeout: float = 10.0) -> None:
    """Readers the hub holds drop back to `expected` once abusive clients are gone."""
    deadline = time.monotonic() + timeout
    count = reader_count(node)
    while count != expected and time.monotonic() < deadline:
        time.sleep(0.1)
        count = reader_count(node)
    assert count == expected, f"the hub still holds {count} readers, expected {expected}"


def assert_json_error(status: int, content_type: str, body: bytes, where: str) -> dict[str, Any]:
    """An error answer as docs/protocol.md describes it; returns the parsed body."""
    assert status in DOCUMENTED_ERRORS, f"{where}: undocumented status {status}: {body[:300]!r}"
    assert content_type.startswith("application/json"), f"{where}: {status} as {content_type!r}"
    doc = json.loads(body)
    assert isinstance(doc, dict), f"{where}: error body is not an object: {doc!r}"
    assert doc.get("error") == DOCUMENTED_ERRORS[status], f"{where}: {status} with {doc!r}"
    assert isinstance(doc.get("message"), str) and doc["message"], f"{where}: {doc!r}"
    if status == 422:
        assert isinstance(doc.get("field"), str), f"{where}: 422 without a field: {doc!r}"
    return doc


# -- a bystander reader -----------------------------------------------------------------------


class Bystander:
    """A well-behaved WebSocket reader of one blog that keeps reading in a thread, applying
    every frame to a LocalCopy (which fails on any gap, duplicate or reordering)."""

    def __init__(self, node: PushhubProcess, blog: str) -> None:
        self.url = f"{node.ws_url}/ws/blogs/{blog}"
        self.copy = LocalCopy()
        self.error: BaseException | None = None
        self.closed: ConnectionClosed | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ws: ClientConnection | None = None
        self._thread = threading.Thread(target=self._run, name="bystander", daemon=True)

    def start(self, timeout: float = 10.0) -> Bystander:
        self._thread.start()
        self._wait(lambda: self.copy.seq is not None, timeout, "the first snapshot")
        return self

    def _run(self) -> None:
        try:
            with connect(self.url, open_timeout=10, close_timeout=2, proxy=None) as ws:
                self._ws = ws
                self._read(ws)
        except BaseException as exc:  # surfaced by wait_seq/check, never lost in the thread
            if self.error is None and self.closed is None and not self._stop.is_set():
                self.error = exc

    def _read(self, ws: ClientConnection) -> None:
        while not self._stop.is_set():
            try:
                raw = ws.recv(timeout=0.2)
            except TimeoutError:
                continue
            except ConnectionClosed as closed:
                if not self._stop.is_set():
                    self.closed = closed
                return
            with self._lock:
                self.copy.apply(json.loads(raw))

    def _wait(self, done: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check()
            with self._lock:
                if done():
                    return
            time.sleep(0.01)
        self.check()
        raise AssertionError(f"bystander did not get {what} within {timeout}s (at {self.copy.seq})")

    def check(self) -> None:
        if self.error is not None:
            raise AssertionError(f"bystander failed: {self.error!r}") from self.error
        if self.closed is not None:
            raise AssertionError(f"bystander was disconnected: {self.closed!r}")

    def wait_seq(self, seq: int, timeout: float = 10.0) -> None:
        self._wait(
            lambda: self.copy.seq is not None and self.copy.seq >= seq, timeout, f"seq {seq}"
        )

    def assert_level_with(self, state: dict[str, Any]) -> None:
        """The bystander's copy is the server's blog, exactly."""
        with self._lock:
            assert self.copy.seq == state["seq"] and self.copy.epoch == state["epoch"]
            assert self.copy.entries == as_read(state["entries"])
            assert self.copy.blog == state["blog"]
            assert len(self.copy.seen) == len(set(self.copy.seen))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def prove_bystander_live(bystander: Bystander, editor: httpx.Client, blog: str) -> None:
    """A publish after the abuse reaches the bystander, and its copy equals the server's."""
    published = publish(editor, blog, "published after the abuse")
    bystander.wait_seq(published["seq"])
    r = editor.get(f"/api/blogs/{blog}")
    assert r.status_code == 200, r.text
    bystander.assert_level_with(r.json())


# -- raw sockets ------------------------------------------------------------------------------


def upgrade_request(path: str, extra: bytes = b"", key: bytes | None = None) -> bytes:
    key = key if key is not None else base64.b64encode(os.urandom(16))
    return (
        b"GET " + path.encode() + b" HTTP/1.1\r\nHost: " + HOST.encode() + b"\r\n"
        b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key + b"\r\n"
        b"Sec-WebSocket-Version: 13\r\n" + extra + b"\r\n"
    )


def client_frame(
    opcode: int, payload: bytes = b"", *, fin: bool = True, rsv: int = 0, mask: bool = True,
    length: int | None = None,
) -> bytes:  # fmt: skip
    """One frame as a client would send it (masked), or broken in the ways asked for.
    `length` claims another payload length than the bytes that follow."""
    n = len(payload) if length is None else length
    first = (0x80 if fin else 0) | (rsv & 0x70) | (opcode & 0x0F)
    bit = 0x80 if mask else 0
    if n < 126:
        header = struct.pack("!BB", first, bit | n)
    elif n < 1 << 16:
        header = struct.pack("!BBH", first, bit | 126, n)
    else:
        header = struct.pack("!BBQ", first, bit | 127, n)
    if not mask:
        return header + payload
    key = os.urandom(4)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return header + key + masked


PING_MESSAGE = client_frame(0x1, b'{"type":"ping"}')


def is_pong_message(frame: ServerFrame) -> bool:
    return frame.opcode == 0x1 and json.loads(frame.payload) == {"type": "pong"}


def close_frame(code: int | None = 1000, reason: bytes = b"") -> bytes:
    payload = b"" if code is None else struct.pack("!H", code) + reason
    return client_frame(0x8, payload)


@dataclass(frozen=True)
class ServerFrame:
    fin: bool
    opcode: int
    payload: bytes

    @property
    def close_code(self) -> int | None:
        return struct.unpack("!H", self.payload[:2])[0] if len(self.payload) >= 2 else None


@dataclass(frozen=True)
class Ending:
    """How the server ended an abusive connection: a close frame (code), and/or dropped."""

    code: int | None
    reason: bytes
    dropped: bool
    frames: tuple[ServerFrame, ...]


class RawConn:
    """A TCP connection to the node that sends whatever it is told to."""

    def __init__(self, node: PushhubProcess, timeout: float = 5.0) -> None:
        self.sock = socket.create_connection((HOST, node.port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.eof = False

    def send(self, data: bytes) -> bool:
        """False when the server has already gone (which is a fine answer to abuse)."""
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            return False
        return True

    def _fill(self, deadline: float) -> bool:
        """Read more; False on EOF. Raises TimeoutError past the deadline."""
        if self.eof:
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)  # raises TimeoutError (socket.timeout) past the deadline
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def read_head(self, timeout: float = 5.0) -> tuple[int, bytes]:
        """The HTTP status and header block of the answer; the rest stays buffered."""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buf:
            if not self._fill(deadline):
                raise AssertionError(
                    f"connection closed before an HTTP answer: {bytes(self.buf)!r}"
                )
        head, _, rest = bytes(self.buf).partition(b"\r\n\r\n")
        self.buf = bytearray(rest)
        status = int(head.split(b" ", 2)[1])
        return status, head

    def read_http(self, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes] | None:
        """One whole HTTP answer (Content-Length bodies), or None if the server closed without one."""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buf:
            if not self._fill(deadline):
                if not self.buf:
                    return None
                raise AssertionError(f"truncated HTTP answer: {bytes(self.buf)!r}")
        head, _, _ = bytes(self.buf).partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        headers = {}
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
        length = int(headers.get("content-length", "0"))
        while len(self.buf) < len(head) + 4 + length:
            if not self._fill(deadline):
                break
        body = bytes(self.buf[len(head) + 4 : len(head) + 4 + length])
        del self.buf[: len(head) + 4 + length]
        return status, headers, body

    def next_frame(self, deadline: float) -> ServerFrame | None:
        """The next server frame; None on EOF. Raises TimeoutError past the deadline."""
        while True:
            frame = _take_frame(self.buf)
            if frame is not None:
                return frame
            if not self._fill(deadline):
                return None

    def ending(self, timeout: float = 5.0, check: bool = True) -> Ending:
        """Read until the server closes (close frame, answered like a client would) or drops the
        connection. Fails if neither happens within `timeout`, and (with `check`) if the server
        sends a frame it should not."""
        deadline = time.monotonic() + timeout
        frames: list[ServerFrame] = []
        try:
            while True:
                frame = self.next_frame(deadline)
                if frame is None:
                    return Ending(None, b"", True, tuple(frames))
                if check:
                    check_server_frame(frame)
                frames.append(frame)
                if frame.opcode == 0x8:
                    break
            # Answer the close as a client would; then the server ends the TCP connection.
            self.send(client_frame(0x8, frame.payload[:2]))
            with contextlib.suppress(TimeoutError):
                while self.next_frame(deadline) is not None:
                    pass
            return Ending(frame.close_code, frame.payload[2:], self.eof, tuple(frames))
        except TimeoutError:
            raise AssertionError(
                f"connection still open after {timeout}s; frames {[f.opcode for f in frames]}"
            ) from None

    def frames_within(self, window: float) -> list[ServerFrame]:
        """Every frame that arrives within `window` seconds (stops early at EOF or a close)."""
        deadline = time.monotonic() + window
        out: list[ServerFrame] = []
        with contextlib.suppress(TimeoutError):
            while (frame := self.next_frame(deadline)) is not None:
                check_server_frame(frame)
                out.append(frame)
                if frame.opcode == 0x8:
                    break
        return out

    def until(self, done: Callable[[list[ServerFrame]], bool], timeout: float) -> list[ServerFrame]:
        """Frames until `done(frames)`, a close, EOF, or `timeout` seconds: whichever is first."""
        deadline = time.monotonic() + timeout
        out: list[ServerFrame] = []
        with contextlib.suppress(TimeoutError):
            while not done(out) and (frame := self.next_frame(deadline)) is not None:
                check_server_frame(frame)
                out.append(frame)
                if frame.opcode == 0x8:
                    break
        return out

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def _take_frame(buf: bytearray) -> ServerFrame | None:
    if len(buf) < 2:
        return None
    b0, b1 = buf[0], buf[1]
    assert not b1 & 0x80, f"server frames must not be masked: {bytes(buf[:16])!r}"
    n, pos = b1 & 0x7F, 2
    if n == 126:
        if len(buf) < 4:
            return None
        n, pos = struct.unpack_from("!H", buf, 2)[0], 4
    elif n == 127:
        if len(buf) < 10:
            return None
        n, pos = struct.unpack_from("!Q", buf, 2)[0], 10
    if len(buf) < pos + n:
        return None
    payload = bytes(buf[pos : pos + n])
    del buf[: pos + n]
    assert not b0 & 0x70, f"server frame with reserved bits (no extension was offered): {b0:#x}"
    return ServerFrame(bool(b0 & 0x80), b0 & 0x0F, payload)


def check_server_frame(frame: ServerFrame) -> None:
    """What a server may send a reader: JSON text, pings and pongs, a close with a known code."""
    assert frame.opcode in (0x1, 0x8, 0x9, 0xA), f"server sent opcode {frame.opcode}"
    if frame.opcode == 0x1:
        doc = json.loads(frame.payload)
        assert doc.get("type") in ("snapshot", "event", "pong"), doc
    elif frame.opcode == 0x8 and frame.close_code is not None:
        allowed = DOCUMENTED_CLOSE_CODES | PROTOCOL_CLOSE_CODES
        assert frame.close_code in allowed, f"undocumented close code {frame.close_code}"
        frame.payload[2:].decode()  # the reason is UTF-8


def open_reader(node: PushhubProcess, blog: str, timeout: float = 5.0) -> RawConn:
    """A raw WebSocket reader past its handshake and snapshot: ready to misbehave."""
    conn = RawConn(node, timeout)
    conn.send(upgrade_request(f"/ws/blogs/{blog}"))
    status, head = conn.read_head(timeout)
    assert status == 101, head
    first = conn.next_frame(time.monotonic() + timeout)
    assert first is not None and first.opcode == 0x1, first
    assert json.loads(first.payload)["type"] == "snapshot"
    return conn
