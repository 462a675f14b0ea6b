"""The soak's clients: editors that publish with idempotency keys and retries, and WebSocket
readers that resume with since/epoch after every disconnect, both writing what they did into one
`Ledger` that the checks (bench/soak_check.py) read afterwards.

Readers record every frame as it arrived, without repairing anything: a duplicate is counted
and skipped, an out-of-order event is counted and answered the way the protocol says (reconnect
with `since` = the last seq applied), so the server's mistakes show in the report.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import socket
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from pushhub_client import Backoff, RetryPolicy
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bench._proc import HOST
from pushhub.protocol import reader_entry

# -- what happened ---------------------------------------------------------------------------


@dataclass
class Attempt:
    """One HTTP try of a write: when, to which node, and what came back (the status, or
    `connect` / `timeout` / `dropped` when no answer came)."""

    at: float
    node: str
    outcome: str


@dataclass
class Write:
    """One editor change, under one idempotency key however many times it was sent."""

    key: str
    editor: str
    op: str  # create | update | blog
    started: float
    target: str = ""  # the entry an update changes
    big: bool = False
    attempts: list[Attempt] = field(default_factory=list)
    finished: float | None = None
    acked: bool = False  # a 2xx came back
    seq: int | None = None
    epoch: str | None = None
    entry_id: str = ""
    error: str = ""  # why it was refused, when it was


@dataclass
class Drop:
    """A reader's connection ended (by the server, the network or a gap the reader saw)."""

    at: float
    reader: int
    node: str
    code: int | None  # the close code received; None when the connection just broke
    paused: bool  # it ended while, or just after, the reader had stopped reading (cut off)
    by_reader: bool = False


@dataclass
class CatchUp:
    """From losing the connection (or starting) to being level with the head again."""

    reader: int
    lost_at: float
    opened_at: float  # the connection that got it level was opened here
    done_at: float

    @property
    def catch_up(self) -> float:
        return self.done_at - self.opened_at

    @property
    def offline(self) -> float:
        return self.done_at - self.lost_at


class Ledger:
    """Everything the clients saw, on one clock (seconds since the ledger was made)."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.t0 = self.loop.time()
        self.writes: list[Write] = []
        self.drops: list[Drop] = []
        self.catch_ups: list[CatchUp] = []
        self.epochs: list[str] = []  # epochs in acknowledgements, in the order first seen
        self.head: tuple[int, str] | None = None  # highest acknowledged (seq, epoch)

    def now(self) -> float:
        return self.loop.time() - self.t0

    def acked(self, w: Write) -> None:
        assert w.seq is not None and w.epoch is not None
        if w.epoch not in self.epochs:
            self.epochs.append(w.epoch)
        if w.epoch != self.epochs[-1]:
            return  # a late answer from a history already replaced
        if self.head is None or self.head[1] != w.epoch or w.seq > self.head[0]:
            self.head = (w.seq, w.epoch)


def digest(doc: Any) -> bytes:
    """A short fingerprint of a JSON value; readers keep these rather than 200 copies of every
    entry, and key order does not matter."""
    return hashlib.blake2b(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS), digest_size=16).digest()


def entry_digest(entry: dict[str, Any]) -> bytes:
    """`digest` of an entry as readers get it. Reader frames leave out the Markdown `body` (its
    `html` rendering is there), while the API and the store keep it: dropping it on every side
    keeps a reader's copy comparable with the server's, with old and new servers alike."""
    return digest(reader_entry(entry))


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep, but wake when `stop` is set; True if it was."""
    if seconds > 0:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await stop.wait()
    return stop.is_set()


# -- editors -----------------------------------------------------------------------------------

_TEXT = (
    "the leaders pass the water station at 25 km while the chasing group splits behind them "
    "and the crowd on the bridge grows louder as the rain eases over the harbour front"
)
_WORDS = tuple(_TEXT.split())
RETRYABLE = frozenset({"connect", "timeout", "dropped", "409", "429", "502", "503", "504"})


@dataclass(frozen=True)
class Node:
    name: str
    url: str  # http://host:port
    ws_url: str
    port: int


def _retry_after(response: httpx.Response) -> float:
    try:
        return min(30.0, float(response.headers.get("retry-after", "0")))
    except ValueError:
        return 0.0


