"""The editors' HTTP API against a real server, on both stores."""

from __future__ import annotations

import asyncio
import time

import httpx
import jwt
import pytest

from pushhub.auth import issue_token
from tests.support.api import Editor
from tests.support.servers import TEST_SECRET, PushhubProcess


async def test_blog_create_update_list(server: PushhubProcess, editor: Editor) -> None:
    r = await editor.http.put("/api/blogs/night-race", json={"title": "Night race", "summary": "s"})
    assert r.status_code == 201
    created = r.json()
    assert created["seq"] == 1 and created["blog"]["status"] == "live"
    r = await editor.http.put("/api/blogs/night-race", json={"status": "ended"})
    assert r.status_code == 200
    assert r.json()["seq"] == 2 and r.json()["blog"]["title"] == "Night race"
    assert r.json()["epoch"] == created["epoch"]
    r = await editor.http.get("/api/blogs")
    assert [b["slug"] for b in r.json()["blogs"]] == ["night-race"]
    state = await editor.state("night-race")
    assert state["blog"]["status"] == "ended" and state["seq"] == 2 and state["entries"] == []


async def test_entry_lifecycle_and_order(server: PushhubProcess, editor: Editor) -> None:
    await editor.blog("b")
    first = await editor.publish("b", "first *one*", title="One", author="Ana")
    second = await editor.publish("b", "second")
    third = await editor.publish("b", "third")
    assert [first["seq"], second["seq"], third["seq"]] == [2, 3, 4]
    assert first["entry"]["html"] == "<p>first <em>one</em></p>"
    assert first["entry"]["author"] == "Ana" and second["entry"]["author"] == "Test Editor"
    pinned = await editor.edit("b", first["entry"]["id"], pinned=True)
    assert pinned["seq"] == 5 and pinned["entry"]["pinned"] is True
    edited = await editor.edit("b", second["entry"]["id"], body="second, corrected", key=True)
    assert edited["entry"]["html"] == "<p>second, corrected</p>" and edited["entry"]["key"]
    deleted = await editor.delete("b", third["entry"]["id"])
    assert deleted["seq"] == 7 and deleted["entry"]["id"] == third["entry"]["id"]
    state = await editor.state("b")
    assert state["seq"] == 7
    assert [e["id"] for e in state["entries"]] == [first["entry"]["id"], second["entry"]["id"]]
    r = await editor.http.patch(
        f"/api/blogs/b/entries/{first['entry']['id']}", json={"image": None}
    )
    assert r.status_code == 200 and r.json()["entry"]["image"] is None


async def test_idempotent_retry_returns_first_result(
    server: PushhubProcess, editor: Editor
) -> None:
    await editor.blog("b")
    headers = {"Idempotency-Key": "publish-42"}
    answers = [
        await editor.http.post("/api/blogs/b/entries", json={"body": "once"}, headers=headers)
        for _ in range(3)
    ]
    assert {r.status_code for r in answers} == {201}
    assert len({r.json()["entry"]["id"] for r in answers}) == 1
    assert len({r.json()["seq"] for r in answers}) == 1
    state = await editor.state("b")
    assert len(state["entries"]) == 1 and state["seq"] == 2
    # Concurrent duplicates too: the store decides atomically.
    headers = {"Idempotency-Key": "publish-43"}
    racing = await asyncio.gather(
        *[
            editor.http.post("/api/blogs/b/entries", json={"body": "race"}, headers=headers)
            for _ in range(10)
        ]
    )
    assert len({r.json()["entry"]["id"] for r in racing}) == 1
    assert len((await editor.state("b"))["entries"]) == 2


async def test_concurrent_editors_get_distinct_contiguous_seqs(
    server: PushhubProcess, editor: Editor
) -> None:
    await editor.blog("b")
    target = await editor.publish("b", "shared entry")
    creates = [editor.publish("b", f"entry {i}") for i in range(30)]
    edits = [editor.edit("b", target["entry"]["id"], title=f"title {i}") for i in range(10)]
    results = await asyncio.gather(*creates, *edits)
    seqs = sorted(r["seq"] for r in results)
    assert seqs == list(range(3, 3 + 40))
    last_edit = max(results[30:], key=lambda r: r["seq"])
    state = await editor.state("b")
    shared = next(e for e in state["entries"] if e["id"] == target["entry"]["id"])
    assert shared["title"] == last_edit["entry"]["title"]
    assert len(state["entries"]) == 31 and state["seq"] == 42


def _expired_token() -> str:
    now = int(time.time())
    claims = {"sub": "x", "blogs": ["*"], "iat": now - 100, "exp": now - 10}
    return jwt.encode(claims, TEST_SECRET, algorithm="HS256")


