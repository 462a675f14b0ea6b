"""Limits and abuse: per-address connection caps and rates, node capacity, publish rate,
request sizes, token revocation. Each refusal is clear and changes nothing for others."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.support.api import Editor
from tests.support.readers import WsReader
from tests.support.servers import PushhubProcess


def _node(tmp_path: Path, **env: str) -> PushhubProcess:
    return PushhubProcess(
        tmp_path / "n", extra_env={f"PUSHHUB_{k.upper()}": v for k, v in env.items()}
    )


async def _status_of_ws(url: str, **kwargs: Any) -> int:
    try:
        async with websockets.connect(url, open_timeout=5, **kwargs):
            return 101
    except websockets.InvalidStatus as exc:
        return exc.response.status_code


async def test_per_address_connection_cap(tmp_path: Path, token: str) -> None:
    node = _node(tmp_path, ip_max_connections="3").start()
    editor = Editor(node.url, token)
    try:
        await editor.blog("b")
        readers = [await WsReader(node.ws_url, "b").connect() for _ in range(2)]
        async with (
            httpx.AsyncClient(timeout=5) as client,
            client.stream("GET", f"{node.url}/sse/blogs/b") as sse,
        ):
            assert sse.status_code == 200
            assert await _status_of_ws(f"{node.ws_url}/ws/blogs/b") == 429
            r = await client.get(f"{node.url}/sse/blogs/b")
            assert r.status_code == 429 and r.json()["error"] == "rate_limited"
            assert int(r.headers["retry-after"]) >= 1
        await readers[0].close()
        await asyncio.sleep(0.3)  # the server sees both departures
        again = await WsReader(node.ws_url, "b").connect()
        await again.recv()
        published = await editor.publish("b", "everyone admitted still gets this")
        for r in (readers[1], again):
            await r.until_seq(published["seq"])
            await r.close()
    finally:
        await editor.aclose()
        node.kill()


# A second loopback address plays the load balancer in front of the node.
PROXY = "127.0.0.2"


def _via_proxy(reader: str) -> dict[str, Any]:
    """websockets.connect arguments for a reader at `reader` reaching the node through PROXY."""
    return {"additional_headers": {"X-Forwarded-For": reader}, "local_addr": (PROXY, 0)}


async def test_behind_a_trusted_proxy_limits_count_readers_and_links_keep_https(
    tmp_path: Path, token: str
) -> None:
    node = _node(tmp_path, ip_max_connections="2", forwarded_allow_ips=PROXY).start()
    editor = Editor(node.url, token)
    url = f"{node.ws_url}/ws/blogs/b"
    try:
        await editor.blog("b")
        # Through the proxy each reader has its own budget, not one shared by all behind it.
        alice = [await WsReader(node.ws_url, "b").connect(**_via_proxy("203.0.113.7"))]
        alice.append(await WsReader(node.ws_url, "b").connect(**_via_proxy("203.0.113.7")))
        assert await _status_of_ws(url, **_via_proxy("203.0.113.7")) == 429
        bob = await WsReader(node.ws_url, "b").connect(**_via_proxy("198.51.100.9"))
        proxied = httpx.AsyncHTTPTransport(local_address=PROXY)
        async with httpx.AsyncClient(timeout=5, transport=proxied) as client:
            r = await client.get(
                f"{node.url}/sse/blogs/b", headers={"X-Forwarded-For": "203.0.113.7"}
            )
            assert r.status_code == 429 and r.json()["error"] == "rate_limited"
            headers = {"X-Forwarded-For": "198.51.100.9"}
            async with client.stream("GET", f"{node.url}/sse/blogs/b", headers=headers) as sse:
                assert sse.status_code == 200  # bob's second connection: within his budget
            tls = {"X-Forwarded-Proto": "https"}  # the proxy took TLS off: links say https
            page = await client.get(f"{node.url}/blogs/b", headers=tls)
            assert f'rel="canonical" href="https://{node.url.split("://")[1]}/blogs/b"' in page.text
        async with httpx.AsyncClient(timeout=5) as client:
            page = await client.get(f"{node.url}/blogs/b", headers=tls)
            assert f'rel="canonical" href="{node.url}/blogs/b"' in page.text
        # Straight from a client, the header is only the client's word: ignored, so these two
        # use up 127.0.0.1's budget whatever addresses they claim.
        claim = [{"additional_headers": {"X-Forwarded-For": f"192.0.2.{i}"}} for i in (1, 2, 3)]
        direct = [await WsReader(node.ws_url, "b").connect(**c) for c in claim[:2]]
        assert await _status_of_ws(url, **claim[2]) == 429
        published = await editor.publish("b", "everyone admitted gets this")
        for reader in (*alice, bob, *direct):
            await reader.until_seq(published["seq"])
            await reader.close()
    finally:
        await editor.aclose()
        node.kill()


async def test_connect_rate_and_node_capacity(tmp_path: Path, token: str) -> None:
    node = _node(tmp_path, ip_connect_rate="1", ip_connect_burst="3", max_readers="100").start()
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            await client.put(
                f"{node.url}/api/blogs/b",
                json={"title": "b"},
                headers={"Authorization": f"Bearer {token}"},
            )
        statuses = [await _status_of_ws(f"{node.ws_url}/ws/blogs/b") for _ in range(6)]
        assert statuses[:3] == [101, 101, 101] and 429 in statuses[3:]
    finally:
        node.kill()
    full = PushhubProcess(tmp_path / "full", extra_env={"PUSHHUB_MAX_READERS": "2"}).start()
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            await client.put(
                f"{full.url}/api/blogs/b",
                json={"title": "b"},
                headers={"Authorization": f"Bearer {token}"},
            )
        held = [await WsReader(full.ws_url, "b").connect() for _ in range(2)]
        assert await _status_of_ws(f"{full.ws_url}/ws/blogs/b") == 503
        async with httpx.AsyncClient(timeout=5) as client:
            r = await client.get(f"{full.url}/sse/blogs/b")
            assert r.status_code == 503 and r.json()["error"] == "overloaded"
            assert (await client.get(f"{full.url}/healthz")).status_code == 200
        for r in held:
            await r.close()
    finally:
        full.kill()


async def test_publish_rate_per_token(tmp_path: Path, token: str) -> None:
    node = _node(tmp_path, publish_rate="0.5", publish_burst="3").start()
    editor = Editor(node.url, token)
    try:
        await editor.blog("b")
        answers = [
            await editor.http.post("/api/blogs/b/entries", json={"body": f"{i}"}) for i in range(4)
        ]
        assert [a.status_code for a in answers] == [201, 201, 429, 429]
        assert answers[2].json()["error"] == "rate_limited"
        assert int(answers[2].headers["retry-after"]) >= 1
        assert len((await editor.state("b"))["entries"]) == 2
    finally:
        await editor.aclose()
        node.kill()


async def test_request_size_limits(server: PushhubProcess) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=5) as client:
        r = await client.get("/api/blogs", params={"q": "x" * 3000})
        assert r.status_code == 414 and r.json()["error"] == "bad_request"
        r = await client.get("/api/blogs", headers={"X-Junk": "y" * 20_000})
        assert r.status_code == 431
        r = await client.get("/healthz")
        assert r.headers["x-content-type-options"] == "nosniff"
    assert await _status_of_ws(f"{server.ws_url}/ws/blogs/b?since=1&pad={'x' * 3000}") == 414


def _cli(node: PushhubProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pushhub", "token", *args],
        env=node.env(), capture_output=True, text=True, timeout=30,
    )  # fmt: skip


@pytest.mark.parametrize("store_kind", ["embedded", "redis"])
async def test_revoked_token_is_refused_everywhere(server: PushhubProcess) -> None:
    made = _cli(server, "create", "--sub", "Leaky Editor", "--ttl", "1h")
    assert made.returncode == 0, made.stderr
    leaked = made.stdout.strip()
    editor = Editor(server.url, leaked)
    try:
        await editor.blog("b")
        await editor.publish("b", "before")
        revoked = _cli(server, "revoke", leaked)
        assert revoked.returncode == 0 and revoked.stdout.startswith("revoked "), revoked.stderr
        r = await editor.http.post("/api/blogs/b/entries", json={"body": "after"})
        assert r.status_code == 401 and "revoked" in r.json()["message"]
        assert len((await editor.state("b"))["entries"]) == 1
        bad = _cli(server, "revoke", "not.a.token")
        assert bad.returncode == 2 and "Traceback" not in bad.stderr
    finally:
        await editor.aclose()