class Editor:
    """Publishes at a steady rate; every change goes out under one idempotency key, retried
    on anything transient with pushhub-client's default policy (5 tries, backoff from 0.2 s
    doubling to 5 s, half of it jitter, a `Retry-After` honoured), each retry to the other node
    as a load balancer might send it, and never for longer than `write_bound` seconds."""

    def __init__(
        self, name: str, nodes: list[Node], token: str, ledger: Ledger, blog: str, *,
        home: int, run_id: str, rng: random.Random, attempts: int = RetryPolicy().attempts,
        attempt_timeout: float = 10.0, write_bound: float = 60.0,
    ) -> None:  # fmt: skip
        self.name = name
        self.nodes = nodes
        self.ledger = ledger
        self.blog = blog
        self.home = home
        self.run_id = run_id
        self.rng = rng
        self.attempts = attempts
        self.write_bound = write_bound
        defaults = RetryPolicy().backoff
        self.backoff = Backoff(
            defaults.initial, defaults.factor, defaults.cap, defaults.jitter, rng=rng
        )
        self.http = httpx.AsyncClient(
            timeout=attempt_timeout, trust_env=False,
            headers={"Authorization": f"Bearer {token}"},
        )  # fmt: skip
        self.mine: list[str] = []  # entries this editor created: it edits only its own
        self.count = 0

    async def aclose(self) -> None:
        await self.http.aclose()

    def _write(self, op: str, **fields: Any) -> Write:
        self.count += 1
        w = Write(f"{self.run_id}-{self.name}-{self.count}", self.name, op, self.ledger.now())
        for k, v in fields.items():
            setattr(w, k, v)
        self.ledger.writes.append(w)
        return w

    def body(self, key: str, chars: int) -> str:
        # The key leads the body so the final state shows which write an entry's text came from.
        words = [key]
        length = len(key)
        while length < chars:
            words.append(self.rng.choice(_WORDS))
            length += len(words[-1]) + 1
        return " ".join(words)[:chars]

    async def put_blog(self, title: str) -> Write:
        w = self._write("blog")
        await self._send(w, "PUT", f"/api/blogs/{self.blog}", {"title": title})
        return w

    async def create(self, *, big_chars: int = 0) -> Write:
        w = self._write("create", big=big_chars > 0)
        # The title is the create's key and edits never change it: two entries with one title
        # would be one publish made twice.
        body = {"title": w.key, "author": self.name, "body": self.body(w.key, big_chars or 240)}
        doc = await self._send(w, "POST", f"/api/blogs/{self.blog}/entries", body)
        if doc is not None:
            w.entry_id = str(doc["entry"]["id"])
            self.mine.append(w.entry_id)
        return w

    async def update(self, entry_id: str) -> Write:
        w = self._write("update", target=entry_id)
        body = {"body": self.body(w.key, 180)}
        doc = await self._send(w, "PATCH", f"/api/blogs/{self.blog}/entries/{entry_id}", body)
        if doc is not None:
            w.entry_id = str(doc["entry"]["id"])
        return w

    async def _send(self, w: Write, method: str, path: str, body: Any) -> dict[str, Any] | None:
        node = self.home
        for attempt in range(self.attempts):
            target = self.nodes[node]
            at = self.ledger.now()
            response: httpx.Response | None = None
            try:
                response = await self.http.request(
                    method, target.url + path, json=body, headers={"Idempotency-Key": w.key}
                )
                outcome = str(response.status_code)
            except httpx.ConnectError:
                outcome = "connect"
            except httpx.TimeoutException:
                outcome = "timeout"
            except httpx.TransportError:
                outcome = "dropped"
            w.attempts.append(Attempt(at, target.name, outcome))
            if response is not None and 200 <= response.status_code < 300:
                doc: dict[str, Any] = response.json()
                w.acked, w.seq, w.epoch = True, int(doc["seq"]), str(doc["epoch"])
                w.finished = self.ledger.now()
                self.ledger.acked(w)
                return doc
            w.error = outcome if response is None else f"{outcome} {response.text[:160]}"
            out_of_time = self.ledger.now() - w.started > self.write_bound
            if outcome not in RETRYABLE or attempt + 1 == self.attempts or out_of_time:
                break
            node = 1 - node
            delay = self.backoff.delay(attempt)
            if response is not None and outcome == "429":
                delay = max(delay, _retry_after(response))
            await asyncio.sleep(delay)
        w.finished = self.ledger.now()
        return None

    async def run(self, rate: float, update_share: float, stop: asyncio.Event) -> None:
        """One change every 1/rate seconds until `stop`; an editor held up by retries skips the
        ticks it missed instead of bursting afterwards."""
        interval = 1.0 / rate
        loop = asyncio.get_running_loop()
        next_at = loop.time() + self.rng.uniform(0, interval)
        while not await _sleep_unless(stop, next_at - loop.time()):
            if self.mine and self.rng.random() < update_share:
                await self.update(self.rng.choice(self.mine))
            else:
                await self.create()
            next_at = max(next_at + interval, loop.time())


