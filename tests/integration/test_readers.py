"""Readers over WebSocket and SSE against real servers: snapshot, resume, reset, abuse."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.support.api import Editor
from tests.support.readers import LocalCopy, WsReader, as_read, ws_url
from tests.support.servers import PushhubProcess, RedisProcess


async def test_snapshot_then_live_events(server: PushhubProcess, editor: Editor) -> None:
    await editor.blog("b")
    old = await editor.publish("b", "before connect")
    reader = await WsReader(server.ws_url, "b").connect()
    snapshot = await reader.recv()
    assert snapshot["type"] == "snapshot" and snapshot["reset"] is False
    assert snapshot["seq"] == old["seq"] and [e["id"] for e in snapshot["entries"]] == [
        old["entry"]["id"]
    ]
    new = await editor.publish("b", "live")
    edited = await editor.edit("b", new["entry"]["id"], pinned=True)
    gone = await editor.delete("b", old["entry"]["id"])
    await editor.blog("b", title="Renamed")
    await reader.until_seq(gone["seq"] + 1)
    ops = [(f["op"], f["seq"]) for f in reader.frames[1:]]
    assert ops == [
        ("create", new["seq"]), ("update", edited["seq"]),
        ("delete", gone["seq"]), ("blog", gone["seq"] + 1),
    ]  # fmt: skip
    assert reader.copy.entries == as_read([edited["entry"]])
    assert reader.copy.blog is not None and reader.copy.blog["title"] == "Renamed"
    assert reader.copy.entries == as_read((await editor.state("b"))["entries"])
    await reader.quiet()
    await reader.close()


async def test_resume_gets_exactly_the_missed_events(
    server: PushhubProcess, editor: Editor
) -> None:
    await editor.blog("b")
    reader = await WsReader(server.ws_url, "b").connect()
    await reader.recv()
    await reader.close()
    missed = [await editor.publish("b", f"missed {i}") for i in range(5)]
    await reader.connect()  # resumes with since/epoch from its copy
    await reader.until_seq(missed[-1]["seq"])
    assert [f["type"] for f in reader.frames] == ["snapshot"] + ["event"] * 5
    assert reader.copy.seen == [m["seq"] for m in missed]
    await reader.quiet()
    # Resuming at the head: nothing to replay, then live.
    await reader.close()
    await reader.connect()
    await reader.quiet()
    live = await editor.publish("b", "live")
    await reader.until_seq(live["seq"])
    await reader.close()


@pytest.fixture
def small_history(tmp_path: Path) -> Any:
    node = PushhubProcess(tmp_path / "node", extra_env={"PUSHHUB_HISTORY_LIMIT": "5"}).start()
    yield node
    node.kill()


async def test_resume_outside_history_or_epoch_gets_reset(
    small_history: PushhubProcess, token: str
) -> None:
    editor = Editor(small_history.url, token)
    try:
        await editor.blog("b")
        for i in range(10):
            last = await editor.publish("b", f"e{i}")
        head, epoch = last["seq"], last["epoch"]
        cases = {
            "too old": (head - 6, epoch),
            "beyond head": (head + 1, epoch),
            "other epoch": (head - 1, "otherepoch"),
        }
        for name, (since, ep) in cases.items():
            async with websockets.connect(ws_url(small_history.ws_url, "b", since, ep)) as ws:
                async with asyncio.timeout(5):
                    frame = json.loads(await ws.recv())
            assert frame["type"] == "snapshot" and frame["reset"] is True, name
            assert frame["seq"] == head and len(frame["entries"]) == 10, name
        # The oldest retained position still replays exactly.
        copy = LocalCopy(seq=head - 5, epoch=epoch)
        reader = await WsReader(small_history.ws_url, "b", copy).connect()
        await reader.until_seq(head)
        assert [f["type"] for f in reader.frames] == ["event"] * 5
        await reader.close()
    finally:
        await editor.aclose()


async def _sse_frames(
    url: str, headers: dict[str, str], count: int
) -> tuple[httpx.Headers, list[tuple[str, dict[str, Any]]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    async with (
        httpx.AsyncClient(timeout=10) as client,
        asyncio.timeout(10),
        client.stream("GET", url, headers=headers) as r,
    ):
        assert r.status_code == 200
        event_id = ""
        async for line in r.aiter_lines():
            if line.startswith("id: "):
                event_id = line[4:]
            elif line.startswith("data: "):
                out.append((event_id, json.loads(line[6:])))
                if len(out) == count:
                    return r.headers, out
    raise AssertionError("stream ended early")


async def test_sse_frames_ids_and_last_event_id(server: PushhubProcess, editor: Editor) -> None:
    await editor.blog("b")
    published = [await editor.publish("b", f"e{i}") for i in range(3)]
    headers, frames = await _sse_frames(f"{server.url}/sse/blogs/b", {}, 1)
    assert headers["content-type"].startswith("text/event-stream")
    assert headers["x-accel-buffering"] == "no" and headers["cache-control"] == "no-cache"
    ((sid, snapshot),) = frames
    assert snapshot["type"] == "snapshot" and sid == str(published[-1]["seq"])
    since = published[0]["seq"]
    _, frames = await _sse_frames(
        f"{server.url}/sse/blogs/b?since=1", {"Last-Event-ID": str(since)}, 2
    )
    assert [(i, f["seq"]) for i, f in frames] == [(str(p["seq"]), p["seq"]) for p in published[1:]]
    r = await editor.http.get("/sse/blogs/nope")
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    r = await editor.http.get("/sse/blogs/b?since=-1")
    assert r.status_code == 400


async def _close_of(url: str, send: str | bytes | None = None) -> tuple[int, str]:
    async with websockets.connect(url) as ws:
        if send is not None:
            await ws.send(send)
        try:
            async with asyncio.timeout(5):
                while True:
                    await ws.recv()
        except websockets.ConnectionClosed as closed:
            assert closed.rcvd is not None
            return closed.rcvd.code, closed.rcvd.reason
    raise AssertionError("not closed")


async def test_bad_readers_are_closed_with_a_code_and_others_unaffected(
    server: PushhubProcess, editor: Editor
) -> None:
    await editor.blog("b")
    bystander = await WsReader(server.ws_url, "b").connect()
    await bystander.recv()
    base = f"{server.ws_url}/ws/blogs"
    assert (await _close_of(f"{base}/b", "hello"))[0] == 1008
    assert (await _close_of(f"{base}/b", '{"type":"subscribe"}'))[0] == 1008
    assert (await _close_of(f"{base}/b", b"\x00\x01"))[0] == 1003
    assert (await _close_of(f"{base}/b", "x" * 10_000))[0] == 1009
    code, reason = await _close_of(f"{base}/nope")
    assert code == 4404 and "nope" in reason
    assert (await _close_of(f"{base}/b?since=abc"))[0] == 4400
    assert (await _close_of(f"{base}/b?since=1&epoch=../x"))[0] == 4400
    # A ping gets a pong; the bystander saw none of this and still gets live events.
    async with websockets.connect(f"{base}/b") as ws:
        await ws.recv()
        await ws.send('{"type":"ping"}')
        async with asyncio.timeout(5):
            assert json.loads(await ws.recv()) == {"type": "pong"}
    published = await editor.publish("b", "still here")
    await bystander.until_seq(published["seq"])
    await bystander.quiet()
    await bystander.close()


async def test_two_nodes_on_one_redis(redis_proc: RedisProcess, tmp_path: Path, token: str) -> None:
    a = PushhubProcess(tmp_path / "a", redis_url=redis_proc.url).start()
    b = PushhubProcess(tmp_path / "b", redis_url=redis_proc.url).start()
    try:
        editor_a, editor_b = Editor(a.url, token), Editor(b.url, token)
        await editor_a.blog("b")
        on_a = await WsReader(a.ws_url, "b").connect()
        on_b = await WsReader(b.ws_url, "b").connect()
        await on_a.recv()
        await on_b.recv()
        results = await asyncio.gather(
            *[editor_a.publish("b", f"a{i}") for i in range(10)],
            *[editor_b.publish("b", f"b{i}") for i in range(10)],
        )
        head = max(r["seq"] for r in results)
        await on_a.until_seq(head)
        await on_b.until_seq(head)
        assert on_a.copy.seen == on_b.copy.seen == list(range(2, head + 1))
        assert on_a.copy.entries == on_b.copy.entries
        assert len(on_b.copy.entries) == 20
        await on_a.close()
        await on_b.close()
        await editor_a.aclose()
        await editor_b.aclose()
    finally:
        a.kill()
        b.kill()


@pytest.mark.parametrize("store_kind", ["embedded"])
async def test_embedded_restart_keeps_everything(server: PushhubProcess, editor: Editor) -> None:
    await editor.blog("b")
    published = [await editor.publish("b", f"e{i}") for i in range(5)]
    reader = await WsReader(server.ws_url, "b").connect()
    await reader.recv()
    await reader.close()
    before = await editor.state("b")
    server.restart()
    assert await editor.state("b") == before
    after = await editor.publish("b", "after restart")
    assert after["seq"] == published[-1]["seq"] + 1 and after["epoch"] == before["epoch"]
    await reader.connect()
    await reader.until_seq(after["seq"])
    assert reader.frames[-1]["type"] == "event" and reader.copy.seen == [after["seq"]]


def test_embedded_store_refuses_workers(tmp_path: Path) -> None:
    import subprocess
    import sys

    env = PushhubProcess(tmp_path).env()
    r = subprocess.run(
        [sys.executable, "-m", "pushhub", "serve", "--workers", "2", "--port", "1"],
        env=env, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert r.returncode == 2
    assert "PUSHHUB_REDIS_URL" in r.stderr and "Traceback" not in r.stderr


async def test_workers_on_redis_share_the_blog(
    redis_proc: RedisProcess, tmp_path: Path, token: str
) -> None:
    node = PushhubProcess(tmp_path / "w", redis_url=redis_proc.url, extra_args=["--workers", "2"])
    node.start()
    editor = Editor(node.url, token)
    try:
        await editor.blog("b")
        # Several connections land on both workers; each must see every publish.
        readers = [await WsReader(node.ws_url, "b").connect() for _ in range(6)]
        for r in readers:
            await r.recv()
        results = [await editor.publish("b", f"e{i}") for i in range(5)]
        for r in readers:
            await r.until_seq(results[-1]["seq"])
            assert r.copy.seen == [p["seq"] for p in results]
            await r.close()
    finally:
        await editor.aclose()
        node.kill()


async def test_sse_sends_heartbeats(tmp_path: Path, token: str) -> None:
    node = PushhubProcess(tmp_path / "n", extra_env={"PUSHHUB_SSE_HEARTBEAT": "0.2"}).start()
    editor = Editor(node.url, token)
    try:
        await editor.blog("b")
        lines: list[str] = []
        async with (
            httpx.AsyncClient(timeout=10) as client,
            asyncio.timeout(10),
            client.stream("GET", f"{node.url}/sse/blogs/b") as r,
        ):
            async for line in r.aiter_lines():
                lines.append(line)
                if lines.count(": ping") == 2:
                    break
        assert any(line.startswith("data: ") for line in lines)
    finally:
        await editor.aclose()
        node.kill()


def test_unusable_secret_file_is_one_clear_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    env = {k: v for k, v in PushhubProcess(tmp_path).env().items() if k != "PUSHHUB_SECRET"}
    (tmp_path / "secret").write_text("\n")
    for args in (["serve", "--port", "1"], ["token", "create"]):
        r = subprocess.run(
            [sys.executable, "-m", "pushhub", *args], env=env, capture_output=True, text=True,
            timeout=30,
        )  # fmt: skip
        assert r.returncode == 2, r.stderr
        assert "no usable secret" in r.stderr and "Traceback" not in r.stderr
