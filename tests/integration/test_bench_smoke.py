"""The fan-out benchmark runs end to end at a small N, and its seq checks catch what they claim.

Timings are never asserted: CI shares its cores with everything else.
"""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from bench._loadgen import Load
from tests.support.bench import frame, json_lines, snapshot

READERS, MESSAGES = 20, 5


def run_bench(*extra: str) -> dict[str, Any]:
    return json_lines(
        "bench.fanout", "--readers", str(READERS), "--messages", str(MESSAGES), "--rate", "20",
        "--json", "--wall-limit", "80", *extra, timeout=100,
    )[-1]  # fmt: skip


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


async def test_loadgen_counts_lost_duplicated_and_out_of_order_by_seq() -> None:
    args = argparse.Namespace(readers=2, messages=4)
    load = Load(args)
    ok, bad = load.readers
    for reader in load.readers:
        load.on_text(reader, snapshot(10), 0)
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
