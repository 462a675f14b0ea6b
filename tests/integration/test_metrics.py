"""GET /metrics on a real server: Prometheus text that follows readers, events and refusals."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import websockets
from prometheus_client.parser import text_string_to_metric_families

from tests.support.api import Editor
from tests.support.readers import WsReader
from tests.support.servers import PushhubProcess


async def _scrape(
    client: httpx.AsyncClient,
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = await client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


async def _until(
    client: httpx.AsyncClient, name: str, labels: dict[str, str], value: float
) -> None:
    key = (name, tuple(sorted(labels.items())))
    async with asyncio.timeout(10):
        while (await _scrape(client)).get(key) != value:
            await asyncio.sleep(0.05)


async def test_metrics_follow_readers_events_and_refusals(tmp_path: Path, token: str) -> None:
    node = PushhubProcess(tmp_path / "n", extra_env={"PUSHHUB_MAX_READERS": "3"}).start()
    editor = Editor(node.url, token)
    try:
        async with httpx.AsyncClient(base_url=node.url, timeout=5) as client:
            m = await _scrape(client)
            assert m[("pushhub_readers", (("transport", "websocket"),))] == 0
            assert m[("pushhub_events_total", ())] == 0
            assert m[("process_resident_memory_bytes", ())] > 0

            await editor.blog("m")
            readers = [await WsReader(node.ws_url, "m").connect() for _ in range(2)]
            for r in readers:
                await r.recv()  # the snapshot: attached
            async with client.stream("GET", "/sse/blogs/m") as sse:
                assert sse.status_code == 200
                await _until(client, "pushhub_readers", {"transport": "sse"}, 1)
                m = await _scrape(client)
                assert m[("pushhub_readers", (("transport", "websocket"),))] == 2
                assert m[("pushhub_blogs_live", ())] == 1
                # The node holds 3 readers at most: the fourth is refused and counted.
                try:
                    async with websockets.connect(f"{node.ws_url}/ws/blogs/m", open_timeout=5):
                        raise AssertionError("a fourth reader was let in")
                except websockets.InvalidStatus as exc:
                    assert exc.response.status_code == 503
                for i in range(3):
                    await editor.publish("m", f"entry {i}")
                for r in readers:
                    await r.until_seq(4)  # the blog, then three entries
                m = await _scrape(client)
                assert m[("pushhub_events_total", ())] == 3
                assert m[("pushhub_deliveries_total", ())] == 9  # 3 events x 3 readers
                assert m[("pushhub_writes_total", ())] == 4
                assert m[("pushhub_readers_refused_total", (("reason", "node_full"),))] == 1
            bad = await client.post("/api/blogs/m/entries", json={"body": "x"})
            assert bad.status_code == 401
            assert (await client.get("/no/such/page")).status_code == 404
            m = await _scrape(client)
            assert m[("pushhub_http_errors_total", (("error", "unauthorized"),))] == 1
            assert m[("pushhub_http_errors_total", (("error", "not_found"),))] == 1
            assert m[("pushhub_writes_total", ())] == 4
            for r in readers:
                await r.close()
            await _until(client, "pushhub_readers", {"transport": "websocket"}, 0)
            await _until(client, "pushhub_readers", {"transport": "sse"}, 0)
    finally:
        await editor.aclose()
        node.kill()
