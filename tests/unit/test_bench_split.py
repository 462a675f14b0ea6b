"""bench.split: which lines are runs, and how their CPU is split per event and per reader."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench.split import Run, main, run_of, split


def _loadgen(peer: str, n: int, cpu_s: float | None, m: int = 50, **extra: Any) -> dict[str, Any]:
    line = {"tool": "loadgen.js", "status": "ok", "peer": peer, "label": "rep1", "n": n, "m": m}
    return line | {"server_cpu_s": {"connect": 0.1, "publish": cpu_s}} | extra


def test_lines_are_read_as_runs_of_the_right_server() -> None:
    assert run_of(_loadgen("nchan", 1000, 0.4)) == Run("nchan", 1000, 8.0)
    assert run_of(_loadgen("raw", 1, 0.02, m=100, label="rep2 floor")) == Run("floor", 1, 0.2)
    assert run_of(_loadgen("raw", 1, 0.02, m=100)) == Run("raw", 1, 0.2)
    fanout = {
        "bench": "fanout",
        "store": "redis",
        "readers": 10,
        "messages": 4,
        "server_cpu_s": 0.01,
    }
    assert run_of(fanout) == Run("pushhub (bench.fanout, redis)", 10, 2.5)


@pytest.mark.parametrize(
    "line",
    [
        _loadgen("nchan", 1000, 0.4, status="error"),
        _loadgen("nchan", 1000, 0.4, storm={"n": 1000}),
        _loadgen("nchan", 1000, None),
        {"bench": "storm", "readers": 10, "messages": 4, "server_cpu_s": 0.01},
        {"bench": "publish", "editors": 1},
        {"readers": 10, "server_cpu_s": 0.01},
        {"tool": "loadgen.js", "status": "ok", "peer": "nchan", "server_cpu_s": {"publish": 1}},
    ],
    ids=["failed", "storm", "no-cpu", "bench.storm", "bench.publish", "no-messages", "no-n"],
)
def test_lines_that_are_not_fan_out_runs_are_skipped(line: dict[str, Any]) -> None:
    assert run_of(line) is None


def test_the_per_event_part_comes_from_one_reader_and_the_rest_is_per_reader() -> None:
    runs = [
        Run("a", 1, 2.0), Run("a", 1, 3.0), Run("a", 1, 2.5),  # per event: 2.5 ms
        Run("a", 1000, 10.5), Run("a", 1000, 9.5), Run("a", 1000, 12.5),  # 8, 7, 10 µs
        Run("a", 5000, 42.5),  # 8 µs
        Run("b", 1000, 8.0),  # no one-reader runs: left out
    ]  # fmt: skip
    [a] = split(runs)
    assert a.server == "a"
    assert a.one_reader_runs == 3
    assert a.ms_per_event == 2.5
    assert {n: (runs, round(us, 6)) for n, (runs, us) in a.us_per_reader.items()} == {
        1000: (3, 8.0),
        5000: (1, 8.0),
    }


def test_main_prints_a_table_and_fails_without_one_reader_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "runs.jsonl"
    lines = [_loadgen("nchan", 1, 0.02, m=100), _loadgen("nchan", 1000, 0.4)]
    results.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    assert main([str(results)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("| server | CPU ms per event")
    assert out[2] == "| nchan | 0.20 (1) | 7.8 (1) |"

    only_big = tmp_path / "big.jsonl"
    only_big.write_text(json.dumps(lines[1]) + "\n")
    assert main([str(only_big)]) == 1
    assert "nothing to split" in capsys.readouterr().err

    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(lines[0]) + "\n{not json\n")
    assert main([str(broken)]) == 2
    assert f"{broken}:2" in capsys.readouterr().err