# -- readers -----------------------------------------------------------------------------------


@dataclass
class SnapshotSeen:
    epoch: str
    seq: int
    ids: frozenset[str]
    at: float
    reset: bool


@dataclass(frozen=True)
class Parsed:
    """What the checks need from one frame: its position and fingerprints of what it carries."""

    kind: str
    seq: int = 0
    epoch: str = ""
    reset: bool = False
    op: str = ""
    entry_id: str = ""
    title: str = ""
    entry: bytes = b""  # digest of the entry an event carries
    blog: bytes = b""  # digest of the blog (a snapshot, or a `blog` event)
    entries: dict[str, bytes] = field(default_factory=dict)  # a snapshot's: id -> digest
    titles: frozenset[str] = frozenset()


def parse(frame: dict[str, Any]) -> Parsed:
    kind = str(frame.get("type"))
    if kind == "snapshot":
        entries = frame["entries"]
        return Parsed(
            kind, int(frame["seq"]), str(frame["epoch"]), reset=bool(frame.get("reset")),
            blog=digest(frame["blog"]), entries={e["id"]: entry_digest(e) for e in entries},
            titles=frozenset(str(e.get("title")) for e in entries),
        )  # fmt: skip
    if kind != "event":
        return Parsed(kind)
    op = str(frame["op"])
    entry = frame.get("entry") or {}
    changed = entry_digest(entry) if op in ("create", "update") else b""
    return Parsed(
        kind, int(frame["seq"]), str(frame["epoch"]), op=op, entry_id=str(entry.get("id", "")),
        title=str(entry.get("title")), entry=changed,
        blog=digest(frame["blog"]) if op == "blog" else b"",
    )  # fmt: skip


class FrameCache:
    """Every reader gets the same text for an event, so each distinct text is parsed and
    fingerprinted once per process. Keyed by the whole text, so a reader whose frame differs
    by one byte gets its own parse: the cache saves time, never a check."""

    def __init__(self, limit: int = 4096) -> None:
        self.limit = limit
        self.parsed: dict[str, Parsed] = {}

    def get(self, message: str) -> Parsed:
        hit = self.parsed.get(message)
        if hit is None:
            if len(self.parsed) >= self.limit:
                self.parsed.clear()
            hit = self.parsed[message] = parse(orjson.loads(message))
        return hit


