"""The soak (bench/soak.py) runs end to end in a short version with every fault once, and its
checks catch what they claim.

Timings are never asserted: CI shares its cores with everything else. Only what must hold under
any load is: nothing acknowledged lost, duplicated or out of order, every reader equal to the
server at the end, and every fault carried out.
"""

from __future__ import annotations

from collections import Counter

from bench.soak_check import FinalState, check_reader, check_store, verdict
from bench.soak_clients import Attempt, Parsed, ReaderRecord, Write
from tests.support.bench import json_lines

FAULTS = ["slow-readers", "redis-kill", "redis-freeze", "node-kill", "node-term"]
READERS = 20


def test_short_soak_with_every_fault_loses_nothing() -> None:
    # The schedule shrinks with --duration; shorter stalls keep the whole run near 40 s.
    report = json_lines(
        "bench.soak", "--duration", "15", "--readers", str(READERS), "--editors", "2",
        "--slow-pause", "4", "--freeze", "5", "--rows", "notable", "--json", "--wall-limit", "100",
        timeout=130,
    )[-1]  # fmt: skip

    assert report["status"] == "ok" and report["problems"] == []
    assert report["acknowledged"] > 0
    assert report["lost"] == report["dup"] == report["out_of_order"] == 0
    assert [f["fault"] for f in report["faults"]] == FAULTS
    assert [f["failed"] for f in report["faults"]] == [""] * len(FAULTS)
    assert report["totals"]["readers_equal_to_server"] == READERS
    assert report["final"]["nodes_agree"]
    assert len(report["readers"]) == READERS
    assert all(r["lost"] == r["duplicated"] == r["out_of_order"] == 0 for r in report["readers"])


# -- the checks themselves, on made-up runs ----------------------------------------------------


def event(seq: int, entry_id: str, op: str = "create", epoch: str = "e1") -> Parsed:
    return Parsed(
        "event",
        seq,
        epoch,
        op=op,
        entry_id=entry_id,
        title=f"k-{entry_id}",
        entry=b"d" + bytes([seq]),
    )


def snapshot(seq: int, ids: list[str], reset: bool = False, epoch: str = "e1") -> Parsed:
    return Parsed(
        "snapshot", seq, epoch, reset=reset, blog=b"blog",
        entries={i: b"x" for i in ids}, titles=frozenset(f"k-{i}" for i in ids),
    )  # fmt: skip


def acked(seq: int, entry_id: str, op: str = "create", at: float = 1.0) -> Write:
    w = Write(f"k-{entry_id}", "e0", op, started=at, entry_id=entry_id)
    w.acked, w.seq, w.epoch, w.finished = True, seq, "e1", at
    w.attempts.append(Attempt(at, "A", "201"))
    return w


def test_reader_record_counts_duplicates_and_breaks_on_gaps_and_foreign_epochs() -> None:
    rec = ReaderRecord(0, "A")
    assert rec.apply(snapshot(1, []), 0.0)
    assert rec.apply(event(2, "a"), 0.1)
    assert rec.apply(event(2, "a"), 0.2)  # the same seq again: counted, skipped
    assert rec.dup == 1 and rec.seq == 2
    assert not rec.apply(event(4, "c"), 0.3)  # 3 never came: resume from 2
    assert rec.out_of_order == 1 and rec.seq == 2
    assert not rec.apply(event(3, "b", epoch="e2"), 0.4)
    assert rec.out_of_order == 2
    assert rec.apply(event(3, "b"), 0.5)
    assert rec.apply(Parsed("event", 4, "e1", op="create", entry_id="z", title="k-a"), 0.6)
    assert rec.dup_publish == 1  # a second entry for publish key k-a
    assert rec.received["e1"].keys() == {2, 3, 4}


def test_check_reader_finds_lost_wrong_and_snapshot_covered_changes() -> None:
    writes = [acked(2, "a"), acked(3, "b"), acked(4, "c"), acked(5, "d")]
    final = FinalState(5, "e1", {}, b"blog", Counter())
    rec = ReaderRecord(7, "B")
    rec.apply(snapshot(1, []), 0.0)
    rec.apply(event(2, "a"), 1.5)
    # Seq 3 and 4 arrive inside a reset snapshot; 4's entry is not in it, so 4 is lost.
    rec.apply(snapshot(4, ["a", "b"], reset=True), 2.0)
    rec.apply(event(5, "other"), 2.5)  # seq 5 carried another change than the one acknowledged

    result = check_reader(rec, writes, final)

    assert (result.seen, result.via_snapshot, result.lost) == (1, 1, 2)
    assert result.resets == 1 and result.at_head and not result.final_equal
    assert result.max_delay_s == 1.0
    problems = verdict(
        [result], check_store(writes, final, ["e1"]), nodes_agree=True, faults_failed=0
    )
    assert any("lost" in p for p in problems)


def test_a_reset_snapshot_after_a_reused_seq_brings_the_acknowledged_change() -> None:
    # The store lost seq 2 ("a") and gave the seq to "b"; the reader saw "a", then a reset.
    writes = [acked(2, "b", at=1.0)]
    rec = ReaderRecord(1, "A")
    rec.apply(snapshot(1, []), 0.0)
    rec.apply(event(2, "a"), 0.5)
    rec.apply(snapshot(2, ["b"], reset=True), 3.0)

    result = check_reader(rec, writes, FinalState(2, "e1", {"b": b"x"}, b"blog", Counter()))

    assert (result.seen, result.via_snapshot, result.lost) == (0, 1, 0)
    assert result.final_equal and result.max_delay_s == 2.0


def test_check_store_finds_missing_duplicated_and_applied_despite_an_error() -> None:
    a, b = acked(2, "a"), acked(3, "b", at=2.0)
    # c got a 503 at t=1; its retry at t=3 came back with seq 1, below the seq 2 that a was
    # acknowledged with at t=1: so the try that got the 503 had been applied.
    c = Write("k-c", "e1", "create", started=1.0, entry_id="c")
    c.attempts = [Attempt(1.0, "A", "503"), Attempt(3.0, "B", "201")]
    c.acked, c.seq, c.epoch, c.finished = True, 1, "e1", 3.0
    refused = Write("k-r", "e1", "create", started=1.0, error="503")
    final = FinalState(3, "e1", {"a": b"x", "c": b"x"}, b"blog", Counter({"k-a": 2, "k-r": 1}))

    store = check_store([a, b, c, refused], final, ["e1"])

    assert store.missing == ["k-b"]
    assert store.duplicate_publishes == ["k-a"]
    assert store.refused_but_written == ["k-r"]
    assert store.applied_despite == Counter({"503": 1})
    problems = verdict([], store, nodes_agree=False, faults_failed=1)
    assert len(problems) == 4
