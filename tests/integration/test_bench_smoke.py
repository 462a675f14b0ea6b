"""The fan-out benchmark runs end to end at a small N, and its seq checks catch what they claim.

Timings are never asserted: CI shares its cores with everything else.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from bench._loadgen import Load

ROOT = Path(__file__).resolve().parents[2]
READERS, MESSAGES = 20, 5


def run_bench(*extra: str) -> dict[str, Any]:
    cmd = [
        sys.executable, "-m", "bench.fanout", "--readers", str(READERS),
        "--messages", str(MESSAGES), "--rate", "20", "--json", "--wall-limit", "80", *extra,
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=100)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert lines, f"no output (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
    result: dict[str, Any] = json.loads(lines[-1])
    assert proc.returncode == 0, f"{result}\n{proc.stderr[-3000:]}"
    return result


@pytest.mark.parametrize("store", ["embedded", "redis"])
def test_fanout_delivers_every_entry_once_in_order(store: str) -> None:
    result = run_bench(*(["--redis"] if store == "redis" else []))

    assert result["status"] == "ok", result["problems"]
    assert result["store"] == store
    assert result["lost"] == result["dup"] == result["out_of_order"] == 0
    assert result["unexpected_frames"] == result["dropped"] == 0
    assert result["readers_connected"] == READERS
    assert result["delivered"] == result["expected_deliveries"] == READERS * MESSAGES
    assert result["latency_ms"]["count"] == READERS * MESSAGES
    assert result["last_reader_ms"]["count"] == MESSAGES
    assert result["rss_kb"]["before"] > 0 and result["server_cpu_s"] is not None


def frame(seq: int, sent_ns: int = 1) -> bytes:
    body = f"bench {seq} {sent_ns} xxxx"
    return orjson.dumps(
        {"type": "event", "seq": seq, "epoch": "e1", "op": "create", "entry": {"body": body}}
    )


async def test_loadgen_counts_lost_duplicated_and_out_of_order_by_seq() -> None:
    args = argparse.Namespace(readers=2, messages=4)
    load = Load(args)
    snapshot = orjson.dumps({"type": "snapshot", "seq": 10, "epoch": "e1", "entries": []})
    ok, bad = load.readers
    for reader in load.readers:
        load.on_text(reader, snapshot, 0)
    for seq in (11, 12, 13, 14):
        load.on_text(ok, frame(seq), 5)
    # 12 twice, 14 before 13, 15 is past what was published, 11 never comes.
    for seq in (12, 12, 14, 13, 15):
        load.on_text(bad, frame(seq), 5)
    load.done_connecting.set()

    result = load.result()

    assert result["delivered"] == 7
    assert result["lost"] == 1
    assert result["dup"] == 1
    assert result["out_of_order"] == 1
    assert result["unexpected_frames"] == 1
    assert result["last_reader_ms"]["count"] == 3  # 11 never reached every reader