@dataclass
class ReaderRecord:
    """What one reader saw; plain data, so the checks can be tested without sockets."""

    index: int
    home: str
    slow: bool = False
    seq: int | None = None
    epoch: str | None = None
    entries: dict[str, bytes] = field(default_factory=dict)  # id -> digest
    blog: bytes | None = None
    titles: set[str] = field(default_factory=set)
    # epoch -> seq -> (op, entry id, arrival time) of every event applied
    received: dict[str, dict[int, tuple[str, str, float]]] = field(default_factory=dict)
    snapshots: list[SnapshotSeen] = field(default_factory=list)
    frames: int = 0
    events: int = 0
    dup: int = 0  # events at or below the seq already applied
    dup_publish: int = 0  # a create whose title (its publish key) was already there
    out_of_order: int = 0  # events that skipped ahead, or came in another epoch
    unexpected: int = 0  # frames the protocol does not allow here
    resets: int = 0
    connections: int = 0
    connect_failures: int = 0
    cutoffs: int = 0  # connections the server ended while this reader had stopped reading
    close_codes: Counter[str] = field(default_factory=Counter)
    nodes_used: Counter[str] = field(default_factory=Counter)
    catch_ups: list[CatchUp] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    connected: bool = False
    node: str = ""
    last_frame_at: float = 0.0

    def note(self, text: str) -> None:
        if len(self.notes) < 20:
            self.notes.append(text)

    @property
    def reconnects(self) -> int:
        return max(0, self.connections - 1)

    def apply(self, f: Parsed, at: float) -> bool:
        """Apply one frame; False means the stream is broken here and the reader must resume."""
        self.frames += 1
        self.last_frame_at = at
        if f.kind == "snapshot":
            if self.seq is not None and not f.reset:
                self.unexpected += 1
                self.note(f"{at:.1f}s: plain snapshot (reset false) answered a resume")
            self.resets += f.reset
            self.seq, self.epoch, self.blog = f.seq, f.epoch, f.blog
            self.entries, self.titles = dict(f.entries), set(f.titles)
            self.snapshots.append(SnapshotSeen(f.epoch, f.seq, frozenset(f.entries), at, f.reset))
            return True
        if f.kind != "event":
            self.unexpected += 1
            self.note(f"{at:.1f}s: unexpected frame type {f.kind!r}")
            return True
        if self.seq is None:
            self.out_of_order += 1
            self.note(f"{at:.1f}s: event {f.seq} before any snapshot")
            return False
        if f.epoch != self.epoch:
            self.out_of_order += 1
            self.note(f"{at:.1f}s: event {f.seq}@{f.epoch} in epoch {self.epoch}")
            return False
        if f.seq <= self.seq:
            self.dup += 1
            self.note(f"{at:.1f}s: event {f.seq} again (at {self.seq}) from node {self.node}")
            return True
        if f.seq != self.seq + 1:
            self.out_of_order += 1
            self.note(f"{at:.1f}s: event {f.seq} after {self.seq} from node {self.node}")
            return False
        if f.op == "blog":
            self.blog = f.blog
        elif f.op == "delete":
            self.entries.pop(f.entry_id, None)
        else:
            if f.op == "create":
                if f.title in self.titles:
                    self.dup_publish += 1
                    self.note(f"{at:.1f}s: publish {f.title} made a second entry {f.entry_id}")
                self.titles.add(f.title)
            self.entries[f.entry_id] = f.entry
        self.received.setdefault(f.epoch, {})[f.seq] = (f.op, f.entry_id, at)
        self.seq = f.seq
        self.events += 1
        return True


# A connection that ends this soon after a pause ended was cut off during the pause: the
# reader only notices once it reads again and drains what was buffered.
CUTOFF_NOTICE = 5.0


