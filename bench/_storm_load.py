"""Storm mode of the load process (`bench._loadgen`): every reader drops at once, then all resume.

After {"phase": "drained"} the benchmark may send, one JSON object per line:

    stdin   {"cmd": "drop"}       every reader's socket is aborted: no close frame, like a
                                  network blip or a phone going to sleep
    stdout  {"phase": "dropped", "readers": N}
    stdin   {"cmd": "resume", "missed": B, "timeout_s": 60}
                                  every reader reconnects with ?since=<last seq it held>&epoch=E,
                                  at most --connect-concurrency handshakes in flight
    stdout  {"phase": "caught_up", ...}   every reader holds its B missed entries (or gave up)
    stdout  {"phase": "resumed", ...}     per-reader counts and timings, after a short linger
                                          so that late duplicates are counted too

Each resuming reader must get exactly the B events after its `since`, in seq order, once. A
snapshot instead (the server lost or refused the position) is a reset; an event at or before
`since` or seen twice is a duplicate; a seq below one already seen is out of order.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any
from urllib.parse import urlencode, urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bench._loadgen import CACHE_LIMIT, MAX_SIZE, Load, Reader, _abort, describe, emit
from bench._stats import summary
from bench._wsclient import LeanConnection


class Resume:
    """One reader's resume: what it asked for, what it got, when."""

    __slots__ = (
        "arrivals", "caught_ns", "conn", "dup", "epoch", "failed", "last", "max_seq",
        "ooo", "opened_ns", "resets", "settled", "since", "started_ns", "unexpected",
    )  # fmt: skip

    def __init__(self, since: int, epoch: str, missed: int) -> None:
        self.since = since
        self.last = since + missed  # events since+1 .. since+missed are expected
        self.epoch = epoch
        self.conn: LeanConnection | ClientConnection | None = None
        self.arrivals: dict[int, int] = {}
        self.max_seq = since
        self.dup = 0
        self.ooo = 0
        self.resets = 0
        self.unexpected = 0
        self.started_ns = 0
        self.opened_ns = 0
        self.caught_ns = 0
        self.failed: str | None = None
        self.settled = False


def held_through(reader: Reader) -> int:
    """The last seq a reader holds with nothing missing before it: what a client resumes from."""
    seq = reader.base
    while seq + 1 in reader.arrivals:
        seq += 1
    return seq


