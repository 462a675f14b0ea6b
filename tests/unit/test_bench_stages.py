"""bench.stages cuts a server's stamps into publishes: which count and which are skipped."""

from __future__ import annotations

from bench.stages import cut, spans_ms

IN_ORDER = ["read", "route", "checked", "commit", "committed", "answered", "event", "fanned"]


def _publish(start: int, stages: list[str] = IN_ORDER) -> list[tuple[str, int]]:
    return [(stage, start + i * 1_000_000) for i, stage in enumerate(stages)]


def test_whole_publishes_are_cut_and_measured() -> None:
    # The pub/sub message may come before the store's answer: both orders count.
    pubsub_first = [
        "read",
        "route",
        "checked",
        "commit",
        "event",
        "fanned",
        "committed",
        "answered",
    ]
    stamps = [
        *_publish(0),
        ("event", 50_000_000),
        ("fanned", 51_000_000),
        *_publish(100_000_000, pubsub_first),
    ]
    publishes, skipped = cut(stamps)
    assert skipped == 0 and len(publishes) == 2
    spans = spans_ms(publishes)
    assert spans["read → route"]["p50"] == 1.0
    assert spans["read → event"]["max"] == 6.0 and spans["read → event"]["mean"] == 5.0
    assert spans["event → fanned"]["count"] == 2


def test_overlapping_incomplete_and_disordered_publishes_are_skipped() -> None:
    overlapping = _publish(0)[:4] + _publish(2_000_000)  # a second read before the first ends
    disordered = _publish(100_000_000, ["read", "checked", "route", *IN_ORDER[3:]])
    unfinished = _publish(200_000_000)[:-1]
    publishes, skipped = cut([*overlapping, *disordered, *unfinished])
    assert len(publishes) == 1 and publishes[0]["read"] == 2_000_000
    assert skipped == 3
