"""The worker-scaling benchmark runs end to end at a small N, with 1 and 2 workers on Redis.

Timings are never asserted: CI shares its cores with everything else.
"""

from __future__ import annotations

from tests.support.bench import json_lines

READERS, MESSAGES = 30, 5


def test_scale_delivers_every_entry_once_in_order_with_one_and_two_workers() -> None:
    results = json_lines(
        "bench.scale", "--readers", str(READERS), "--messages", str(MESSAGES),
        "--workers", "1", "2", "--json", "--wall-limit", "80", timeout=200,
    )  # fmt: skip

    assert [r["workers"] for r in results] == [1, 2]
    for result in results:
        assert result["status"] == "ok", result.get("problems") or result.get("error")
        assert result["lost"] == result["dup"] == result["out_of_order"] == 0
        assert result["delivered"] == result["expected_deliveries"] == READERS * MESSAGES
        # Every reader's last frame has a kernel receive time, after the first publish.
        assert result["stamped"] == READERS
        assert result["reader_done_ms"]["count"] == READERS
        assert result["finish_s"] > 0 and result["deliveries_per_s"] > 0
        # The readers are held by the workers, and all of them are counted.
        assert sum(result["readers_per_process"]) == READERS
        # The ceiling the ratio is read against, measured in the same run.
        assert result["machine_scaling"]["processes"] == 2
        assert result["machine_scaling"]["ratio"] > 0
    one, two = results
    assert one["readers_per_process"] == [READERS]
    assert len([n for n in two["readers_per_process"] if n]) <= 2