class Storm:
    def __init__(self, load: Load) -> None:
        self.load = load
        self.resumes: list[Resume] = []
        self.missed = 0
        self.started_ns = 0
        self.unsettled = 0
        self.all_settled = asyncio.Event()
        self.in_flight = 0
        self.max_in_flight = 0
        self.bad_frames = 0
        self.tasks: list[asyncio.Task[None]] = []

    # -- drop ----------------------------------------------------------------------------------

    def drop(self) -> int:
        """Abort every open reader; returns how many were open."""
        dropped = 0
        for r in self.load.readers:
            if r.conn is None or r.closed:
                continue
            # Marked closed first, so the fan-out counting does not take this for a reader
            # the server cut off.
            r.closed = True
            _abort(r.conn)
            dropped += 1
        return dropped

    # -- resume --------------------------------------------------------------------------------

    def prepare(self, missed: int) -> None:
        """One Resume per reader that had its snapshot; no I/O, so tests can drive it."""
        self.missed = missed
        self.resumes = [
            Resume(held_through(r), r.epoch, missed) for r in self.load.readers if r.base >= 0
        ]
        self.unsettled = len(self.resumes)
        if not self.resumes:
            self.all_settled.set()

    async def resume(self, missed: int, timeout: float) -> None:
        self.prepare(missed)
        slots = asyncio.Semaphore(self.load.args.connect_concurrency)
        started = time.monotonic()
        self.started_ns = time.time_ns()
        self.tasks = [asyncio.create_task(self._resume_one(res, slots)) for res in self.resumes]
        timed_out = False
        try:
            async with asyncio.timeout(timeout):
                await self.all_settled.wait()
        except TimeoutError:
            timed_out = True
        emit({"phase": "caught_up", "timed_out": timed_out, "waited_s": time.monotonic() - started})
        # Duplicates can trail the last missed entry; give them a moment to show up.
        await asyncio.sleep(self.load.args.linger)
        emit(self.result(timed_out=timed_out))
        self.adopt_connections()

    async def _resume_one(self, res: Resume, slots: asyncio.Semaphore) -> None:
        try:
            async with slots:
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
                try:
                    res.started_ns = time.time_ns()
                    async with asyncio.timeout(self.load.args.connect_timeout):
                        await self._open(res)
                finally:
                    self.in_flight -= 1
        except Exception as exc:
            if res.conn is not None:
                _abort(res.conn)
            self._fail(res, describe(exc))
            return
        # The 101 and the first frames can arrive in one read, before this task resumes.
        res.opened_ns = res.opened_ns or time.time_ns()
        if isinstance(res.conn, ClientConnection):
            await self._receive(res, res.conn)

    def url(self, res: Resume) -> str:
        return f"{self.load.args.url}?{urlencode({'since': res.since, 'epoch': res.epoch})}"

    async def _open(self, res: Resume) -> None:
        args = self.load.args
        if args.client == "websockets":
            res.conn = await connect(
                self.url(res), compression="deflate" if args.deflate else None, proxy=None,
                ping_interval=None, open_timeout=None, close_timeout=2.0, max_size=MAX_SIZE,
            )  # fmt: skip
            return
        url = urlsplit(args.url)
        conn = LeanConnection(
            self.url(res), lambda data, at: self.on_text(res, data, at),
            lambda reason: self.on_closed(res, reason), deflate=args.deflate, max_size=MAX_SIZE,
        )  # fmt: skip
        res.conn = conn
        await asyncio.get_running_loop().create_connection(lambda: conn, url.hostname, url.port)
        await asyncio.shield(conn.opened)

    async def _receive(self, res: Resume, ws: ClientConnection) -> None:
        try:
            while True:
                self.on_text(res, await ws.recv(decode=False), time.time_ns())
        except ConnectionClosed as exc:
            self.on_closed(res, f"closed {exc.rcvd.code if exc.rcvd else 'without close frame'}")
        except Exception as exc:
            self.on_closed(res, describe(exc))
            ws.transport.abort()

    # -- what a resuming reader does with what it receives -------------------------------------

    def on_text(self, res: Resume, data: bytes, arrived: int) -> None:
        """Count one message of a resume by seq."""
        res.opened_ns = res.opened_ns or arrived
        seq, _sent, kind = self._info(data)
        if kind == "snapshot":
            # The missed entries came folded into a snapshot: no catch-up to wait for.
            res.resets += 1
            self._settle(res)
            return
        if kind != "event" or seq > res.last:
            res.unexpected += 1
            self.bad_frames += kind == "bad"
            return
        if seq <= res.since or seq in res.arrivals:
            res.dup += 1
            return
        if seq < res.max_seq:
            res.ooo += 1
        else:
            res.max_seq = seq
        res.arrivals[seq] = arrived
        if len(res.arrivals) == self.missed:
            res.caught_ns = arrived
            self._settle(res)

    def _info(self, data: bytes) -> tuple[int, int, str]:
        # Every resuming reader gets the same frames: parse each once, as the fan-out does.
        cache = self.load.cache
        info = cache.get(data)
        if info is None:
            info = Load._classify(data)
            if len(cache) < CACHE_LIMIT:
                cache[data] = info
        return info

    def on_closed(self, res: Resume, reason: str) -> None:
        if not res.settled:
            self._fail(res, f"closed before catching up: {reason}")

    def _fail(self, res: Resume, reason: str) -> None:
        if not res.settled:
            res.failed = reason
            self._settle(res)

    def _settle(self, res: Resume) -> None:
        if res.settled:
            return
        res.settled = True
        self.unsettled -= 1
        if self.unsettled == 0:
            self.all_settled.set()

    # -- the phase's numbers -------------------------------------------------------------------

    def result(self, *, timed_out: bool) -> dict[str, Any]:
        caught = [res for res in self.resumes if res.caught_ns]
        catch_up = [(res.caught_ns - self.started_ns) / 1e6 for res in caught]
        opened = [res for res in self.resumes if res.opened_ns and res.started_ns]
        failures = Counter(res.failed for res in self.resumes if res.failed)
        everyone = bool(self.resumes) and len(caught) == len(self.resumes)
        return {
            "phase": "resumed",
            "readers": len(self.resumes),
            "caught_up": len(caught),
            "timed_out": timed_out,
            "failed": sum(failures.values()),
            "errors": dict(failures.most_common(5)),
            "since_seqs": sorted({res.since for res in self.resumes}),
            "all_caught_up_ms": max(catch_up) if everyone else None,
            "catch_up_ms": summary(catch_up),
            "handshake_ms": summary([(r.opened_ns - r.started_ns) / 1e6 for r in opened]),
            "resume_ms": summary([(r.caught_ns - r.started_ns) / 1e6 for r in caught]),
            # A reader that got a snapshot has its entries, just not as events: a reset only.
            "lost": sum(self.missed - len(r.arrivals) for r in self.resumes if not r.resets),
            "dup": sum(r.dup for r in self.resumes),
            "out_of_order": sum(r.ooo for r in self.resumes),
            "resets": sum(r.resets for r in self.resumes),
            "unexpected_frames": sum(r.unexpected for r in self.resumes),
            "bad_frames": self.bad_frames,
            "max_in_flight": self.max_in_flight,
        }

    def adopt_connections(self) -> None:
        """Make the resumed connections the readers' own, so that finishing closes them."""
        readers = [r for r in self.load.readers if r.base >= 0]
        for reader, res in zip(readers, self.resumes, strict=True):
            # Only connections that opened: closing waits for each to be lost, and one that
            # never connected never will be.
            if res.conn is not None and res.opened_ns:
                reader.conn = res.conn
