"""Reader-facing protocol: resume positions, reader messages, frame encodings."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest

import pushhub
from pushhub.protocol import (
    MAX_SEQ,
    PONG,
    CloseCode,
    Frame,
    Position,
    ProtocolError,
    event_body,
    event_frame,
    parse_event,
    parse_position,
    reader_event,
    reader_message,
    snapshot_frame,
)

LUA = Path(pushhub.__file__).parent / "lua" / "commit.lua"

# -- parse_position -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("since", "epoch", "expected"),
    [
        (None, None, Position(None, None)),
        ("", None, Position(None, None)),
        (None, "k3j9x0a1", Position(None, "k3j9x0a1")),
        ("", "", Position(None, None)),
        ("0", None, Position(0, None)),
        ("42", "k3j9x0a1", Position(42, "k3j9x0a1")),
        ("007", "abc", Position(7, "abc")),
        (str(MAX_SEQ), "e", Position(MAX_SEQ, "e")),
        ("1", "a" * 64, Position(1, "a" * 64)),
    ],
)
def test_parse_position_valid(since: str | None, epoch: str | None, expected: Position) -> None:
    assert parse_position(since, epoch) == expected


def test_parse_position_empty_epoch_with_since_means_no_epoch() -> None:
    # The JS reader sends `epoch=` when it has a seq but no epoch; empty means "not given",
    # as it does without `since`.
    assert parse_position("5", "") == Position(5, None)


@pytest.mark.parametrize(
    "since",
    [
        "-1", "-0", "+1", "1.0", "1e3", "abc", " 1", "1 ", "0x10", "1_000",
        str(MAX_SEQ + 1), "9" * 16, "9" * 17, "1" * 100,
    ],
)  # fmt: skip
def test_parse_position_bad_since(since: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_position(since, None)
    assert info.value.code == CloseCode.BAD_QUERY == 4400
    assert "since" in info.value.reason


@pytest.mark.parametrize("since", ["²", "5²", "①", "٣²"])
def test_parse_position_unicode_digit_characters_are_a_bad_query(since: str) -> None:
    # str.isdigit() is true for these, but int() cannot read them: must be 4400, not a crash.
    with pytest.raises(ProtocolError) as info:
        parse_position(since, None)
    assert info.value.code == CloseCode.BAD_QUERY


@pytest.mark.parametrize(
    "epoch", ["a" * 65, "ab-cd", "ab cd", "ab/cd", "ab\x00", "e;DROP", "<script>", "a.b"]
)
def test_parse_position_bad_epoch(epoch: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_position("3", epoch)
    assert info.value.code == CloseCode.BAD_QUERY
    assert "epoch" in info.value.reason


def test_protocol_error_carries_code_and_reason() -> None:
    err = ProtocolError(CloseCode.BAD_QUERY, "since must be a non-negative integer")
    assert err.code == 4400
    assert err.reason == str(err) == "since must be a non-negative integer"


def test_close_codes_match_the_documented_table() -> None:
    assert {c.name: int(c) for c in CloseCode} == {
        "NORMAL": 1000, "UNSUPPORTED_DATA": 1003, "POLICY_VIOLATION": 1008,
        "MESSAGE_TOO_BIG": 1009, "INTERNAL_ERROR": 1011, "SERVICE_RESTART": 1012,
        "TRY_AGAIN_LATER": 1013, "BAD_QUERY": 4400, "ORIGIN_NOT_ALLOWED": 4403,
        "UNKNOWN_BLOG": 4404,
    }  # fmt: skip


# -- reader_message -----------------------------------------------------------------------------


@pytest.mark.parametrize("text", ['{"type":"ping"}', '{ "type" : "ping" }', '\n{"type": "ping"}'])
def test_ping_gets_pong(text: str) -> None:
    reply = reader_message(text, None)
    assert reply == PONG
    assert orjson.loads(reply) == {"type": "pong"}


@pytest.mark.parametrize(
    "text",
    [
        "", "ping", "junk", "{", "null", "1", '"ping"', "[]", '["ping"]', "{}",
        '{"type":"pong"}', '{"type":"PING"}', '{"type":"ping","since":3}',
        '{"type":"subscribe","blog":"x"}', '{"type":"ping"} trailing',
    ],
)  # fmt: skip
def test_other_text_closes_with_1008(text: str) -> None:
    with pytest.raises(ProtocolError) as info:
        reader_message(text, None)
    assert info.value.code == CloseCode.POLICY_VIOLATION == 1008


@pytest.mark.parametrize("data", [b"", b'{"type":"ping"}', b"\x00\xff"])
def test_binary_closes_with_1003(data: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        reader_message(None, data)
    assert info.value.code == CloseCode.UNSUPPORTED_DATA == 1003


def test_empty_message_closes_with_1008() -> None:
    with pytest.raises(ProtocolError) as info:
        reader_message(None, None)
    assert info.value.code == CloseCode.POLICY_VIOLATION


# -- frames -------------------------------------------------------------------------------------


def lua_frame(seq: int, epoch: str, body: str) -> str:
    """What commit.lua builds, read from the script itself so the two cannot drift apart."""
    source = LUA.read_text()
    match = re.search(r"local frame = (.+)\n", source)
    assert match is not None, "commit.lua no longer builds `local frame = ...`"
    expr = match.group(1)
    # Evaluate the Lua concatenation: string literals and the three variables.
    values = {"seq": str(seq), "epoch": epoch, "ARGV[7]": body}
    out = []
    for token in re.findall(r"'[^']*'|\"[^\"]*\"|ARGV\[7\]|seq|epoch", expr):
        out.append(token[1:-1] if token[0] in "'\"" else values[token])
    return "".join(out)


@pytest.mark.parametrize(
    ("seq", "epoch", "body"),
    [
        (1, "k3j9x0a1", event_body("blog", '{"slug":"x","title":"T"}')),
        (43, "0abc", event_body("create", '{"id":"0mhx3k2a9c4f7q","body":"b"}')),
        (2**40, "z", event_body("delete", '{"id":"0mhx3k2a9c4f7q"}')),
    ],
)
def test_event_frame_equals_the_lua_frame(seq: int, epoch: str, body: str) -> None:
    assert event_frame(seq, epoch, body) == lua_frame(seq, epoch, body)


def test_event_frame_exact_format() -> None:
    body = event_body("delete", '{"id":"abc"}')
    assert body == '"op":"delete","entry":{"id":"abc"}'
    text = event_frame(45, "k3j9x0a1", body)
    assert text == '{"type":"event","seq":45,"epoch":"k3j9x0a1","op":"delete","entry":{"id":"abc"}}'
    assert orjson.loads(text) == {
        "type": "event", "seq": 45, "epoch": "k3j9x0a1", "op": "delete", "entry": {"id": "abc"}
    }  # fmt: skip


@pytest.mark.parametrize(
    ("op", "field"),
    [("create", "entry"), ("update", "entry"), ("delete", "entry"), ("blog", "blog")],
)
def test_event_body_field_per_op(op: str, field: str) -> None:
    text = event_frame(3, "e", event_body(op, '{"id":"a"}'))  # type: ignore[arg-type]
    doc = orjson.loads(text)
    assert doc["op"] == op
    assert doc[field] == {"id": "a"}
    assert parse_event(text)["seq"] == 3


@pytest.mark.parametrize(
    "text", ['{"type":"snapshot","seq":1}', '{"type":"event","seq":"1"}', "[1]", '{"type":"event"}']
)
def test_parse_event_refuses_non_events(text: str) -> None:
    with pytest.raises(ValueError):
        parse_event(text)


@pytest.mark.parametrize(
    "text",
    [
        '{"type":"event","seq":2}',
        '{"type":"event","seq":2,"epoch":"e"}',
        '{"type":"event","seq":2,"op":"delete","entry":{"id":"a"}}',
    ],
)
def test_parse_event_refuses_events_without_epoch_or_op(text: str) -> None:
    # The hub drops malformed frames by catching ValueError (hub.Hub._feed); a frame lacking
    # what every event has must be refused here, not fail later with a KeyError.
    with pytest.raises(ValueError):
        parse_event(text)


def test_snapshot_frame() -> None:
    text = snapshot_frame({"slug": "x"}, [], 7, "ep", reset=True)  # type: ignore[typeddict-item]
    assert orjson.loads(text) == {
        "type": "snapshot", "seq": 7, "epoch": "ep", "blog": {"slug": "x"}, "entries": [],
        "reset": True,
    }  # fmt: skip


def test_frame_sse() -> None:
    text = '{"type":"event","seq":12,"epoch":"e","op":"delete","entry":{"id":"é"}}'
    frame = Frame(12, text)
    assert frame.sse() == f"id: 12\ndata: {text}\n\n".encode()
    assert frame.sse().endswith(b"\n\n")
    assert frame.sse().decode("utf-8").count("\n") == 3
    assert frame.sse() is frame.sse()  # built once, whatever the number of readers
    assert (frame.seq, frame.text) == (12, text)


def test_reader_event_drops_only_the_markdown_source() -> None:
    entry = {
        "id": "e1", "created_at": "t", "updated_at": "t", "author": "Ana", "title": "Ten km",
        "body": "**Split** at 10 km", "html": "<p><strong>Split</strong> at 10 km</p>",
        "image": None, "pinned": False, "key": True,
    }  # fmt: skip
    for op in ("create", "update"):
        stored = event_frame(4, "ep1", event_body(op, orjson.dumps(entry).decode()))  # type: ignore[arg-type]
        text = reader_event(parse_event(stored), stored)
        without = {k: v for k, v in entry.items() if k != "body"}
        assert orjson.loads(text) == {
            "type": "event", "seq": 4, "epoch": "ep1", "op": op, "entry": without,
        }  # fmt: skip
        assert list(orjson.loads(text)) == list(orjson.loads(stored))  # same field order
    for stored in (
        event_frame(5, "ep1", event_body("delete", '{"id":"e1"}')),
        event_frame(6, "ep1", event_body("blog", '{"slug":"b","title":"T"}')),
    ):
        assert reader_event(parse_event(stored), stored) is stored


def test_snapshot_entries_carry_no_markdown_source() -> None:
    entry = {"id": "e1", "body": "*hi*", "html": "<p><em>hi</em></p>"}
    text = snapshot_frame({"slug": "x"}, [entry], 3, "ep", reset=False)  # type: ignore[typeddict-item,list-item]
    assert orjson.loads(text)["entries"] == [{"id": "e1", "html": "<p><em>hi</em></p>"}]
