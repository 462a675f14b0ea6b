"""The load process: N WebSocket readers on one blog, driven by one asyncio loop.

It runs as its own process (never inside the server) and talks to the benchmark over pipes,
one JSON object per line:

    stdout  {"phase": "connected", ...}   every reader has its snapshot (or gave up)
    stdin   {"cmd": "drain", "timeout_s": 30}   the last entry was published
    stdout  {"phase": "drained", ...}     every reader has every entry (or the drain timed out)
    stdin   {"cmd": "finish"}
    stdout  {"phase": "result", ...}      counts and latency summaries; then it exits

Between "drained" and "finish", storm mode (bench.storm) adds "drop" and "resume": see
bench._storm_load.

Each reader expects the M events after its snapshot's seq and counts, by seq, what is lost,
duplicated or out of order. Latency is arrival time minus the send time stamped in the entry
(`bench._payload`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from typing import Any
from urllib.parse import urlsplit

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from bench._payload import parse_entry
from bench._proc import raise_nofile, run_loop
from bench._stats import ns_to_ms, summary
from bench._wsclient import HandshakeFailed, LeanConnection

# Frames of one seq are byte-identical for every reader, so each is parsed once; the cap keeps
# a misbehaving server (every frame different) from growing the cache without bound.
CACHE_LIMIT = 100_000
MAX_SIZE = 2**24


def emit(doc: dict[str, Any]) -> None:
    sys.stdout.write(orjson.dumps(doc).decode() + "\n")
    sys.stdout.flush()


class Reader:
    __slots__ = (
        "arrivals", "base", "closed", "conn", "dropped", "dup", "epoch", "first", "got",
        "last", "max_seq", "ooo", "snapshot", "unexpected",
    )  # fmt: skip

    def __init__(self) -> None:
        self.conn: LeanConnection | ClientConnection | None = None
        self.snapshot: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.base = -1  # the snapshot's seq; events base+1 .. base+M are expected
        self.first = 0
        self.last = -1
        self.epoch = ""
        self.arrivals: dict[int, int] = {}
        self.max_seq = -1
        self.got = 0
        self.dup = 0
        self.ooo = 0
        self.unexpected = 0
        self.dropped: str | None = None
        self.closed = False


class Load:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.readers = [Reader() for _ in range(args.readers)]
        self.messages: int = args.messages
        self.sent_ns: dict[int, int] = {}
        self.cache: dict[bytes, tuple[int, int, str]] = {}
        self.pending = args.readers * args.messages
        self.complete = asyncio.Event()
        self.connected = 0
        self.failed: Counter[str] = Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self.done_connecting = asyncio.Event()
        self.settled = 0
        self.bad_frames = 0
        self.finishing = False

    # -- one reader ----------------------------------------------------------------------------

    async def run_reader(self, r: Reader, sem: asyncio.Semaphore) -> None:
        try:
            async with sem:
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
                try:
                    async with asyncio.timeout(self.args.connect_timeout):
                        await self._open(r)
                        await asyncio.shield(r.snapshot)
                finally:
                    self.in_flight -= 1
        except Exception as exc:
            self.failed[describe(exc)] += 1
            self.pending -= self.messages
            r.closed = True
            if r.conn is not None:
                _abort(r.conn)
            self._settle()
            return
        self.connected += 1
        self._settle()
        if isinstance(r.conn, ClientConnection):
            await self._receive(r, r.conn)

    async def _open(self, r: Reader) -> None:
        args = self.args
        if args.client == "websockets":
            r.conn = await connect(
                args.url, compression="deflate" if args.deflate else None, proxy=None,
                ping_interval=None, open_timeout=None, close_timeout=2.0, max_size=MAX_SIZE,
            )  # fmt: skip
            self.on_text(r, await r.conn.recv(decode=False), time.time_ns())
            return
        url = urlsplit(args.url)
        conn = LeanConnection(
            args.url, lambda data, at: self.on_text(r, data, at),
            lambda reason: self.on_closed(r, reason), deflate=args.deflate, max_size=MAX_SIZE,
        )  # fmt: skip
        r.conn = conn
        loop = asyncio.get_running_loop()
        await loop.create_connection(lambda: conn, url.hostname, url.port)
        await asyncio.shield(conn.opened)

    def _settle(self) -> None:
        self.settled += 1
        if self.settled == len(self.readers):
            self.done_connecting.set()
            self._check_complete()

    async def _receive(self, r: Reader, ws: ClientConnection) -> None:
        recv, time_ns = ws.recv, time.time_ns
        try:
            while True:
                data = await recv(decode=False)
                self.on_text(r, data, time_ns())
        except ConnectionClosed as exc:
            self.on_closed(r, f"closed {exc.rcvd.code if exc.rcvd else 'without close frame'}")
        except Exception as exc:
            self.on_closed(r, describe(exc))
            ws.transport.abort()

    # -- what every reader does with what it receives ------------------------------------------

    def on_text(self, r: Reader, data: bytes, arrived: int) -> None:
        """Count one message by seq; the hot path of the whole load process."""
        info = self.cache.get(data)
        if info is None:
            info = self._classify(data)
            if len(self.cache) < CACHE_LIMIT:
                self.cache[data] = info
        seq, sent, kind = info
        if r.base < 0:
            self._on_snapshot(r, data, kind)
            return
        if kind != "event" or not r.first <= seq <= r.last:
            r.unexpected += 1
            self.bad_frames += kind == "bad"
            return
        if seq in r.arrivals:
            r.dup += 1
            return
        if seq < r.max_seq:
            r.ooo += 1
        else:
            r.max_seq = seq
        r.arrivals[seq] = arrived
        if sent:
            self.sent_ns.setdefault(seq, sent)
        r.got += 1
        self.pending -= 1
        if self.pending == 0:
            self._check_complete()

    def _on_snapshot(self, r: Reader, data: bytes, kind: str) -> None:
        doc = first_snapshot(r.snapshot, data, kind)
        if doc is not None:
            r.base, r.epoch = doc["seq"], str(doc.get("epoch"))
            r.first, r.last = r.base + 1, r.base + self.messages
            r.snapshot.set_result(None)

    def on_closed(self, r: Reader, reason: str) -> None:
        if r.closed:
            return
        r.closed = True
        if not r.snapshot.done():
            r.snapshot.set_exception(ConnectionError(reason))
            return
        if not self.finishing:
            r.dropped = reason
            self.pending -= self.messages - r.got
            self._check_complete()

    def _check_complete(self) -> None:
        if self.pending <= 0 and self.done_connecting.is_set():
            self.complete.set()

    @staticmethod
    def _classify(data: bytes | str) -> tuple[int, int, str]:
        seq, kind, _index, sent = classify(data)
        return seq, sent, kind

    # -- phases --------------------------------------------------------------------------------

    async def connect_all(self) -> list[asyncio.Task[None]]:
        sem = asyncio.Semaphore(self.args.connect_concurrency)
        started = time.monotonic()
        tasks = [asyncio.create_task(self.run_reader(r, sem)) for r in self.readers]
        timed_out = False
        try:
            async with asyncio.timeout(self.args.connect_phase_timeout):
                await self.done_connecting.wait()
        except TimeoutError:
            timed_out = True
        epochs = Counter(r.epoch for r in self.readers if r.base >= 0)
        emit({
            "phase": "connected", "ok": self.connected, "failed": sum(self.failed.values()),
            "errors": dict(self.failed.most_common(5)), "timed_out": timed_out,
            "connect_s": time.monotonic() - started, "max_in_flight": self.max_in_flight,
            "snapshot_seqs": sorted({r.base for r in self.readers if r.base >= 0}),
            "epochs": len(epochs),
        })  # fmt: skip
        return tasks

    async def drain(self, timeout: float) -> None:
        started = time.monotonic()
        timed_out = False
        try:
            async with asyncio.timeout(timeout):
                await self.complete.wait()
        except TimeoutError:
            timed_out = True
        # Duplicates can trail the last first-delivery; give them a moment to show up.
        await asyncio.sleep(self.args.linger)
        emit({
            "phase": "drained", "complete": not timed_out, "timed_out": timed_out,
            "waited_s": time.monotonic() - started,
        })  # fmt: skip

    async def close_all(self, tasks: Sequence[asyncio.Task[None]]) -> None:
        self.finishing = True
        lean = [r.conn for r in self.readers if isinstance(r.conn, LeanConnection)]
        high = [r.conn for r in self.readers if isinstance(r.conn, ClientConnection)]
        for conn in lean:
            conn.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10.0):
                await asyncio.gather(
                    *(c.lost for c in lean), *(c.close() for c in high), return_exceptions=True
                )
        for conn in lean:
            conn.abort()
        for task in tasks:
            task.cancel()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5.0):
                await asyncio.gather(*tasks, return_exceptions=True)

    def result(self) -> dict[str, Any]:
        live = [r for r in self.readers if r.base >= 0]
        latencies: list[int] = []
        last_at: dict[int, int] = {}
        first_at: dict[int, int] = {}
        have: Counter[int] = Counter()
        for r in live:
            for seq, arrived in r.arrivals.items():
                have[seq] += 1
                if arrived > last_at.get(seq, 0):
                    last_at[seq] = arrived
                if seq not in first_at or arrived < first_at[seq]:
                    first_at[seq] = arrived
                sent = self.sent_ns.get(seq)
                if sent:
                    latencies.append(arrived - sent)
        everyone = [s for s in last_at if have[s] == len(live) and s in self.sent_ns]
        delivered = sum(r.got for r in live)
        window_ns = (max(last_at.values()) - min(self.sent_ns.values())) if latencies else 0
        return {
            "phase": "result",
            "readers_connected": len(live),
            "expected_deliveries": len(live) * self.messages,
            "delivered": delivered,
            "lost": len(live) * self.messages - delivered,
            "dup": sum(r.dup for r in live),
            "out_of_order": sum(r.ooo for r in live),
            "unexpected_frames": sum(r.unexpected for r in live),
            "bad_frames": self.bad_frames,
            "dropped": sum(1 for r in live if r.dropped),
            "drop_reasons": dict(Counter(r.dropped for r in live if r.dropped).most_common(5)),
            "missing_send_time": sum(1 for s in last_at if s not in self.sent_ns),
            "latency_ms": summary(ns_to_ms(latencies)),
            "last_reader_ms": summary(ns_to_ms([last_at[s] - self.sent_ns[s] for s in everyone])),
            "first_reader_ms": summary(ns_to_ms([first_at[s] - self.sent_ns[s] for s in everyone])),
            "deliveries_per_s": delivered / (window_ns / 1e9) if window_ns > 0 else 0.0,
        }


def classify(data: bytes | str) -> tuple[int, str, int, int]:
    """(seq, frame type, entry index, send time) of one frame, from the stamp in its entry
    (`bench._payload.parse_entry`); index -1 and time 0 when the entry is not a benchmark one."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        return -1, "bad", -1, 0
    if not isinstance(doc, dict) or not isinstance(doc.get("seq"), int):
        return -1, "bad", -1, 0
    parsed = parse_entry(doc.get("entry"))
    index, sent = parsed if parsed else (-1, 0)
    return doc["seq"], str(doc.get("type")), index, sent


