"""The reader process of `bench.publish`: R WebSocket readers on one blog, in their own process.

It records, per reader and per seq, when each event frame arrived (`time.time_ns()`, one stamp
per socket read), and talks to the benchmark over pipes, one JSON object per line:

    stdout  {"phase": "connected", ...}        every reader has its snapshot (or gave up)
    stdin   {"cmd": "drain", "seqs": [...], "timeout_s": 30}   the seqs the API accepted
    stdout  {"phase": "drained", ...}          every reader has every accepted seq (or timed out)
    stdout  {"phase": "result", ...}           counts and, per seq, first/last arrival

then it closes its readers and exits; EOF on stdin (the benchmark is gone) does the same.

Unlike `bench._loadgen`, the number of entries is not known in advance (the editors publish for
a duration), so what counts as lost is decided only when the benchmark sends the accepted seqs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson

from bench._loadgen import MAX_SIZE, classify, describe, emit, first_snapshot, reader_options, serve
from bench._wsclient import LeanConnection

# With several readers every seq arrives as the same bytes R times; parse it once. Bounded, so a
# server sending a different frame each time cannot grow it without limit.
CACHE_LIMIT = 10_000
# The drain command carries every accepted seq on one line.
STDIN_LIMIT = 2**27


@dataclass
class Counts:
    lost: int = 0
    dup: int = 0
    out_of_order: int = 0
    unexpected: int = 0
    gaps: int = 0

    def add(self, other: Counts) -> None:
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)


class Tally:
    """What one reader received after its snapshot, by seq, in arrival order. Pure: no I/O."""

    __slots__ = ("arrivals", "base", "dup", "max_seq", "out_of_order")

    def __init__(self, base: int) -> None:
        self.base = base  # the snapshot's seq: it already holds everything up to here
        self.arrivals: dict[int, int] = {}
        self.max_seq = base
        self.dup = 0
        self.out_of_order = 0

    def add(self, seq: int, arrived_ns: int) -> bool:
        """Count one event frame; True when it is this reader's first copy of `seq`."""
        if seq <= self.base or seq in self.arrivals:
            self.dup += 1
            return False
        if seq < self.max_seq:
            self.out_of_order += 1
        else:
            self.max_seq = seq
        self.arrivals[seq] = arrived_ns
        return True

    def counts(self, expected: Iterable[int]) -> Counts:
        """Against the seqs the API accepted: lost (never came), unexpected (came, was never
        accepted), and gaps (seqs missing between the snapshot and the newest one received)."""
        want = set(expected)
        got = self.arrivals.keys()
        gaps = (self.max_seq - self.base) - len(got)
        return Counts(
            lost=len(want - got), dup=self.dup, out_of_order=self.out_of_order,
            unexpected=len(got - want), gaps=gaps,
        )  # fmt: skip

    def missing(self, expected: Iterable[int]) -> int:
        return sum(1 for seq in expected if seq not in self.arrivals)


class Reader:
    __slots__ = ("conn", "dropped", "epoch", "snapshot", "tally")

    def __init__(self) -> None:
        self.conn: LeanConnection | None = None
        self.snapshot: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.tally: Tally | None = None
        self.epoch = ""
        self.dropped: str | None = None


class Readers:
    """Every reader's frames, counted by seq, plus the first and last arrival of each seq."""

    def __init__(self, count: int) -> None:
        self.readers = [Reader() for _ in range(count)]
        self.cache: dict[bytes, tuple[int, str, int, int]] = {}
        self.stamps: dict[int, tuple[int, int]] = {}  # seq -> (index, sent_ns) of its entry
        self.first: dict[int, int] = {}
        self.last: dict[int, int] = {}
        self.unexpected_frames = 0
        self.bad_frames = 0
        self.expected: frozenset[int] | None = None
        self.pending = 0
        self.complete = asyncio.Event()
        self.finishing = False

    def on_text(self, r: Reader, data: bytes, arrived: int) -> None:
        """One text message for reader `r`: the snapshot first, then events counted by seq."""
        info = self.cache.get(data)
        if info is None:
            info = classify(data)
            if len(self.cache) < CACHE_LIMIT:
                self.cache[data] = info
        seq, kind, index, sent = info
        tally = r.tally
        if tally is None:
            self._on_snapshot(r, data, kind)
            return
        if kind != "event":
            self.unexpected_frames += 1
            self.bad_frames += kind == "bad"
            return
        if not tally.add(seq, arrived):
            return
        if index >= 0:
            self.stamps.setdefault(seq, (index, sent))
        if arrived < self.first.get(seq, arrived + 1):
            self.first[seq] = arrived
        if arrived > self.last.get(seq, -1):
            self.last[seq] = arrived
        if self.expected is not None and seq in self.expected:
            self.pending -= 1
            if self.pending <= 0:
                self.complete.set()

    def _on_snapshot(self, r: Reader, data: bytes, kind: str) -> None:
        doc = first_snapshot(r.snapshot, data, kind)
        if doc is not None:
            r.tally = Tally(int(doc["seq"]))
            r.epoch = str(doc.get("epoch"))
            r.snapshot.set_result(None)

    def on_closed(self, r: Reader, reason: str) -> None:
        if not r.snapshot.done():
            r.snapshot.set_exception(ConnectionError(reason))
            return
        if self.finishing or r.dropped is not None:
            return
        r.dropped = reason
        if self.expected is not None and r.tally is not None:
            # What it has not received yet will never come: stop waiting for it.
            self.pending -= r.tally.missing(self.expected)
            if self.pending <= 0:
                self.complete.set()

    def live(self) -> list[Reader]:
        return [r for r in self.readers if r.tally is not None]

    def expect(self, seqs: Iterable[int]) -> None:
        """From now on, the drain is complete when every live reader has every one of `seqs`."""
        self.expected = frozenset(seqs)
        self.pending = sum(
            r.tally.missing(self.expected)
            for r in self.live()
            if r.tally is not None and r.dropped is None
        )
        if self.pending <= 0:
            self.complete.set()

    def result(self) -> dict[str, Any]:
        live = self.live()
        expected = self.expected or frozenset()
        counts = Counts()
        have: Counter[int] = Counter()
        for r in live:
            assert r.tally is not None
            counts.add(r.tally.counts(expected))
            have.update(r.tally.arrivals.keys())
        seqs = [
            [seq, *self.stamps.get(seq, (-1, 0)), self.first[seq], self.last[seq], have[seq]]
            for seq in sorted(self.first)
        ]
        return {
            "phase": "result",
            "readers_connected": len(live),
            **asdict(counts),
            "unexpected_frames": self.unexpected_frames,
            "bad_frames": self.bad_frames,
            "dropped": sum(1 for r in live if r.dropped),
            "drop_reasons": dict(Counter(r.dropped for r in live if r.dropped).most_common(5)),
            # [seq, entry index, entry send time ns, first arrival ns, last arrival ns, readers]
            "seqs": seqs,
        }


