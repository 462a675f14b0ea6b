"""bench.stages runs end to end: its stamped server (bench/_stamped.py, which reaches into
uvicorn) still stamps every stage of every publish. No time is asserted."""

from __future__ import annotations

import pytest

from tests.support.bench import json_lines


@pytest.mark.parametrize("store", ["embedded", "redis"])
def test_stages_cuts_every_publish(store: str) -> None:
    extra = ["--redis"] if store == "redis" else []
    (result,) = json_lines(
        "bench.stages", "--readers", "20", "--messages", "12", "--rate", "5", "--json", *extra,
        timeout=150,
    )  # fmt: skip
    assert result["status"] == "ok", result["problems"]
    assert result["store"] == store and result["lost"] == 0
    # Every publish stamped each stage once, in order: none was skipped at 5/s.
    assert (result["publishes"], result["skipped"]) == (12, 0)
    assert all(s["count"] == 12 and s["p50"] >= 0 for s in result["spans_ms"].values())
