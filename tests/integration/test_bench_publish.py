"""The publish benchmark runs end to end for 1 and 4 editors on both stores, and its reader-side
counting catches a duplicate, a gap and a reordering.

Timings are never asserted: CI shares its cores with everything else.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from bench._firstdelivery import Readers, Tally
from bench.publish import Accepted, delivery_latencies
from tests.support.bench import frame, json_lines, run_module, snapshot

EDITORS = (1, 4)


def run_bench(*extra: str) -> list[dict[str, Any]]:
    lines = json_lines(
        "bench.publish", "--editors", *map(str, EDITORS), "--duration", "2", "--json",
        "--wall-limit", "45", *extra, timeout=110,
    )  # fmt: skip
    assert len(lines) == len(EDITORS), lines
    return lines


@pytest.mark.parametrize("store", ["embedded", "redis"])
def test_publish_bench_delivers_every_accepted_entry_once(store: str) -> None:
    results = run_bench(*(["--redis"] if store == "redis" else []))

    assert [r["editors"] for r in results] == list(EDITORS)
    for result in results:
        assert result["bench"] == "publish" and result["store"] == store
        assert result["status"] == "ok", result["problems"]
        assert result["problems"] == [] and result["errors"] == {}
        assert result["accepted"] > 0 and result["accepted_per_s"] > 0
        assert sum(result["accepted_per_editor"]) == result["accepted"]
        assert len(result["accepted_per_editor"]) == result["editors"]
        assert result["lost"] == result["dup"] == result["out_of_order"] == 0
        assert result["unexpected"] == result["gaps"] == result["mismatched"] == 0
        assert result["first_delivery_ms"]["count"] == result["accepted"]
        assert result["publish_http_ms"]["count"] == result["accepted"]
        assert result["readers"] == result["readers_connected"] == 1
        assert result["server_cpu_ms_per_publish"] is not None
        assert result["server_env"]["PUSHHUB_PUBLISH_RATE"] == "0"
        assert result["pushhub_source"] and result["date"]
        if store == "redis":
            assert result["redis_cpu_s"] is not None


def test_bad_arguments_exit_2() -> None:
    proc = run_module("bench.publish", "--editors", "0", timeout=30)
    assert proc.returncode == 2, proc.stderr


# -- the counting, without a server ------------------------------------------------------------


def test_tally_counts_duplicates_gaps_reordering_and_strays() -> None:
    tally = Tally(base=10)
    # 12 twice, 14 before 13, 10 is in the snapshot already, 16 never comes, 18 was never
    # accepted (a write answered with an error that happened anyway).
    for seq in (11, 12, 12, 14, 13, 10, 15, 17, 18):
        tally.add(seq, 0)

    counts = tally.counts(range(11, 18))

    assert counts.dup == 2
    assert counts.out_of_order == 1
    assert counts.lost == 1  # 16
    assert counts.gaps == 1  # 16, between the snapshot and the newest seq received
    assert counts.unexpected == 1  # 18


def test_tally_of_a_clean_stream_counts_nothing() -> None:
    tally = Tally(base=3)
    for seq in range(4, 104):
        assert tally.add(seq, seq)
    counts = tally.counts(range(4, 104))
    assert (counts.lost, counts.dup, counts.out_of_order, counts.unexpected, counts.gaps) == (
        0, 0, 0, 0, 0,
    )  # fmt: skip


async def test_readers_count_frames_by_seq_and_time_the_first_arrival() -> None:
    readers = Readers(2)
    ok, bad = readers.readers
    for reader in (ok, bad):
        readers.on_text(reader, snapshot(10), 0)
    sent = {11: 1_000, 12: 2_000, 13: 3_000}
    for seq in (11, 12, 13):
        readers.on_text(ok, frame(seq, seq - 11, sent[seq]), sent[seq] + 500)
    # A duplicate of 11, then 13 with 12 missing.
    for seq in (11, 11, 13):
        readers.on_text(bad, frame(seq, seq - 11, sent[seq]), sent[seq] + 900)
    readers.on_text(bad, orjson.dumps({"type": "pong"}), 0)
    readers.expect([11, 12, 13])
    assert not readers.complete.is_set()  # `bad` still lacks 12

    result = readers.result()

    assert result["readers_connected"] == 2
    assert (result["lost"], result["dup"], result["out_of_order"], result["gaps"]) == (1, 1, 0, 1)
    assert result["unexpected_frames"] == 1 and result["bad_frames"] == 1
    accepted = [Accepted(seq, seq - 11, sent[seq]) for seq in (11, 12, 13)]
    first_ms, all_ms, mismatched = delivery_latencies(accepted, result)
    assert first_ms == [0.0005, 0.0005, 0.0005]  # the first reader's arrival, not the last's
    assert len(all_ms) == 2  # 12 never reached both readers
    assert mismatched == 0
    # A seq whose frame carried another entry's body is caught.
    swapped = [Accepted(11, 1, sent[12]), *accepted[1:]]
    assert delivery_latencies(swapped, result)[2] == 1


async def test_readers_drain_completes_when_the_last_expected_seq_arrives() -> None:
    readers = Readers(1)
    (reader,) = readers.readers
    readers.on_text(reader, snapshot(0), 0)
    readers.on_text(reader, frame(1, 0, 1), 2)
    readers.expect([1, 2])
    assert not readers.complete.is_set()
    readers.on_text(reader, frame(2, 1, 1), 3)
    assert readers.complete.is_set()
