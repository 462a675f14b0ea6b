"""The per-request CPU benchmark runs end to end against a server it starts. No time is
asserted: CI shares its cores with everything else."""

from __future__ import annotations

from tests.support.bench import json_lines


def test_requestcpu_measures_every_endpoint() -> None:
    (result,) = json_lines(
        "bench.requestcpu", "--requests", "20", "--warmup", "2", "--gap", "0", "--json",
        timeout=120,
    )  # fmt: skip

    assert result["status"] == "ok"
    assert result["store"] == "embedded"
    per = result["server_cpu_us_per_request"]
    assert list(per) == [
        "idle", "GET /healthz", "GET /api/blogs/{blog}", "POST /api/blogs/{blog}/entries"
    ]  # fmt: skip
    assert all(us >= 0 for us in per.values())
    # 22 publishes went through: a refused one would have failed the run.
    assert result["requests"] == 20 and result["warmup"] == 2
