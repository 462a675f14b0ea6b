"""Hostile SSE readers: fuzzed Last-Event-ID, since and epoch values, and many short-lived
connections dropped mid-stream while events are being published. A bad position is a 400 JSON
error; a good one gets exactly the catch-up docs/protocol.md promises; the hub lets go of every
dropped reader (and of its reader slot); the node stays healthy; a WebSocket bystander misses
nothing; and an SSE reader that connects afterwards gets every event once, in order."""

from __future__ import annotations

import contextlib
import json
import random
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz._support import (
    Bystander,
    assert_json_error,
    assert_node_healthy,
    editor_token,
    fuzz_node,
    http_client,
    log_offset,
    make_blog,
    prove_bystander_live,
    publish,
    wait_reader_count,
)
from tests.support.servers import HOST, PushhubProcess

MAX_SEQ = 2**53


@dataclass
class SseSite:
    node: PushhubProcess
    editor: httpx.Client
    bystander: Bystander


@pytest.fixture(scope="module", params=["embedded", "redis"])
def sse_site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SseSite]:
    base: Path = tmp_path_factory.mktemp(f"sse-fuzz-{request.param}")
    with fuzz_node(base, request.param) as node, http_client(node, editor_token()) as editor:
        make_blog(editor, "live")
        for i in range(5):
            publish(editor, "live", f"entry {i}")
        bystander = Bystander(node, "live").start()
        try:
            yield SseSite(node, editor, bystander)
        finally:
            bystander.stop()


# -- what a position may look like ------------------------------------------------------------

_latin1 = st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f")
positions = st.one_of(
    st.integers(0, 12).map(str),
    st.sampled_from([
        "", "-1", "+1", "1.0", "1e2", "0x1", " 3", "²", "١", "007", str(MAX_SEQ),
        str(MAX_SEQ + 1), "9" * 17, "9" * 400, "3,4", "null",
    ]),
    st.text(_latin1, max_size=12),
)  # fmt: skip
epochs = st.one_of(
    st.just("<real>"),
    st.sampled_from(["", "other1", "../x", "a" * 65, "é", "x y", "A1b2"]),
    st.text(_latin1, max_size=10),
)


def _since(raw: str | None) -> int | str | None:
    """What the node makes of a since (or Last-Event-ID) value: an int, None, or "bad"."""
    if raw is None or raw == "":
        return None
    if raw.isascii() and raw.isdigit() and len(raw) <= 16 and int(raw) <= MAX_SEQ:
        return int(raw)
    return "bad"


def _epoch_ok(raw: str | None) -> bool:
    return not raw or (len(raw) <= 64 and raw.isascii() and raw.isalnum())


def expected_start(
    last_id: str | None, since: str | None, epoch: str | None, head: int, real_epoch: str
) -> tuple[str, Any]:
    """docs/protocol.md: ("error", 400), ("snapshot", reset) or ("events", first seq or None)."""
    since_value = _since(last_id if last_id else since)  # Last-Event-ID takes precedence
    if not _epoch_ok(epoch) or since_value == "bad":
        return "error", 400
    if since_value is None:
        return "snapshot", False
    assert isinstance(since_value, int)
    if (epoch and epoch != real_epoch) or since_value > head:
        return "snapshot", True
    return "events", since_value + 1 if since_value < head else None


def _events(buf: bytes) -> list[tuple[str, dict[str, Any]]]:
    """The complete SSE events in `buf`, as (id, data) pairs; comments and retry lines skipped."""
    out = []
    for block in buf.split(b"\n\n")[:-1]:
        fields = dict(line.split(b": ", 1) for line in block.split(b"\n") if b": " in line)
        if b"data" in fields:
            out.append((fields.get(b"id", b"").decode(), json.loads(fields[b"data"])))
    return out


