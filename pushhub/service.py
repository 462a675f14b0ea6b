"""What editors and readers can do with blogs, independent of HTTP: validation, the
compare-and-set write loop against the broker, and reads served from the hub's replicas.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import orjson

from pushhub import model
from pushhub.brokers.base import Broker, Change, Committed
from pushhub.errors import BlogMissing, Conflict, Invalid, NotFound, WriteConflict
from pushhub.hub import Hub
from pushhub.ids import new_epoch
from pushhub.model import BlogDoc, EntryDoc
from pushhub.protocol import event_body, event_frame

log = logging.getLogger("pushhub.service")

# Compare-and-set retries before answering 409: only many editors hammering one entry get there.
MAX_ATTEMPTS = 8
# Losers of a compare-and-set wait a random while before reading again; without it the same
# racers collide again in lock step, and ten concurrent edits of one entry could use up eight
# attempts (each round has one winner).
BACKOFF_BASE = 0.002


async def _after_conflict(attempt: int) -> None:
    if attempt < MAX_ATTEMPTS - 1:  # after the last one the editor gets its 409 at once
        await asyncio.sleep(random.uniform(0, BACKOFF_BASE * 2**attempt))


@dataclass(frozen=True, slots=True)
class WriteResult:
    seq: int
    epoch: str
    entry: EntryDoc | None = None
    blog: BlogDoc | None = None
    created: bool = False

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.entry is not None:
            out["entry"] = self.entry
        if self.blog is not None:
            out["blog"] = self.blog
        out["seq"] = self.seq
        out["epoch"] = self.epoch
        return out


@dataclass(frozen=True, slots=True)
class BlogView:
    blog: BlogDoc
    entries: list[EntryDoc]
    seq: int
    epoch: str

    def to_json(self) -> dict[str, Any]:
        return {"blog": self.blog, "entries": self.entries, "seq": self.seq, "epoch": self.epoch}


def _dumps(doc: Any) -> str:
    return orjson.dumps(doc).decode()


def _result(committed: Committed) -> WriteResult:
    doc = orjson.loads(committed.result)
    return WriteResult(
        seq=committed.seq, epoch=committed.epoch, entry=doc.get("entry"),
        blog=doc.get("blog"), created=bool(doc.get("created")) and not committed.replayed,
    )  # fmt: skip


class Service:
    def __init__(self, broker: Broker, hub: Hub) -> None:
        self.broker = broker
        self.hub = hub
        self.writes = 0  # accepted by the store, replays of an idempotency key included

    async def _commit(self, change: Change) -> WriteResult:
        committed = await self.broker.commit(change)
        self.writes += 1
        if not committed.replayed:
            frame = event_frame(committed.seq, committed.epoch, change.event_body)
            try:
                self.hub.on_commit(change.blog, committed.seq, committed.epoch, frame)
            except Exception:
                # The write is done and must be answered as done; pub/sub still brings it.
                log.exception("fanning out %s seq %d from its commit", change.blog, committed.seq)
        return _result(committed)

    # -- writes ---------------------------------------------------------------------------------

    async def put_blog(
        self, slug: str, fields: Mapping[str, Any], *, editor: str,
        idempotency_key: str | None = None,
    ) -> WriteResult:  # fmt: skip
        if not model.valid_slug(slug):
            raise Invalid("slug", "must be 1-64 characters of a-z, 0-9 and -")
        key = idempotency_key or secrets.token_hex(16)
        for attempt in range(MAX_ATTEMPTS):
            raw = await self.broker.read_meta(slug)
            current = None if raw is None else cast(BlogDoc, orjson.loads(raw))
            blog = model.put_blog(slug, current, fields)
            blog_json = _dumps(blog)
            change = Change(
                blog=slug, kind="meta", entry_id="", expect=raw, new=blog_json,
                event_body=event_body("blog", blog_json),
                result=_dumps({"blog": blog, "created": raw is None}),
                idempotency_key=key, new_epoch=new_epoch(),
            )  # fmt: skip
            try:
                return await self._commit(change)
            except WriteConflict:
                await _after_conflict(attempt)
        raise Conflict(f"blog {slug!r} is being changed by others; try again")

    async def create_entry(
        self, slug: str, fields: Mapping[str, Any], *, editor: str,
        idempotency_key: str | None = None,
    ) -> WriteResult:  # fmt: skip
        _check_slug(slug)
        entry = model.new_entry(fields, editor=editor)
        entry_json = _dumps(entry)
        change = Change(
            blog=slug, kind="entry", entry_id=entry["id"], expect=None, new=entry_json,
            event_body=event_body("create", entry_json), result=_dumps({"entry": entry}),
            idempotency_key=idempotency_key or secrets.token_hex(16), new_epoch=new_epoch(),
        )  # fmt: skip
        try:
            return await self._commit(change)
        except BlogMissing:
            raise NotFound(f"no blog named {slug!r}") from None
        except WriteConflict:  # two entries with one id: only if ids repeat within 1 ms
            raise Conflict("entry id collision; retry the request") from None

    async def update_entry(
        self, slug: str, entry_id: str, fields: Mapping[str, Any], *, editor: str,
        idempotency_key: str | None = None,
    ) -> WriteResult:  # fmt: skip
        return await self._change_entry(slug, entry_id, fields, idempotency_key, delete=False)

    async def delete_entry(
        self, slug: str, entry_id: str, *, editor: str, idempotency_key: str | None = None
    ) -> WriteResult:
        return await self._change_entry(slug, entry_id, {}, idempotency_key, delete=True)

    async def _change_entry(
        self, slug: str, entry_id: str, fields: Mapping[str, Any],
        idempotency_key: str | None, *, delete: bool,
    ) -> WriteResult:  # fmt: skip
        _check_slug(slug)
        if not model.valid_entry_id(entry_id):
            raise NotFound(f"no entry {entry_id!r} in blog {slug!r}")
        key = idempotency_key or secrets.token_hex(16)
        for attempt in range(MAX_ATTEMPTS):
            raw = await self.broker.read_entry(slug, entry_id)
            if raw is None:
                # A retry of a change that did happen (its answer was lost) finds the entry
                # gone or changed: the remembered answer is the right reply.
                if idempotency_key is not None:
                    earlier = await self.broker.recall(slug, idempotency_key)
                    if earlier is not None:
                        return _result(earlier)
                if await self.broker.read_meta(slug) is None:
                    raise NotFound(f"no blog named {slug!r}")
                raise NotFound(f"no entry {entry_id!r} in blog {slug!r}")
            current = cast(EntryDoc, orjson.loads(raw))
            if delete:
                new_json = None
                body = event_body("delete", _dumps({"id": entry_id}))
                result = _dumps({"entry": current})
            else:
                entry = model.patch_entry(current, fields)
                new_json = _dumps(entry)
                body = event_body("update", new_json)
                result = _dumps({"entry": entry})
            change = Change(
                blog=slug, kind="entry", entry_id=entry_id, expect=raw, new=new_json,
                event_body=body, result=result, idempotency_key=key, new_epoch=new_epoch(),
            )  # fmt: skip
            try:
                return await self._commit(change)
            except WriteConflict:
                await _after_conflict(attempt)
            except BlogMissing:
                raise NotFound(f"no blog named {slug!r}") from None
        raise Conflict(f"entry {entry_id!r} is being changed by others; try again")

    # -- reads ----------------------------------------------------------------------------------

    async def read_blog(self, slug: str) -> BlogView:
        """The blog as this node's replica holds it (warming it if needed)."""
        _check_slug(slug)
        ch = await self.hub.acquire(slug)
        try:
            r = ch.live
            return BlogView(r.blog, r.ordered_entries(), r.head, r.epoch)
        finally:
            self.hub.release(ch)

    async def list_blogs(self) -> list[BlogDoc]:
        return [cast(BlogDoc, orjson.loads(raw)) for raw in await self.broker.list_blogs()]


def _check_slug(slug: str) -> None:
    if not model.valid_slug(slug):
        raise NotFound(f"no blog named {slug!r} (slugs are 1-64 of a-z, 0-9 and -)")
