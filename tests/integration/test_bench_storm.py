"""The reconnect-storm benchmark runs end to end at a small N, and its resume checks catch what
they claim.

Timings are never asserted: CI shares its cores with everything else.
"""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from bench._loadgen import Load
from bench._storm_load import Storm
from bench._storm_redis import RedisSample, parse_commandstats, window
from tests.support.bench import frame, json_lines, run_module, snapshot

READERS, BACKLOG, MISSED = 20, 5, 5


def run_storm(*extra: str) -> dict[str, Any]:
    return json_lines(
        "bench.storm", "--readers", str(READERS), "--backlog", str(BACKLOG),
        "--missed", str(MISSED), "--json", "--wall-limit", "80", *extra, timeout=100,
    )[-1]  # fmt: skip


@pytest.mark.parametrize("store", ["embedded", "redis"])
def test_storm_every_reader_resumes_with_exactly_what_it_missed(store: str) -> None:
    result = run_storm(*(["--redis"] if store == "redis" else []))

    assert result["status"] == "ok", result["problems"]
    assert result["bench"] == "storm" and result["store"] == store
    assert result["lost"] == result["dup"] == result["out_of_order"] == result["resets"] == 0
    assert result["unexpected_frames"] == result["failed"] == 0
    assert result["caught_up"] == READERS
    assert result["catch_up_ms"]["count"] == result["handshake_ms"]["count"] == READERS
    assert result["all_caught_up_ms"] == result["catch_up_ms"]["max"]
    assert result["since_seqs"] == [result["head_at_resume"] - MISSED]
    assert result["server_cpu_s"] is not None
    if store == "redis":
        # The node keeps the blog warm: a resume is answered from memory, not from Redis.
        assert result["redis_commands"] == 0, result["redis_by_command"]
        assert result["redis_commands_per_reconnect"] == 0
    else:
        assert result["redis_commands"] is None


def test_storm_rejects_bad_arguments() -> None:
    proc = run_module("bench.storm", "--readers", "0", "--pid", "1", timeout=30)

    assert proc.returncode == 2, proc.stderr
    assert "--readers" in proc.stderr and "--pid" in proc.stderr


# -- the counting, without a server ------------------------------------------------------------


async def test_storm_counts_duplicates_gaps_disorder_and_resets_by_seq() -> None:
    # Five readers hold seqs 10 (snapshot) and 11..12 (backlog), then miss 13..15.
    load = Load(argparse.Namespace(readers=5, messages=2))
    for reader in load.readers:
        load.on_text(reader, snapshot(10, reset=False), 0)
        for seq in (11, 12):
            load.on_text(reader, frame(seq), 1)
    storm = Storm(load)
    storm.prepare(missed=3)
    ok, dup, gap, disorder, reset = storm.resumes
    assert [r.since for r in storm.resumes] == [12] * 5

    for seq in (13, 14, 15):
        storm.on_text(ok, frame(seq), 2)
    # 12 is what it already held; 14 comes twice.
    for seq in (12, 13, 14, 14, 15):
        storm.on_text(dup, frame(seq), 2)
    for seq in (13, 15):  # 14 never comes
        storm.on_text(gap, frame(seq), 2)
    for seq in (13, 15, 14):
        storm.on_text(disorder, frame(seq), 2)
    storm.on_text(reset, snapshot(15, reset=True), 2)

    result = storm.result(timed_out=False)

    assert result["caught_up"] == 3  # ok, dup and disorder hold all three
    assert result["lost"] == 1
    assert result["dup"] == 2
    assert result["out_of_order"] == 1
    assert result["resets"] == 1
    assert result["all_caught_up_ms"] is None  # not everyone caught up
    assert not storm.all_settled.is_set()  # the gap reader is still waiting for 14
    storm.on_closed(gap, "connection lost")
    assert storm.all_settled.is_set()
    errors = storm.result(timed_out=False)["errors"]
    assert errors == {"closed before catching up: connection lost": 1}


async def test_storm_resumes_from_the_last_seq_held_without_a_hole() -> None:
    load = Load(argparse.Namespace(readers=1, messages=3))
    (reader,) = load.readers
    load.on_text(reader, snapshot(10, reset=False), 0)
    for seq in (11, 13):  # 12 was lost: resuming from 13 would skip it for good
        load.on_text(reader, frame(seq), 1)
    storm = Storm(load)
    storm.prepare(missed=2)

    assert storm.resumes[0].since == 11


def test_redis_window_leaves_out_the_benchmarks_own_info_calls() -> None:
    text = "# Commandstats\r\ncmdstat_info:calls=7,usec=1\r\ncmdstat_mget:calls=3,usec=2\r\n"
    before = RedisSample(sent_before=4, calls=parse_commandstats(text), cpu_s=1.0)
    after_text = text.replace("calls=7", "calls=9").replace("calls=3", "calls=4")
    after = RedisSample(sent_before=6, calls=parse_commandstats(after_text), cpu_s=1.5)

    counted = window(before, after)

    assert counted.by_command == {"mget": 1}
    assert counted.total == 1 and counted.own_info == 2 and counted.cpu_s == 0.5