def test_fuzzed_positions_get_the_promised_start(sse_site: SseSite) -> None:
    offset = log_offset(sse_site.node)
    state = sse_site.editor.get("/api/blogs/live").json()
    head, real_epoch = state["seq"], state["epoch"]
    client = httpx.Client(timeout=httpx.Timeout(5.0, read=0.5), trust_env=False)

    @settings(
        max_examples=120, deadline=None, derandomize=True, database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )  # fmt: skip
    @given(
        # A header is bytes: non-Latin-1 text goes as UTF-8 and the node reads it as Latin-1.
        last_id=st.none() | positions.map(lambda p: p.encode().decode("latin-1").strip()),
        since=st.none() | positions,
        epoch=st.none() | epochs,
        slug=st.sampled_from(["live", "live", "live", "nope", "..", "%00"]),
    )
    def run(last_id: str | None, since: str | None, epoch: str | None, slug: str) -> None:
        epoch = real_epoch if epoch == "<real>" else epoch
        params = [(k, v) for k, v in (("since", since), ("epoch", epoch)) if v is not None]
        query = "&".join(f"{k}={quote(v, safe='')}" for k, v in params)
        url = f"{sse_site.node.url}/sse/blogs/{quote(slug, safe='%')}" + (
            f"?{query}" if query else ""
        )
        headers = {"Last-Event-ID": last_id.encode("latin-1")} if last_id is not None else {}
        kind, detail = expected_start(last_id, since, epoch, head, real_epoch)
        with client.stream("GET", url, headers=headers) as r:
            where = f"GET {url} Last-Event-ID={last_id!r}"
            if r.status_code != 200:
                assert_json_error(r.status_code, r.headers["content-type"], r.read(), where)
                if slug == "live":
                    assert (kind, detail) == ("error", r.status_code), (where, r.text)
                return
            assert slug == "live" and kind != "error", f"{where}: 200, expected a 400"
            assert r.headers["content-type"].startswith("text/event-stream"), r.headers
            assert (
                r.headers["cache-control"] == "no-cache" and r.headers["x-accel-buffering"] == "no"
            )
            buf = b""
            try:
                for chunk in r.iter_raw():
                    buf += chunk
                    if _events(buf):
                        break
            except httpx.ReadTimeout:
                pass  # nothing to catch up on: the stream waits for the next event
            # Leaving the block drops the connection mid-stream.
        assert buf.startswith(b"retry: 2000\n\n"), buf[:100]
        events = _events(buf)
        if kind == "events" and detail is None:
            assert events == [], f"{where}: level with the head, yet got {events}"
            return
        assert events, f"{where}: no frame within 0.5 s"
        event_id, frame = events[0]
        assert event_id == str(frame["seq"]), (event_id, frame)
        if kind == "snapshot":
            assert frame["type"] == "snapshot" and frame["reset"] is detail, (where, frame)
            assert frame["seq"] == head
        else:
            assert frame["type"] == "event" and frame["seq"] == detail, (where, frame)

    try:
        run()
    finally:
        client.close()
    assert_node_healthy(sse_site.node, offset)
    wait_reader_count(sse_site.node, 1)
    prove_bystander_live(sse_site.bystander, sse_site.editor, "live")


# -- churn: many short-lived streams while events are published --------------------------------


def _dropped_stream(node: PushhubProcess, rnd: random.Random, head: int) -> None:
    """One SSE reader that reads a little (or nothing) and goes away (FIN or RST)."""
    since = rnd.choice(["", str(rnd.randint(0, head)), str(head), str(head + 5)])
    sock = socket.create_connection((HOST, node.port), timeout=5)
    try:
        if rnd.random() < 0.3:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        request = f"GET /sse/blogs/live?since={since} HTTP/1.1\r\nHost: {HOST}\r\n\r\n"
        sock.sendall(request.encode())
        sock.settimeout(0.2)  # a reader level with the head gets nothing until the next event
        with contextlib.suppress(TimeoutError):
            for _ in range(rnd.choice([0, 0, 1, 2, 5])):
                if not sock.recv(rnd.choice([1, 64, 4096])):
                    break
    finally:
        sock.close()


def test_streams_dropped_mid_way_are_let_go(sse_site: SseSite) -> None:
    offset = log_offset(sse_site.node)
    head = sse_site.editor.get("/api/blogs/live").json()["seq"]
    stop = threading.Event()
    errors: list[BaseException] = []

    def keep_publishing() -> None:
        with http_client(sse_site.node, editor_token()) as editor:
            while not stop.is_set():
                try:
                    publish(editor, "live", "while readers come and go")
                except BaseException as exc:
                    errors.append(exc)
                    return
                time.sleep(0.02)

    publisher = threading.Thread(target=keep_publishing, name="publisher", daemon=True)
    publisher.start()
    rnd = random.Random(6)
    try:
        for _ in range(150):  # far more than the 32 reader slots the node has
            _dropped_stream(sse_site.node, rnd, head)
    finally:
        stop.set()
        publisher.join(timeout=10)
    assert not errors, errors
    assert_node_healthy(sse_site.node, offset)
    wait_reader_count(sse_site.node, 1)
    prove_bystander_live(sse_site.bystander, sse_site.editor, "live")
    # A reader that arrives now gets every event of the blog once, in order, from the start.
    final = sse_site.editor.get("/api/blogs/live").json()["seq"]
    buf = b""
    with (
        httpx.Client(timeout=10.0, trust_env=False) as client,
        client.stream("GET", f"{sse_site.node.url}/sse/blogs/live?since=0") as r,
    ):
        assert r.status_code == 200, r.read()
        for chunk in r.iter_raw():  # bounded by the 10 s read timeout
            buf += chunk
            if len(_events(buf)) >= final:
                break
    seqs = [frame["seq"] for _, frame in _events(buf)]
    assert seqs == list(range(1, final + 1)), seqs
