"""Markdown table from `python -m bench.fanout --json` lines: one row per configuration.

    python -m bench.summarize bench/results/fanout-20261125.jsonl

Repeated runs of one configuration are folded into one row: timings, CPU and memory are the
median over the runs; lost / dup / out-of-order are summed, so a row only shows 0 when every run
was clean. Runs that did not finish (status "error") are counted, never averaged in.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import _report

SUMMED = ("lost", "dup", "out_of_order", "unexpected_frames", "dropped")


def config_key(run: dict[str, Any]) -> tuple[Any, ...]:
    env = tuple(sorted((run.get("server_env") or {}).items()))
    return (run["store"], run["workers"], run["deflate"], env, run["readers"], run["messages"])


def _median(values: list[Any]) -> Any:
    numbers = [v for v in values if isinstance(v, int | float)]
    return statistics.median(numbers) if numbers else None


def fold(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One result-shaped dict whose numbers are medians (counts: sums) over `runs`."""
    out: dict[str, Any] = dict(runs[0])
    for key, value in runs[0].items():
        if key in SUMMED:
            out[key] = sum(r[key] for r in runs)
        elif isinstance(value, dict) and any(isinstance(v, int | float) for v in value.values()):
            out[key] = {k: _median([r[key].get(k) for r in runs]) for k in value}
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out[key] = _median([r.get(key) for r in runs])
    out["runs"] = len(runs)
    out["problems"] = [p for r in runs for p in r.get("problems", [])]
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.summarize", description=__doc__)
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args(argv)
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    errors = 0
    for path in args.files:
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            run = json.loads(line)
            if run.get("status") == "error":
                errors += 1
                continue
            groups[config_key(run)].append(run)
    print(_report.header(runs=True))
    for key in sorted(groups, key=lambda k: (k[0], k[1], k[2], k[3], k[4])):
        folded = fold(groups[key])
        print(_report.row(folded, runs=folded["runs"]))
    print()
    print(
        "| store | N | publish HTTP p50 ms | publisher late, max ms | load process CPU s"
        " | other tenants' CPU s | load average |\n|---|---|---|---|---|---|---|"
    )
    for key in sorted(groups, key=lambda k: (k[0], k[1], k[2], k[3], k[4])):
        folded = fold(groups[key])
        runs = groups[key]
        print(
            f"| {_report.store_label(folded)} | {folded['readers']}"
            f" | {folded['publish_http_ms']['p50']:.1f}"
            f" | {max(r['publish_jitter_ms'] for r in runs):.0f}"
            f" | {folded['loadgen_cpu_s']:.2f}"
            f" | {folded['other_cpu_s']:.1f}"
            f" | {folded['loadavg_1m_before_publish']:.1f} |"
        )
    if errors:
        print(f"\n{errors} run(s) did not finish (status error) and are left out.")
    problems = sorted({p for runs in groups.values() for r in runs for p in r.get("problems", [])})
    for problem in problems:
        print(f"problem seen: {problem}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