async def open_reader(readers: Readers, r: Reader, url: str, timeout: float) -> None:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    conn = LeanConnection(
        url, lambda data, at: readers.on_text(r, data, at),
        lambda reason: readers.on_closed(r, reason), deflate=False, max_size=MAX_SIZE,
    )  # fmt: skip
    r.conn = conn
    async with asyncio.timeout(timeout):
        await asyncio.get_running_loop().create_connection(lambda: conn, host, port)
        await asyncio.shield(conn.opened)
        await asyncio.shield(r.snapshot)


async def connect_all(readers: Readers, args: argparse.Namespace) -> dict[str, Any]:
    slots = asyncio.Semaphore(args.connect_concurrency)
    failed: Counter[str] = Counter()

    async def one(r: Reader) -> None:
        async with slots:
            try:
                await open_reader(readers, r, args.url, args.connect_timeout)
            except Exception as exc:
                failed[describe(exc)] += 1
                r.tally = None  # never counted: it had no snapshot to count from
                if r.conn is not None:
                    r.conn.abort()

    started = time.monotonic()
    timed_out = False
    tasks = [asyncio.create_task(one(r)) for r in readers.readers]
    try:
        async with asyncio.timeout(args.connect_phase_timeout):
            await asyncio.gather(*tasks)
    except TimeoutError:
        timed_out = True
    live = readers.live()
    return {
        "phase": "connected", "ok": len(live), "failed": sum(failed.values()),
        "errors": dict(failed.most_common(5)), "timed_out": timed_out,
        "connect_s": time.monotonic() - started,
        "snapshot_seqs": sorted({r.tally.base for r in live if r.tally is not None}),
        "epochs": len({r.epoch for r in live}),
    }  # fmt: skip


async def close_all(readers: Readers) -> None:
    readers.finishing = True
    conns = [r.conn for r in readers.readers if r.conn is not None]
    for conn in conns:
        conn.close()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(5.0):
            await asyncio.gather(*(c.lost for c in conns), return_exceptions=True)
    for conn in conns:
        conn.abort()


async def next_command(stdin: asyncio.StreamReader, timeout: float) -> dict[str, Any] | None:
    """The next command line, or None on EOF (the benchmark is gone), timeout or garbage."""
    try:
        async with asyncio.timeout(timeout):
            line = await stdin.readline()
        doc = orjson.loads(line) if line else None
    except (TimeoutError, ValueError, orjson.JSONDecodeError):
        return None
    return doc if isinstance(doc, dict) else None


async def run(args: argparse.Namespace) -> int:
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader(limit=STDIN_LIMIT)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    readers = Readers(args.readers)
    try:
        emit(await connect_all(readers, args))
        cmd = await next_command(stdin, args.wait_timeout)
        if cmd is None or cmd.get("cmd") != "drain":
            return 3
        started = time.monotonic()
        readers.expect(int(s) for s in cmd["seqs"])
        timed_out = False
        try:
            async with asyncio.timeout(float(cmd.get("timeout_s", 30.0))):
                await readers.complete.wait()
        except TimeoutError:
            timed_out = True
        emit({"phase": "drained", "timed_out": timed_out, "waited_s": time.monotonic() - started})
        # A duplicate can trail the last first copy; give it a moment to show up.
        await asyncio.sleep(args.linger)
        emit(readers.result())
    finally:
        await close_all(readers)
    return 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    return reader_options(
        "bench._firstdelivery", __doc__, concurrency=100, wait_timeout=300.0, linger=0.3
    ).parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    return serve(run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
