"""The embedded store: one SQLite file, fan-out inside this process.

All SQL runs on one dedicated thread, so writes are serialized without locks in Python and the
event loop never blocks on fsync. A commit is acknowledged only after SQLite has committed it
(WAL, synchronous=FULL), and its frame is handed to the listener from that same thread through
`call_soon_threadsafe`, whose callbacks run in submission order: listeners see seq order.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from pushhub.brokers.base import BrokerListener, Change, Committed
from pushhub.errors import BlogMissing, Unavailable, WriteConflict
from pushhub.protocol import event_body, event_frame
from pushhub.replica import Loaded

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS blogs (
    slug TEXT PRIMARY KEY, meta TEXT NOT NULL, seq INTEGER NOT NULL, epoch TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entries (
    blog TEXT NOT NULL, id TEXT NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (blog, id));
CREATE TABLE IF NOT EXISTS events (
    blog TEXT NOT NULL, seq INTEGER NOT NULL, frame TEXT NOT NULL, PRIMARY KEY (blog, seq));
CREATE TABLE IF NOT EXISTS revoked (token_id TEXT PRIMARY KEY, until REAL NOT NULL);
CREATE TABLE IF NOT EXISTS idempotency (
    blog TEXT NOT NULL, key TEXT NOT NULL, answer TEXT NOT NULL, expires REAL NOT NULL,
    PRIMARY KEY (blog, key));
"""


