"""The load process of `bench.scale`: N WebSocket readers that do not read while the server works.

A reader that reads costs CPU on the same two cores as the server, and on this machine the
readers of `bench._loadgen` need more than a core at the rates that would show a second server
worker at work. These readers take their snapshot, then leave their sockets alone: the kernel
queues what the server writes (the receive queue of a socket holds a whole run of small
frames), and the process sleeps. Afterwards each socket is read at once; the kernel's receive
time stamp (SO_TIMESTAMPNS, which TCP gives for the last segment a read returns) says when the
reader's last frame arrived, so the run still has a finish time without a reader awake during it.

One JSON object per line, as in `bench._loadgen`:

    stdout  {"phase": "connected", ...}      every reader has its snapshot (or gave up)
    stdin   {"cmd": "collect", "timeout_s": 30}   the server is done: read everything
    stdout  {"phase": "collected", ...}      counts by seq and the arrival times
    stdin   EOF                              close the readers and leave

Linux only (SO_TIMESTAMPNS, the readers' socket options).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import selectors
import socket
import struct
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import orjson

from bench._loadgen import classify, emit
from bench._proc import raise_nofile, run_loop
from bench._stats import summary

# <linux/asm-generic/socket.h>; Python's socket module does not name it.
SO_TIMESTAMPNS = 35
_TIMESPEC = struct.Struct("@qq")
_ANCILLARY = socket.CMSG_SPACE(_TIMESPEC.size)
# One buffer for every read: a fresh 1 MB bytes object per recvmsg would be an mmap each time.
_SCRATCH = bytearray(1 << 20)
OP_TEXT, OP_CLOSE, OP_PING = 0x1, 0x8, 0x9


class FrameError(Exception):
    pass


def server_frames(buf: bytearray) -> Iterator[tuple[int, bytes]]:
    """(opcode, payload) of each whole unmasked frame at the front of `buf`, removing them; a
    frame cut short stays in `buf` for the next read."""
    pos = 0
    while len(buf) - pos >= 2:
        b0, b1 = buf[pos], buf[pos + 1]
        if b1 & 0x80:
            raise FrameError("masked frame from the server")
        if not b0 & 0x80:
            raise FrameError("fragmented frame (the server sends whole messages)")
        length, head = b1 & 0x7F, 2
        if length == 126:
            if len(buf) - pos < 4:
                break
            length, head = int.from_bytes(buf[pos + 2 : pos + 4], "big"), 4
        elif length == 127:
            if len(buf) - pos < 10:
                break
            length, head = int.from_bytes(buf[pos + 2 : pos + 10], "big"), 10
        if len(buf) - pos < head + length:
            break
        yield b0 & 0x0F, bytes(buf[pos + head : pos + head + length])
        pos += head + length
    del buf[:pos]


@dataclass
class Reader:
    sock: socket.socket
    buf: bytearray = field(default_factory=bytearray)
    base: int = -1  # the snapshot's seq
    seqs: list[int] = field(default_factory=list)
    last_ns: int = 0  # kernel arrival time of the last segment read
    unexpected: Counter[str] = field(default_factory=Counter)  # frames that are not events, by type
    closed: str | None = None


def _handshake(host: str, port: int, path: str) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


async def _open(url: str, timeout: float, rcvbuf: int) -> Reader:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        if rcvbuf:
            # Room for the whole run before connecting (the window is set at the handshake);
            # what does not fit waits in the server's send buffer and arrives only when read.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            # Linux reports twice what was set (the doubling covers its bookkeeping).
            if sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) < rcvbuf:
                raise OSError(f"receive buffer capped below {rcvbuf} bytes (net.core.rmem_max)")
        loop = asyncio.get_running_loop()
        reader = Reader(sock)
        async with asyncio.timeout(timeout):
            await loop.sock_connect(sock, (host, port))
            await loop.sock_sendall(sock, _handshake(host, port, parts.path or "/"))
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = await loop.sock_recv(sock, 65536)
                if not chunk:
                    raise ConnectionError("closed during the handshake")
                head += chunk
            head, _, rest = head.partition(b"\r\n\r\n")
            status = head.split(b"\r\n", 1)[0]
            if b" 101 " not in status + b" ":
                raise ConnectionError(f"handshake refused: {status[:60].decode('latin-1')}")
            reader.buf += rest
            while reader.base < 0:
                for opcode, payload in server_frames(reader.buf):
                    if opcode == OP_TEXT and reader.base < 0:
                        seq, kind, _index, _sent = classify(payload)
                        if kind != "snapshot":
                            raise ConnectionError(f"first frame is a {kind!r}, not a snapshot")
                        reader.base = seq
                    elif opcode == OP_TEXT:
                        _count(reader, payload)
                if reader.base < 0:
                    chunk = await loop.sock_recv(sock, 65536)
                    if not chunk:
                        raise ConnectionError("closed before the snapshot")
                    reader.buf += chunk
    except BaseException:
        sock.close()
        raise
    return reader


def _count(reader: Reader, payload: bytes) -> None:
    seq, kind, _index, _sent = classify(payload)
    if kind == "event":
        reader.seqs.append(seq)
    else:
        reader.unexpected[f"{kind} {payload[:160]!r}"] += 1


async def connect_all(
    url: str, n: int, concurrency: int, timeout: float, rcvbuf: int
) -> list[Reader]:
    slots = asyncio.Semaphore(concurrency)
    failed: Counter[str] = Counter()

    async def one() -> Reader | None:
        async with slots:
            try:
                return await _open(url, timeout, rcvbuf)
            except (OSError, TimeoutError, FrameError) as exc:
                failed[f"{type(exc).__name__}: {exc}"[:120]] += 1
                return None

    started = time.monotonic()
    opened = await asyncio.gather(*(one() for _ in range(n)))
    readers = [r for r in opened if r is not None]
    emit({
        "phase": "connected", "ok": len(readers), "failed": n - len(readers),
        "errors": dict(failed.most_common(5)), "connect_s": time.monotonic() - started,
        "snapshot_seqs": sorted({r.base for r in readers}),
    })  # fmt: skip
    return readers


def _read_all(reader: Reader) -> bool:
    """Read what the kernel holds for `reader`; False once the connection is over."""
    while True:
        try:
            size, ancillary, _flags, _addr = reader.sock.recvmsg_into([_SCRATCH], _ANCILLARY)
        except BlockingIOError:
            return True
        except OSError as exc:
            reader.closed = f"{type(exc).__name__} errno {exc.errno}"
            return False
        if not size:
            reader.closed = reader.closed or "closed by the server"
            return False
        for level, kind, value in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                sec, nsec = _TIMESPEC.unpack(value[: _TIMESPEC.size])
                reader.last_ns = sec * 1_000_000_000 + nsec
        reader.buf += memoryview(_SCRATCH)[:size]
        for opcode, payload in server_frames(reader.buf):
            if opcode == OP_TEXT:
                _count(reader, payload)
            elif opcode == OP_CLOSE:
                code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
                reader.closed = f"close {code}"
            # Pings go unanswered: the benchmark sets the server's ping interval past the run.


def collect(readers: list[Reader], messages: int, timeout: float, since_ns: int) -> dict[str, Any]:
    """Read every reader's queue; wait (up to `timeout`) for those that have not got all
    `messages` events yet. Counts what is lost, duplicated or out of order, by seq, and when
    each reader's last frame arrived, in ms after `since_ns` (wall clock, as the kernel's)."""
    started = time.monotonic()
    pending = [r for r in readers if _read_all(r) and len(r.seqs) < messages]
    with selectors.DefaultSelector() as sel:
        for r in pending:
            sel.register(r.sock, selectors.EVENT_READ, r)
        left = len(pending)
        deadline = started + timeout
        while left and (wait := deadline - time.monotonic()) > 0:
            for key, _ in sel.select(wait):
                r = key.data
                if not _read_all(r) or len(r.seqs) >= messages:
                    sel.unregister(r.sock)
                    left -= 1
    lost = dup = ooo = 0
    for r in readers:
        expected = range(r.base + 1, r.base + messages + 1)
        got = Counter(r.seqs)
        lost += sum(1 for s in expected if s not in got)
        dup += sum(c - 1 for c in got.values() if c > 1)
        ooo += sum(1 for a, b in zip(r.seqs, r.seqs[1:], strict=False) if b < a)
    ends = [r.last_ns for r in readers if r.last_ns]
    return {
        "phase": "collected", "readers": len(readers),
        "delivered": sum(len(set(r.seqs)) for r in readers),
        "expected_deliveries": len(readers) * messages, "lost": lost, "dup": dup,
        "out_of_order": ooo, "unexpected_frames": sum(sum(r.unexpected.values()) for r in readers),
        "unexpected_types": dict(sum((r.unexpected for r in readers), Counter()).most_common(5)),
        "closed": dict(Counter(r.closed for r in readers if r.closed).most_common(5)),
        "timed_out": left > 0, "collect_s": time.monotonic() - started,
        "last_arrival_ns": max(ends) if ends else None,
        "reader_done_ms": summary([(t - since_ns) / 1e6 for t in ends]) if ends else None,
        "stamped": len(ends),
    }  # fmt: skip


async def main_async(args: argparse.Namespace) -> None:
    readers = await connect_all(
        args.url, args.readers, args.connect_concurrency, args.timeout, args.rcvbuf
    )
    loop = asyncio.get_running_loop()
    line = await loop.run_in_executor(None, sys.stdin.readline)
    if line:
        cmd = orjson.loads(line)
        if cmd.get("cmd") == "collect":
            timeout = float(cmd.get("timeout_s", 30.0))
            emit(collect(readers, args.messages, timeout, int(cmd.get("since_ns", 0))))
        await loop.run_in_executor(None, sys.stdin.readline)  # EOF: leave
    for r in readers:
        r.sock.close()


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench._parked")
    p.add_argument("--url", required=True)
    p.add_argument("--readers", type=int, required=True)
    p.add_argument("--messages", type=int, required=True)
    p.add_argument("--connect-concurrency", type=int, default=200)
    p.add_argument("--timeout", type=float, default=15.0, help="per reader's connect, s")
    p.add_argument("--rcvbuf", type=int, default=0, help="SO_RCVBUF per reader, bytes (0: default)")
    args = p.parse_args()
    raise_nofile(args.readers + 256)
    run_loop(main_async(args), uvloop=False)


if __name__ == "__main__":
    main()
