"""Reader-facing protocol: frames, resume positions, close codes. Pure: no I/O here.

An event is produced exactly once, by the store's atomic write (Lua in Redis, a transaction in
SQLite), as `{"type":"event","seq":N,"epoch":"E",<body>}`. Each node turns it into the frame its
readers get once per event (`reader_event`: the entry less its Markdown source, which readers
never render) and passes that same text to every reader, so nothing is encoded per reader.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import orjson

from pushhub.model import BlogDoc, EntryDoc, EventDoc, Op
from pushhub.wsframes import text_frame


class CloseCode(IntEnum):
    NORMAL = 1000
    UNSUPPORTED_DATA = 1003
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_QUERY = 4400
    ORIGIN_NOT_ALLOWED = 4403
    UNKNOWN_BLOG = 4404


class ProtocolError(Exception):
    """Something a reader sent that ends its connection with `code` and a reason it can read."""

    def __init__(self, code: CloseCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Position:
    """Where a reader says it is: the last seq it applied, and in which epoch."""

    since: int | None = None
    epoch: str | None = None


class Frame:
    """One frame as text, with its wire forms (SSE, WebSocket, compressed WebSocket) each built
    at most once, however many readers get it. `source` is the stored event it was made from
    (the text itself for frames that are not events)."""

    __slots__ = ("_sse", "_ws", "_ws_deflate", "seq", "source", "text")

    def __init__(self, seq: int, text: str, source: str | None = None) -> None:
        self.seq = seq
        self.text = text
        self.source = text if source is None else source
        self._sse: bytes | None = None
        self._ws: bytes | None = None
        self._ws_deflate: bytes | None = None

    def ws(self) -> bytes:
        if self._ws is None:
            self._ws = text_frame(self.text)
        return self._ws

    def ws_deflate(self) -> bytes:
        if self._ws_deflate is None:
            self._ws_deflate = text_frame(self.text, deflate=True)
        return self._ws_deflate

    def sse(self) -> bytes:
        if self._sse is None:
            self._sse = f"id: {self.seq}\ndata: {self.text}\n\n".encode()
        return self._sse


MAX_SEQ = 2**53
PONG = '{"type":"pong"}'


def parse_position(since: str | None, epoch: str | None) -> Position:
    """Read `since`/`epoch` from a query string or a Last-Event-ID header."""
    epoch = epoch or None  # an empty epoch= means "not given", with or without since
    if epoch is not None and (len(epoch) > 64 or not (epoch.isascii() and epoch.isalnum())):
        raise ProtocolError(CloseCode.BAD_QUERY, "epoch must be alphanumeric")
    if since is None or since == "":
        return Position(None, epoch)
    # isdigit() alone admits "²" or Arabic-Indic digits; only ASCII digits are a seq.
    if not (since.isascii() and since.isdigit()) or len(since) > 16 or int(since) > MAX_SEQ:
        raise ProtocolError(CloseCode.BAD_QUERY, "since must be a non-negative integer")
    return Position(int(since), epoch)


def event_body(op: Op, doc_json: str) -> str:
    """The part of an event frame that the writer knows before the store assigns a seq."""
    field = "blog" if op == "blog" else "entry"
    return f'"op":"{op}","{field}":{doc_json}'


def event_frame(seq: int, epoch: str, body: str) -> str:
    # Must match the Lua script byte for byte: both stores produce the same frames.
    return f'{{"type":"event","seq":{seq},"epoch":"{epoch}",{body}}}'


def reader_entry(entry: Mapping[str, Any]) -> dict[str, Any]:
    """An entry as readers get it: everything but the Markdown source. Readers show `html`;
    the source, as long again, is for editors, who get it from the API."""
    return {k: v for k, v in entry.items() if k != "body"}


def reader_event(ev: EventDoc, text: str) -> str:
    """The frame readers get for the stored event `text` (parsed as `ev`)."""
    entry = ev.get("entry")
    if entry is None or "body" not in entry:  # blog and delete events go out as stored
        return text
    doc: dict[str, Any] = dict(ev)
    doc["entry"] = reader_entry(entry)
    return orjson.dumps(doc).decode()


def snapshot_frame(
    blog: BlogDoc, entries: list[EntryDoc], seq: int, epoch: str, *, reset: bool
) -> str:
    doc = {
        "type": "snapshot", "seq": seq, "epoch": epoch,
        "blog": blog, "entries": [reader_entry(e) for e in entries], "reset": reset,
    }  # fmt: skip
    return orjson.dumps(doc).decode()


def parse_event(text: str) -> EventDoc:
    """Parse an event frame; anything malformed is a ValueError (the hub drops those)."""
    doc: Any = orjson.loads(text)
    if not isinstance(doc, dict) or doc.get("type") != "event":
        raise ValueError("not an event frame")
    if not isinstance(doc.get("seq"), int) or not isinstance(doc.get("epoch"), str):
        raise ValueError("event frame without seq or epoch")
    op = doc.get("op")
    if op not in ("create", "update", "delete", "blog"):
        raise ValueError(f"event frame with unknown op {op!r}")
    field = "blog" if op == "blog" else "entry"
    body = doc.get(field)
    if not isinstance(body, dict) or (field == "entry" and not isinstance(body.get("id"), str)):
        raise ValueError(f"{op} event without its {field}")
    ev: EventDoc = doc  # type: ignore[assignment]
    return ev


def reader_message(text: str | None, data: bytes | None) -> str:
    """What a reader may send: `{"type":"ping"}`. Returns the reply; anything else is an error."""
    if text is None:
        if data is not None:
            raise ProtocolError(CloseCode.UNSUPPORTED_DATA, "binary frames are not accepted")
        raise ProtocolError(CloseCode.POLICY_VIOLATION, "empty message")
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise ProtocolError(CloseCode.POLICY_VIOLATION, "messages must be JSON") from None
    if doc == {"type": "ping"}:
        return PONG
    raise ProtocolError(
        CloseCode.POLICY_VIOLATION, 'the only message readers send is {"type":"ping"}'
    )
