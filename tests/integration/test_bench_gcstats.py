"""bench/gcstats.py serves like `pushhub serve` and reports the collector's work on SIGUSR1."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import websockets

from tests.support.servers import free_port, wait_port

ROOT = Path(__file__).resolve().parents[2]


def _lines(path: Path, count: int, timeout: float) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            lines = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
            if len(lines) >= count:
                return lines
        time.sleep(0.05)
    raise AssertionError(f"no {count} report lines in {path} after {timeout}s")


async def _handshakes(port: int, count: int) -> None:
    for _ in range(count):
        # An unknown blog: the server answers the handshake, then closes with 4404.
        with contextlib.suppress(websockets.ConnectionClosed):
            async with (
                asyncio.timeout(10),
                websockets.connect(
                    f"ws://127.0.0.1:{port}/ws/blogs/no-such-blog", close_timeout=1
                ) as ws,
            ):
                await ws.recv()


def test_it_serves_and_counts_collections_between_two_reports(tmp_path: Path) -> None:
    port = free_port()
    out = tmp_path / "gc.jsonl"
    env = {**os.environ, "PUSHHUB_DATA_DIR": str(tmp_path / "data"), "PUSHHUB_LOG_LEVEL": "warning"}
    env.pop("PUSHHUB_REDIS_URL", None)
    log = tmp_path / "server.log"  # a file, not a pipe nobody reads: it can never fill up
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.gcstats", "--out", str(out), "--",
             "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_port(port, timeout=20)
        proc.send_signal(signal.SIGUSR1)
        first = _lines(out, 1, timeout=10)[0]
        # Work that leaves container objects for the collector: each WebSocket handshake
        # leaves a few in reference cycles (uvicorn's protocol and its parser), which only a
        # collection frees; requests whose objects all die by reference count would not.
        asyncio.run(_handshakes(port, 600))
        proc.send_signal(signal.SIGUSR1)
        second = _lines(out, 2, timeout=10)[1]
    except (TimeoutError, AssertionError) as exc:
        raise AssertionError(f"{exc}; the server said:\n{log.read_text()[-3000:]}") from exc
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    assert first["frozen"] > 10_000  # it is the tuned serving process, as `pushhub serve` is
    young = [g["collections"] for g in (first["generations"][0], second["generations"][0])]
    assert young[1] > young[0], "600 handshakes ran no young collection"
    assert second["generations"][0]["total_ms"] > first["generations"][0]["total_ms"]
