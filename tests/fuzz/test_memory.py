"""Memory under abuse: what abusive clients cost must be given back when they go. The node's
resident memory (VmRSS) is read after a warm-up round of abuse and again after five more; a
leak (half-open handshakes, detached readers, per-name state for blogs that do not exist) shows
as growth round after round. These tests are about leaks, not speed: no timings are asserted."""

from __future__ import annotations

import contextlib
import itertools
import random
import socket
import uuid
from pathlib import Path

import httpx
import pytest

from tests.fuzz._support import (
    Bystander,
    RawConn,
    editor_token,
    fuzz_node,
    http_client,
    make_blog,
    open_reader,
    prove_bystander_live,
    publish,
    rss_kib,
    upgrade_request,
    wait_reader_count,
)
from tests.fuzz.test_http_fuzz import RAW_CASES
from tests.fuzz.test_sse_fuzz import _dropped_stream
from tests.fuzz.test_ws_fuzz import ABUSE, HALF_HANDSHAKES
from tests.support.servers import HOST, PushhubProcess

ROUNDS = 5
MAX_GROWTH_KIB = 20 * 1024


def _abuse_round(node: PushhubProcess, rnd: random.Random, n: int) -> None:
    """About 250 abusive connections of every kind the fuzz suites use."""
    held: list[socket.socket] = []
    halves = itertools.cycle(HALF_HANDSHAKES.values())
    abuse = itertools.cycle(data for data, _ in ABUSE.values())
    raw = itertools.cycle(RAW_CASES.values())
    try:
        for _ in range(60):  # held open for the whole round
            sock = socket.create_connection((HOST, node.port), timeout=5)
            if data := next(halves):
                sock.sendall(data)
            held.append(sock)
        for _ in range(60):
            conn = open_reader(node, "live")
            try:
                conn.send(next(abuse))
                conn.ending(timeout=5.0, check=False)  # test_ws_fuzz.py checks the frames
            finally:
                conn.close()
        for i in range(30):  # unknown blogs and bad positions, each name used once
            query = rnd.choice(
                ["", "?since=x", "?since=1&epoch=%2e%2e", "?since=99999999999999999"]
            )
            conn = RawConn(node)
            try:
                conn.send(upgrade_request(f"/ws/blogs/gone-{n}-{i}-{uuid.uuid4().hex}{query}"))
                conn.read_head()
                conn.ending(timeout=5.0)
            finally:
                conn.close()
        head = 5
        for _ in range(40):
            _dropped_stream(node, rnd, head)
        for _ in range(30):
            conn = RawConn(node)
            try:
                conn.send(next(raw))
                with contextlib.suppress(TimeoutError, AssertionError):
                    conn.read_http(0.5)
            finally:
                conn.close()
        with httpx.Client(base_url=node.url, timeout=5.0, trust_env=False) as client:
            for i in range(30):
                client.get(f"/api/blogs/none-{n}-{i}-{uuid.uuid4().hex}/events?since=1&wait=0")
    finally:
        for sock in held:
            sock.close()


@pytest.mark.parametrize("store", ["embedded", "redis"])
def test_memory_stays_flat_under_repeated_abuse(tmp_path: Path, store: str) -> None:
    env = {"PUSHHUB_MAX_READERS": "200"}  # room for the round's held connections
    with fuzz_node(tmp_path, store, env) as node, http_client(node, editor_token()) as editor:
        make_blog(editor, "live")
        for i in range(5):
            publish(editor, "live", f"entry {i}")
        bystander = Bystander(node, "live").start()
        try:
            rnd = random.Random(2026)
            _abuse_round(node, rnd, 0)  # warm-up: allocator arenas, caches, lazy imports
            wait_reader_count(node, 1)
            baseline = rss_kib(node)
            after = []
            for n in range(1, ROUNDS + 1):
                _abuse_round(node, rnd, n)
                wait_reader_count(node, 1)  # every abusive reader is gone from the hub
                after.append(rss_kib(node))
            growth = after[-1] - baseline
            assert growth < MAX_GROWTH_KIB, (
                f"VmRSS {baseline} KiB after the warm-up round, then {after} KiB after each "
                f"of {ROUNDS} rounds of ~250 abusive connections: +{growth} KiB"
            )
            prove_bystander_live(bystander, editor, "live")
        finally:
            bystander.stop()


def _unknown_names(node: PushhubProcess, count: int, length: int) -> None:
    """Readers asking for blogs that do not exist, each under a new name of `length` bytes
    (4 KiB for WebSocket handshakes: longer request lines are never answered, see
    test_ws_fuzz.py::test_oversized_upgrade_requests_are_answered)."""
    with httpx.Client(base_url=node.url, timeout=10.0, trust_env=False) as client:
        for i in range(count):
            name = uuid.uuid4().hex + "x" * (length - 32)
            if i % 10 == 0:
                r = client.get(f"/sse/blogs/{name}")
            else:
                r = client.get(f"/api/blogs/{name}/events")
            assert r.status_code == 404, (r.status_code, r.text[:200])
        for _ in range(count // 10):
            name = uuid.uuid4().hex + "x" * (min(length, 4096) - 32)
            conn = RawConn(node)
            try:
                conn.send(upgrade_request(f"/ws/blogs/{name}"))
                conn.read_head()
                assert conn.ending(timeout=5.0).code == 4404
            finally:
                conn.close()


def test_unknown_blog_names_are_not_remembered(tmp_path: Path) -> None:
    """Blog names come from clients: unbounded in number, and (in the path) in length. Asking
    for one that does not exist must leave nothing behind in the node."""
    count, length = 200, 32 * 1024
    with fuzz_node(tmp_path, "embedded") as node:
        _unknown_names(node, 30, length)  # warm-up
        before = rss_kib(node)
        _unknown_names(node, count, length)
        grown = rss_kib(node) - before
        names_kib = count * length // 1024
        # A node that keeps something per name holds all of them: ~10 MiB here.
        assert grown < names_kib // 3, (
            f"VmRSS grew by {grown} KiB after {count} requests for unknown blogs with "
            f"{length}-byte names, {names_kib} KiB of names in all (and {count // 10} handshakes)"
        )