async def test_bad_input_gets_clear_errors_and_changes_nothing(
    server: PushhubProcess, editor: Editor, token: str
) -> None:
    await editor.blog("b")
    entry = (await editor.publish("b", "keep me"))["entry"]
    before = await editor.state("b")
    http = editor.http
    other_blog = issue_token(TEST_SECRET, subject="x", blogs=["other"])
    wrong_key = issue_token("another-secret-another-secret-0123", subject="x")
    cases: list[tuple[httpx.Response, int, str, str | None]] = [
        (await http.post("/api/blogs/b/entries", content=b"{not json"), 422, "invalid", "(body)"),
        (await http.post("/api/blogs/b/entries", json=[1]), 422, "invalid", "(body)"),
        (await http.post("/api/blogs/b/entries", json={}), 422, "invalid", "body"),
        (await http.post("/api/blogs/b/entries", json={"body": 3}), 422, "invalid", "body"),
        (await http.post("/api/blogs/b/entries", json={"body": "x", "bogus": 1}), 422, "invalid", "bogus"),
        (
            await http.post(
                "/api/blogs/b/entries", json={"body": "x", "image": {"url": "javascript:alert(1)"}}
            ),
            422, "invalid", "image.url",
        ),
        (await http.patch(f"/api/blogs/b/entries/{entry['id']}", json={"pinned": "yes"}), 422, "invalid", "pinned"),
        (await http.put("/api/blogs/Bad_Slug", json={"title": "x"}), 422, "invalid", "slug"),
        (await http.put("/api/blogs/b", json={"status": "paused"}), 422, "invalid", "status"),
        (await http.post("/api/blogs/b/entries", json={"body": "x"}, headers={"Authorization": ""}), 401, "unauthorized", None),
        (await http.post("/api/blogs/b/entries", json={"body": "x"}, headers={"Authorization": "Basic abc"}), 401, "unauthorized", None),
        (await http.post("/api/blogs/b/entries", json={"body": "x"}, headers={"Authorization": f"Bearer {_expired_token()}"}), 401, "unauthorized", None),
        (await http.post("/api/blogs/b/entries", json={"body": "x"}, headers={"Authorization": f"Bearer {wrong_key}"}), 401, "unauthorized", None),
        (await http.post("/api/blogs/b/entries", json={"body": "x"}, headers={"Authorization": f"Bearer {other_blog}"}), 403, "forbidden", None),
        (await http.delete(f"/api/blogs/b/entries/{entry['id']}", headers={"Authorization": f"Bearer {other_blog}"}), 403, "forbidden", None),
        (await http.post("/api/blogs/nope/entries", json={"body": "x"}), 404, "not_found", None),
        (await http.patch("/api/blogs/b/entries/zzzzzzzz", json={"title": "x"}), 404, "not_found", None),
        (await http.delete("/api/blogs/b/entries/zzzzzzzz"), 404, "not_found", None),
        (await http.get("/api/blogs/nope"), 404, "not_found", None),
        (await http.post("/api/blogs/b/entries", json={"body": "x" * 300_000}), 413, "too_large", None),
        (await http.post("/api/blogs/b/entries", json={"body": "x"}, headers={"Idempotency-Key": "a b"}), 400, "bad_request", None),
        (await http.get("/api/blogs/b/events?since=abc"), 400, "bad_request", None),
        (await http.get("/api/blogs/b/events?since=1&wait=99"), 400, "bad_request", None),
        (await http.get("/no/such/route"), 404, "not_found", None),
    ]  # fmt: skip
    for response, status, code, field in cases:
        assert response.status_code == status, (response.request.url, response.text)
        assert response.headers["content-type"].startswith("application/json")
        body = response.json()
        assert body["error"] == code and body["message"], body
        if field is not None:
            assert body["field"] == field, body
    after = await editor.state("b")
    assert after == before


async def test_long_poll_waits_for_the_next_event(server: PushhubProcess, editor: Editor) -> None:
    await editor.blog("b")
    head = (await editor.state("b"))["seq"]
    poll = asyncio.create_task(editor.http.get(f"/api/blogs/b/events?since={head}&wait=10"))
    await asyncio.sleep(0.3)
    assert not poll.done()
    published = await editor.publish("b", "news")
    async with asyncio.timeout(5):
        r = await poll
    frames = r.json()["frames"]
    assert [f["seq"] for f in frames] == [published["seq"]]
    assert frames[0]["entry"]["id"] == published["entry"]["id"]
    # Nothing new: an empty answer after the wait.
    r = await editor.http.get(f"/api/blogs/b/events?since={published['seq']}&wait=0.2")
    assert r.json() == {"frames": [], "seq": published["seq"], "epoch": published["epoch"]}
    # No position: one snapshot.
    r = await editor.http.get("/api/blogs/b/events")
    (snapshot,) = r.json()["frames"]
    assert snapshot["type"] == "snapshot" and snapshot["seq"] == published["seq"]


@pytest.mark.parametrize("store_kind", ["redis"])
async def test_store_down_answers_503_and_writes_nothing(
    server: PushhubProcess, editor: Editor, redis_proc: object
) -> None:
    from tests.support.servers import RedisProcess

    assert isinstance(redis_proc, RedisProcess)
    await editor.blog("b")
    kept = await editor.publish("b", "before the outage")
    redis_proc.kill()
    started = time.monotonic()
    r = await editor.http.post("/api/blogs/b/entries", json={"body": "during"})
    assert r.status_code == 503, r.text
    assert r.json()["error"] == "unavailable"
    assert time.monotonic() - started < 8
    r = await editor.http.get("/readyz")
    assert r.status_code == 503
    redis_proc.start()
    async with asyncio.timeout(15):
        while (await editor.http.get("/readyz")).status_code != 200:
            await asyncio.sleep(0.1)
    state = await editor.state("b")
    assert state["seq"] == kept["seq"] and state["epoch"] == kept["epoch"]
    assert [e["id"] for e in state["entries"]] == [kept["entry"]["id"]]
    after = await editor.publish("b", "after")
    assert after["seq"] == kept["seq"] + 1