class Reader:
    """A real WebSocket reader on one of two nodes. After any disconnect it resumes with
    since/epoch, first on the node it was on, then alternating, with capped jittered backoff.

    A slow reader keeps a small receive buffer and a short frame queue, so when it stops
    reading (`pause`) the backlog piles up on the server, which should cut it off.
    """

    def __init__(
        self, index: int, nodes: list[Node], home: int, ledger: Ledger, blog: str, *,
        slow: bool, rng: random.Random, cache: FrameCache,
    ) -> None:  # fmt: skip
        self.nodes = nodes
        self.node = home
        self.ledger = ledger
        self.blog = blog
        self.rng = rng
        self.cache = cache
        self.rec = ReaderRecord(index, nodes[home].name, slow=slow)
        self.backoff = Backoff(initial=0.25, factor=2.0, cap=4.0, jitter=0.5, rng=rng)
        self.pause_until = 0.0  # loop time
        self.ws: ClientConnection | None = None
        self.stop = asyncio.Event()
        self._lost_at: float | None = ledger.now()  # the first connect is a catch-up too
        self._opened_at = 0.0
        self._target: tuple[int, str] | None = None

    def pause(self, seconds: float) -> None:
        self.pause_until = self.ledger.loop.time() + seconds

    async def close(self) -> None:
        self.stop.set()
        ws = self.ws
        if ws is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(3):
                    await ws.close()
            if ws.transport is not None:
                ws.transport.abort()

    def _url(self, node: Node) -> str:
        url = f"{node.ws_url}/ws/blogs/{self.blog}"
        if self.rec.seq is not None:
            url += f"?since={self.rec.seq}&epoch={self.rec.epoch}"
        return url

    async def _open(self, node: Node) -> ClientConnection:
        options: dict[str, Any] = {}
        if self.rec.slow:
            # A small fixed receive buffer turns off loopback autotuning (tens of MB), and
            # without compression every byte of the backlog counts on the server's side.
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
            sock.setblocking(False)
            try:
                async with asyncio.timeout(5):
                    await self.ledger.loop.sock_connect(sock, (HOST, node.port))
            except BaseException:
                sock.close()
                raise
            options.update(sock=sock, compression=None, max_queue=2)
        return await connect(
            self._url(node), proxy=None, open_timeout=5, close_timeout=2, max_size=None,
            ping_interval=20, ping_timeout=20, user_agent_header="pushhub-soak", **options,
        )  # fmt: skip

    async def run(self) -> None:
        failures = 0
        while not self.stop.is_set():
            node = self.nodes[self.node]
            try:
                ws = await self._open(node)
            except Exception as exc:
                self.rec.connect_failures += 1
                if failures == 0:
                    self.rec.note(f"{self.ledger.now():.1f}s: connect to {node.name}: {exc!r:.80}")
                # A node that refuses is likely down: the next try goes to the other one.
                self.node = 1 - self.node
                if await _sleep_unless(self.stop, self.backoff.delay(failures)):
                    return
                failures += 1
                continue
            failures = 0
            by_reader = await self._read(ws, node)
            if self.stop.is_set():
                return
            # A dropped connection is retried after a short random delay, so the readers of a
            # node that went away do not all come back in the same millisecond.
            delay = self.backoff.delay(0) if by_reader else self.rng.uniform(0.05, 0.5)
            if await _sleep_unless(self.stop, delay):
                return

    async def _read(self, ws: ClientConnection, node: Node) -> bool:
        """Read until the connection ends; True if the reader ended it (a broken stream)."""
        rec = self.rec
        loop = self.ledger.loop
        self.ws = ws
        rec.connected, rec.node = True, node.name
        rec.connections += 1
        rec.nodes_used[node.name] += 1
        self._opened_at = self.ledger.now()
        self._target = self.ledger.head
        self._check_level()
        paused_until: float | None = None
        code: int | None = None
        by_reader = False
        try:
            while True:
                # Short naps, so a pause that is shortened meanwhile ends on time.
                while self.pause_until > loop.time():
                    paused_until = self.pause_until
                    await asyncio.sleep(min(0.2, self.pause_until - loop.time()))
                message = await ws.recv()
                if not isinstance(message, str):
                    rec.unexpected += 1
                    continue
                if not rec.apply(self.cache.get(message), self.ledger.now()):
                    by_reader = True
                    break
                self._check_level()
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd is not None else None
        finally:
            self.ws = None
            rec.connected = False
            if by_reader:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(3):
                        await ws.close()
        if self.stop.is_set():
            return False
        at = self.ledger.now()
        cut = paused_until is not None and loop.time() - paused_until < CUTOFF_NOTICE
        rec.close_codes[str(code) if code is not None else "none"] += 1
        rec.cutoffs += cut and not by_reader
        self.ledger.drops.append(Drop(at, rec.index, node.name, code, cut, by_reader))
        if self._lost_at is None:
            self._lost_at = at
        return by_reader

    def _check_level(self) -> None:
        """Close the open catch-up once this reader holds the head it saw when it connected."""
        if self._lost_at is None or self._target is None or self.rec.seq is None:
            return
        seq, epoch = self._target
        if self.rec.epoch != epoch:
            head = self.ledger.head  # the history was replaced: its head is the mark now
            if head is None or head[1] != self.rec.epoch:
                return
            seq = head[0]
        if self.rec.seq >= seq:
            done = CatchUp(self.rec.index, self._lost_at, self._opened_at, self.ledger.now())
            self.rec.catch_ups.append(done)
            self.ledger.catch_ups.append(done)
            self._lost_at = None