class EmbeddedBroker:
    name = "embedded"

    def __init__(self, path: Path, *, history_limit: int, idempotency_ttl: int) -> None:
        self.path = path
        self.history_limit = history_limit
        self.idempotency_ttl = idempotency_ttl
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pushhub-sqlite")
        self._db: sqlite3.Connection | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listener: BrokerListener | None = None
        self._subscribed: set[str] = set()
        self._commits = 0

    async def start(self, listener: BrokerListener) -> None:
        self._loop = asyncio.get_running_loop()
        self._listener = listener
        self.path.parent.mkdir(parents=True, exist_ok=True)
        await self._run(self._open)

    def _open(self) -> None:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(_SCHEMA)
        self._db = db

    async def close(self) -> None:
        if self._db is not None:
            await self._run(self._db.close)
            self._db = None
        self._pool.shutdown(wait=True)

    async def _run(self, fn: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, fn)
        except sqlite3.Error as exc:
            raise Unavailable(f"the embedded store failed: {exc}") from exc

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise Unavailable("the embedded store is closed")
        return self._db

    # -- writes -------------------------------------------------------------------------------

    async def commit(self, change: Change) -> Committed:
        return await self._run(lambda: self._commit(change))

    def _commit(self, c: Change) -> Committed:
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            result = self._commit_in_tx(db, c)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        if result.replayed:
            db.execute("ROLLBACK")
            return result
        db.execute("COMMIT")
        frame = event_frame(result.seq, result.epoch, c.event_body)
        if c.blog in self._subscribed and self._loop is not None and self._listener is not None:
            self._loop.call_soon_threadsafe(self._listener.on_message, c.blog, frame)
        return result

    def _commit_in_tx(self, db: sqlite3.Connection, c: Change) -> Committed:
        now = time.time()
        row = db.execute(
            "SELECT answer FROM idempotency WHERE blog=? AND key=? AND expires>?",
            (c.blog, c.idempotency_key, now),
        ).fetchone()
        if row is not None:
            old_seq, old_epoch, old_result = str(row[0]).split("|", 2)
            return Committed(int(old_seq), old_epoch, old_result, replayed=True)
        blog_row = db.execute(
            "SELECT meta, seq, epoch FROM blogs WHERE slug=?", (c.blog,)
        ).fetchone()
        if c.kind == "meta":
            current = None if blog_row is None else str(blog_row[0])
        else:
            if blog_row is None:
                raise BlogMissing(c.blog)
            entry_row = db.execute(
                "SELECT doc FROM entries WHERE blog=? AND id=?", (c.blog, c.entry_id)
            ).fetchone()
            current = None if entry_row is None else str(entry_row[0])
        if current != c.expect:
            raise WriteConflict(c.blog)
        seq = 1 if blog_row is None else int(blog_row[1]) + 1
        epoch = c.new_epoch if blog_row is None else str(blog_row[2])
        if c.kind == "meta":
            assert c.new is not None
            db.execute(
                "INSERT INTO blogs (slug, meta, seq, epoch) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(slug) DO UPDATE SET meta=excluded.meta, seq=excluded.seq",
                (c.blog, c.new, seq, epoch),
            )
        else:
            db.execute("UPDATE blogs SET seq=? WHERE slug=?", (seq, c.blog))
            if c.new is None:
                db.execute("DELETE FROM entries WHERE blog=? AND id=?", (c.blog, c.entry_id))
            else:
                db.execute(
                    "INSERT OR REPLACE INTO entries (blog, id, doc) VALUES (?, ?, ?)",
                    (c.blog, c.entry_id, c.new),
                )
        frame = event_frame(seq, epoch, c.event_body)
        db.execute("INSERT INTO events (blog, seq, frame) VALUES (?, ?, ?)", (c.blog, seq, frame))
        db.execute("DELETE FROM events WHERE blog=? AND seq<=?", (c.blog, seq - self.history_limit))
        db.execute(
            "INSERT OR REPLACE INTO idempotency (blog, key, answer, expires) VALUES (?, ?, ?, ?)",
            (c.blog, c.idempotency_key, f"{seq}|{epoch}|{c.result}", now + self.idempotency_ttl),
        )
        self._commits += 1
        if self._commits % 1000 == 0:
            db.execute("DELETE FROM idempotency WHERE expires<=?", (now,))
        return Committed(seq, epoch, c.result, replayed=False)

    async def recall(self, blog: str, idempotency_key: str) -> Committed | None:
        row = await self._run(
            lambda: self.db.execute(
                "SELECT answer FROM idempotency WHERE blog=? AND key=? AND expires>?",
                (blog, idempotency_key, time.time()),
            ).fetchone()
        )
        if row is None:
            return None
        seq, epoch, result = str(row[0]).split("|", 2)
        return Committed(int(seq), epoch, result, replayed=True)

    # -- reads --------------------------------------------------------------------------------

    async def load(self, blog: str) -> Loaded | None:
        return await self._run(lambda: self._load(blog))

    def _load(self, blog: str) -> Loaded | None:
        db = self.db
        db.execute("BEGIN")
        try:
            row = db.execute("SELECT meta, seq, epoch FROM blogs WHERE slug=?", (blog,)).fetchone()
            if row is None:
                return None
            entries = [
                str(r[0]) for r in db.execute("SELECT doc FROM entries WHERE blog=?", (blog,))
            ]
            history = [
                str(r[0])
                for r in db.execute(
                    "SELECT frame FROM events WHERE blog=? ORDER BY seq DESC LIMIT ?",
                    (blog, self.history_limit),
                )
            ]
        finally:
            db.execute("COMMIT")
        history.reverse()
        return Loaded(str(row[0]), entries, int(row[1]), str(row[2]), history)

    async def read_meta(self, blog: str) -> str | None:
        row = await self._run(
            lambda: self.db.execute("SELECT meta FROM blogs WHERE slug=?", (blog,)).fetchone()
        )
        return None if row is None else str(row[0])

    async def read_entry(self, blog: str, entry_id: str) -> str | None:
        row = await self._run(
            lambda: self.db.execute(
                "SELECT doc FROM entries WHERE blog=? AND id=?", (blog, entry_id)
            ).fetchone()
        )
        return None if row is None else str(row[0])

    async def list_blogs(self) -> list[str]:
        rows = await self._run(
            lambda: self.db.execute("SELECT meta FROM blogs ORDER BY slug").fetchall()
        )
        return [str(r[0]) for r in rows]

    async def head(self, blog: str) -> tuple[int, str] | None:
        row = await self._run(
            lambda: self.db.execute("SELECT seq, epoch FROM blogs WHERE slug=?", (blog,)).fetchone()
        )
        return None if row is None else (int(row[0]), str(row[1]))

    # -- fan-out inside this process ------------------------------------------------------------

    async def subscribe(self, blog: str) -> None:
        # Added on the SQL thread, so no commit can slip between "subscribed" and a later load.
        await self._run(lambda: self._subscribed.add(blog))

    async def unsubscribe(self, blog: str) -> None:
        await self._run(lambda: self._subscribed.discard(blog))

    async def rotate_epoch(self, blog: str, expected: str, new: str) -> bool:
        return await self._run(lambda: self._rotate(blog, expected, new))

    def _rotate(self, blog: str, expected: str, new: str) -> bool:
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute("SELECT meta, seq, epoch FROM blogs WHERE slug=?", (blog,)).fetchone()
            if row is None or row[2] != expected:
                db.execute("ROLLBACK")
                return False
            seq = int(row[1]) + 1
            frame = event_frame(seq, new, event_body("blog", str(row[0])))
            db.execute("UPDATE blogs SET seq=?, epoch=? WHERE slug=?", (seq, new, blog))
            db.execute("DELETE FROM events WHERE blog=?", (blog,))
            db.execute("INSERT INTO events (blog, seq, frame) VALUES (?, ?, ?)", (blog, seq, frame))
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        if blog in self._subscribed and self._loop is not None and self._listener is not None:
            self._loop.call_soon_threadsafe(self._listener.on_message, blog, frame)
        return True

    async def revoke(self, token_id: str, until: float) -> None:
        await self._run(
            lambda: self.db.execute(
                "INSERT OR REPLACE INTO revoked (token_id, until) VALUES (?, ?)", (token_id, until)
            )
        )

    async def is_revoked(self, token_id: str) -> bool:
        row = await self._run(
            lambda: self.db.execute(
                "SELECT 1 FROM revoked WHERE token_id=? AND until>?", (token_id, time.time())
            ).fetchone()
        )
        return row is not None

    async def ping(self) -> None:
        await self._run(lambda: self.db.execute("SELECT 1").fetchone())