def first_snapshot(snapshot: asyncio.Future[None], data: bytes, kind: str) -> dict[str, Any] | None:
    """A reader's first frame, which must be a snapshot: its document, or None when the reader
    already has one or this is not one (then `snapshot` fails)."""
    if snapshot.done():
        return None
    if kind != "snapshot":
        snapshot.set_exception(ValueError(f"first frame is not a snapshot: {data[:80]!r}"))
        return None
    doc: dict[str, Any] = orjson.loads(data)
    return doc


def _abort(conn: LeanConnection | ClientConnection) -> None:
    if isinstance(conn, LeanConnection):
        conn.abort()
    else:
        conn.transport.abort()


def describe(exc: BaseException) -> str:
    if isinstance(exc, HandshakeFailed):
        return f"handshake refused: {exc}"
    if isinstance(exc, InvalidStatus):
        return f"http {exc.response.status_code}"
    if isinstance(exc, OSError) and exc.errno is not None:
        return f"{type(exc).__name__} errno {exc.errno}"
    return type(exc).__name__


class Commands:
    """Lines from stdin, read on a daemon thread so that waiting for one can be bounded."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self.loop = loop
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in sys.stdin:
            with contextlib.suppress(orjson.JSONDecodeError):
                self.loop.call_soon_threadsafe(self.queue.put_nowait, orjson.loads(line))
        self.loop.call_soon_threadsafe(self.queue.put_nowait, None)

    async def next(self, timeout: float) -> dict[str, Any] | None:
        """The next command, or None when stdin closed (the benchmark is gone) or on timeout."""
        try:
            async with asyncio.timeout(timeout):
                return await self.queue.get()
        except TimeoutError:
            return None


async def run(args: argparse.Namespace) -> int:
    commands = Commands(asyncio.get_running_loop())
    load = Load(args)
    tasks = await load.connect_all()
    try:
        cmd = await commands.next(args.wait_timeout)
        if cmd is None or cmd.get("cmd") != "drain":
            return 3
        await load.drain(float(cmd.get("timeout_s", 30.0)))
        if not await after_drain(load, commands, tasks):
            return 3
    finally:
        await load.close_all(tasks)
    emit(load.result())
    return 0


async def after_drain(load: Load, commands: Commands, tasks: list[asyncio.Task[None]]) -> bool:
    """Serve commands up to "finish" (True); storm mode adds "drop" and "resume" (see
    bench._storm_load). False on anything else, or when stdin closed or went quiet."""
    # Imported here: the storm module builds on this one.
    from bench._storm_load import Storm

    storm: Storm | None = None
    while True:
        cmd = await commands.next(load.args.wait_timeout)
        name = cmd.get("cmd") if cmd is not None else None
        if cmd is None or name == "finish":
            return cmd is not None
        if name == "drop" and storm is None:
            storm = Storm(load)
            emit({"phase": "dropped", "readers": storm.drop()})
        elif name == "resume" and storm is not None and not storm.started_ns:
            await storm.resume(int(cmd["missed"]), float(cmd.get("timeout_s", 60.0)))
            tasks.extend(storm.tasks)
        else:
            return False


def reader_options(
    prog: str, doc: str | None, *, concurrency: int, wait_timeout: float, linger: float
) -> argparse.ArgumentParser:
    """The options of a load process (this one or `bench._firstdelivery`): its readers, where
    they connect and how long each step may take. The benchmark passes the timeouts it has."""
    p = argparse.ArgumentParser(prog=f"python -m {prog}", description=doc)
    p.add_argument("--url", required=True, help="ws://127.0.0.1:PORT/ws/blogs/SLUG")
    p.add_argument("--readers", type=int, required=True)
    p.add_argument("--connect-concurrency", type=int, default=concurrency)
    p.add_argument("--connect-timeout", type=float, default=10.0, help="per reader, seconds")
    p.add_argument("--connect-phase-timeout", type=float, default=60.0)
    p.add_argument("--wait-timeout", type=float, default=wait_timeout, help="for each command")
    p.add_argument("--linger", type=float, default=linger, help="after a drain, for duplicates")
    p.add_argument("--no-uvloop", action="store_true")
    return p


def serve(
    run: Callable[[argparse.Namespace], Coroutine[Any, Any, int]], args: argparse.Namespace
) -> int:
    """A load process's life: room for its readers' sockets, then `run` on its event loop."""
    raise_nofile(args.readers + 256)
    return run_loop(run(args), uvloop=not args.no_uvloop)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = reader_options("bench._loadgen", __doc__, concurrency=200, wait_timeout=120.0, linger=0.5)
    p.add_argument("--messages", type=int, required=True)
    p.add_argument("--deflate", action="store_true", help="offer permessage-deflate")
    p.add_argument("--client", choices=("lean", "websockets"), default="lean")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    return serve(run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
