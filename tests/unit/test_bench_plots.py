"""bench.plots: benchmark JSON lines to series (pure), and PNG files from the committed results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench._plot_series import (
    Point,
    config_label,
    footnote,
    path,
    peer_label,
    publish_label,
    ratio,
    readers,
    series,
    split,
    storm_all_caught_up_ms,
    storm_cpu_ms_per_reconnect,
    storm_label,
)

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def fanout(readers: int, p99: float, **extra: Any) -> dict[str, Any]:
    line: dict[str, Any] = {
        "bench": "fanout", "status": "ok", "store": "embedded", "workers": 1, "deflate": False,
        "client": "lean", "server_env": {}, "readers": readers, "latency_ms": {"p50": 1.0, "p99": p99},
        "date": "2026-11-25T14:14:19Z", "git": "f06c37f", "python": "3.11.7",
    }  # fmt: skip
    line.update(extra)
    return line


def peer(name: str, n: int, cpu: float, **extra: Any) -> dict[str, Any]:
    line: dict[str, Any] = {
        "tool": "loadgen.js", "status": "ok", "peer": name, "n": n, "deflate_offered": False,
        "server_cpu_us_per_delivery": cpu, "latency_ms": {"p99": 10.0}, "mem_per_conn_kb": 4.0,
        "date": "2026-11-25T14:50:01.481Z", "node": "v20.20.2", "label": "rep1 loadavg=0.77 1.04 3.32 ",
    }  # fmt: skip
    line.update(extra)
    return line


def test_repeated_runs_fold_into_median_with_min_max_spread() -> None:
    lines = [fanout(1000, 90.0), fanout(1000, 70.0), fanout(1000, 300.0), fanout(100, 60.0)]
    got = series(lines, config_label, readers, path("latency_ms.p99"))
    assert got == {"embedded": [Point(100, 60.0, 60.0, 60.0, 1), Point(1000, 90.0, 70.0, 300.0, 3)]}


def test_configurations_are_separate_series() -> None:
    lines = [
        fanout(1000, 1.0),
        fanout(1000, 2.0, store="redis"),
        fanout(1000, 3.0, server_env={"PUSHHUB_WIRE": "asgi"}),
        fanout(1000, 4.0, store="redis", workers=4, deflate=True),
    ]
    got = series(lines, config_label, readers, path("latency_ms.p99"))
    assert sorted(got) == ["embedded", "embedded, wire=asgi", "redis", "redis, 4 workers, deflate"]


def test_settings_every_harness_run_sets_are_not_part_of_the_label() -> None:
    env = {"PUSHHUB_PUBLISH_RATE": "0", "PUSHHUB_WATCHDOG_INTERVAL": "600"}
    assert config_label(fanout(1, 1.0, store="redis", server_env=env)) == "redis"
    changed = {**env, "PUSHHUB_PUBLISH_RATE": "5"}
    assert config_label(fanout(1, 1.0, server_env=changed)) == "embedded, publish_rate=5"
    publish = {"bench": "publish", "store": "redis", "workers": 1, "server_env": env}
    assert publish_label({**publish, "readers": 1}) == "redis"
    assert publish_label({**publish, "readers": 100}) == "redis, 100 readers"
    storm = {"bench": "storm", "store": "embedded", "server_env": env, "backlog": 20, "missed": 20}
    assert storm_label(storm) == "pushhub, embedded (bench.storm)"
    assert storm_label({**storm, "missed": 200}) == "pushhub, embedded, B=200 (bench.storm)"


def test_lines_without_the_metric_are_left_out_of_its_series() -> None:
    lines = [fanout(1000, 5.0), fanout(1000, 7.0, latency_ms={"p50": 1.0, "p99": None})]
    assert series(lines, config_label, readers, path("latency_ms.p99"))["embedded"] == [
        Point(1000, 5.0, 5.0, 5.0, 1)
    ]


def test_lines_that_are_not_ok_are_skipped_and_counted() -> None:
    lines = [
        fanout(1000, 5.0),
        {"bench": "fanout", "status": "error", "error": "the total wall limit was reached"},
        fanout(1000, 5.0, status="failed"),
        peer("nchan", 1000, 18.0, status="skipped"),
        peer("pushhub", 1000, 21.0, storm={"all_caught_up": False}, status="storm_incomplete"),
        {"bench": "soak", "status": "ok"},
    ]
    runs = split(lines)
    assert len(runs.ok["fanout"]) == 1
    assert runs.skipped == {"fanout": 2, "peers": 1, "peer-storm": 1}
    assert runs.unknown == 1
    assert "1 runs (2 not ok, left out)" in footnote(runs.ok["fanout"], runs.skipped["fanout"])


def test_each_benchmark_lands_in_its_kind() -> None:
    lines = [
        fanout(100, 1.0),
        {k: v for k, v in fanout(100, 1.0).items() if k != "bench"},
        peer("nchan", 1000, 18.0),
        peer("nchan", 1000, 18.0, storm={"all_caught_up_ms": 455.0}),
        {"bench": "storm", "status": "ok", "store": "redis", "readers": 1000},
        {"bench": "publish", "status": "ok", "store": "redis", "editors": 4},
    ]
    runs = split(lines)
    assert {k: len(v) for k, v in runs.ok.items()} == {
        "fanout": 2, "peers": 1, "peer-storm": 1, "storm": 1, "publish": 1
    }  # fmt: skip


def test_ratio_to_nchan_per_n() -> None:
    lines = [
        peer("nchan", 1000, 20.0),
        peer("nchan", 1000, 16.0),
        peer("nchan", 1000, 18.0),
        peer("pushhub", 1000, 21.0),
        peer("nchan", 5000, 16.0),
        peer("pushhub", 5000, 20.0),
        peer("pushhub", 10000, 30.0),  # no nchan run at this N: no ratio
        peer("socketio", 1000, 36.0),
    ]
    cpu = series(lines, peer_label, readers, path("server_cpu_us_per_delivery"))
    got = ratio(cpu)
    assert [p.x for p in got] == [1000, 5000]
    assert got[0].median == pytest.approx(21.0 / 18.0)
    assert (got[0].low, got[0].high) == pytest.approx((21.0 / 20.0, 21.0 / 16.0))
    assert got[1] == Point(5000, 1.25, 1.25, 1.25, 1)
    assert ratio(cpu, num="socketio")[0].median == pytest.approx(2.0)
    assert ratio({"pushhub": cpu["pushhub"]}) == []


def test_storm_series_read_both_the_peers_and_bench_storm_lines() -> None:
    lines = [
        peer("nchan", 1000, 0.0, storm={"all_caught_up_ms": 455.0, "server_cpu_ms_per_reconnect": 0.34}),
        {"bench": "storm", "status": "ok", "store": "redis", "readers": 1000,
         "all_caught_up_ms": 1400.0, "server_cpu_ms_per_reconnect": 1.3},
    ]  # fmt: skip
    caught_up = series(lines, storm_label, readers, storm_all_caught_up_ms)
    assert caught_up == {
        "nchan (peers' loadgen)": [Point(1000, 455.0, 455.0, 455.0, 1)],
        "pushhub, redis (bench.storm)": [Point(1000, 1400.0, 1400.0, 1400.0, 1)],
    }
    cpu = series(lines, storm_label, readers, storm_cpu_ms_per_reconnect)
    assert cpu["nchan (peers' loadgen)"][0].median == 0.34


def test_footnote_shows_date_machine_versions_and_load() -> None:
    lines = [
        peer("nchan", 1000, 1.0, machine={"host": "ci-box", "cpus": 2, "cpu_model": None}),
        peer("pushhub", 1000, 1.0, date="2026-11-25T14:57:30.000Z", label="rep2 loadavg=1.42 1 1"),
    ]
    note = footnote(lines)
    assert "2 runs · 2026-11-25 14:50–14:57 UTC" in note
    assert "machine: host ci-box, cpus 2 ·" in note
    assert "Node v20.20.2" in note
    assert "label rep1, rep2" in note
    assert "load average (1 min) before runs 0.77–1.42" in note
    assert "machine: not recorded in the lines" in footnote([fanout(100, 1.0)])
    same_minute = [fanout(100, 1.0), fanout(100, 1.0, date="2026-11-25T14:14:50Z")]
    assert "2 runs · 2026-11-25 14:14 UTC ·" in footnote(same_minute)
    assert "pushhub f06c37f · Python 3.11.7" in footnote([fanout(100, 1.0)])
    storm = {"bench": "storm", "machine": "box", "loadavg_1m_before_burst": 0.5}
    assert "machine: box · load average (1 min) before runs 0.50–0.50" in footnote([storm])


def storm_and_publish_lines() -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    for store in ("embedded", "redis"):
        for n in (1000, 5000):
            for k in (1.0, 1.5):
                lines.append({
                    "bench": "storm", "status": "ok", "store": store, "readers": n, "date": "2026-11-26T09:00:00Z",
                    "all_caught_up_ms": n * k, "server_cpu_ms_per_reconnect": 1.2 + k / 10,
                    "catch_up_ms": {"p50": 1.0, "p95": 2.0, "p99": 3.0, "max": 4.0}, "redis_commands_per_reconnect": 0,
                })  # fmt: skip
        for editors in (1, 4):
            lines.append({
                "bench": "publish", "status": "ok", "store": store, "editors": editors, "date": "2026-11-26T09:10:00Z",
                "accepted_per_s": 200.0 * editors, "publish_http_ms": {"p50": 5.0, "p95": 9.0, "p99": 12.0, "max": 15.0},
                "first_delivery_ms": {"p50": 6.0 + editors, "p95": 10.0, "p99": 14.0 + editors, "max": 20.0},
                "server_cpu_ms_per_publish": 4.0,
            })  # fmt: skip
    lines.append({"bench": "publish", "status": "error", "error": "server did not start"})
    return lines


def _not_blank(png: Path) -> bool:
    from matplotlib.image import imread

    pixels = imread(png)
    return bool(pixels.std() > 0.01 and (pixels[..., :3] < 0.5).mean() > 0.001)


def test_plots_from_the_committed_results(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bench import plots

    files = sorted(RESULTS.glob("*.jsonl"))
    # Lines from the two benchmarks whose results are not committed yet, so that every figure
    # is drawn; one of them did not finish and must be left out.
    extra = tmp_path / "storm-publish.jsonl"
    extra.write_text("\n".join(json.dumps(line) for line in storm_and_publish_lines()))
    out = tmp_path / "plots"
    assert plots.main([*map(str, files), str(extra), "--out", str(out), "--note", "test"]) == 0
    expected = [
        "fanout-latency.png", "fanout-cpu.png", "fanout-memory.png", "peers-deflate-off.png",
        "peers-deflate-on.png", "peers-ratio-nchan.png", "storm.png", "publish.png",
    ]  # fmt: skip
    printed = capsys.readouterr()
    assert printed.out.split() == [str(out / name) for name in expected]
    assert "left out 1 publish line(s)" in printed.err
    for name in expected:
        png = out / name
        assert png.read_bytes()[:8] == PNG_SIGNATURE, name
        assert png.stat().st_size > 20_000, name
        assert _not_blank(png), name


def test_only_figures_with_data_are_written(tmp_path: Path) -> None:
    from bench import plots

    out = tmp_path / "plots"
    assert plots.main([str(RESULTS / "peers-storm-20261125.jsonl"), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["peers-ratio-nchan.png", "storm.png"]
    empty = tmp_path / "empty.jsonl"
    empty.write_text('{"bench": "fanout", "status": "error"}\n')
    assert plots.main([str(empty), "--out", str(tmp_path / "none")]) == 1
