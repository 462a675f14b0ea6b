"""Server CPU split into what each event costs and what each reader adds, from fan-out runs at
several N (the peers' load generator, or `bench.fanout --json`).

    python -m bench.split bench/results/peers-sixth-fanout-20261201.jsonl \\
        bench/results/peers-sixth-n1-20261201.jsonl

CPU per delivery at one N mixes two costs: what a server spends on an event whatever its
audience (the publish request, the store, its timers over the run) and what each reader adds
(the write, mostly the kernel's). A run with one reader measures the first; a run at N readers
then gives the second as (CPU per event − the first) / N. Per server: the median CPU per event
over its one-reader runs, and per N the median per-reader cost over its runs at that N. The
per-event part includes the idle work between events, so it holds for the runs' publish rate.

Servers are named by the load generator's peer; a `--peer raw` run labelled "floor" is
`bench.floor`, and `bench.fanout` lines are "pushhub (bench.fanout, <store>)".
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench._plot_series import kind, read_lines


@dataclass(frozen=True, slots=True)
class Run:
    server: str
    readers: int
    cpu_ms_per_event: float


def run_of(line: Mapping[str, Any]) -> Run | None:
    """One fan-out run, or None for a line that is not one (a storm, a failed run, other tools,
    a run that recorded no CPU)."""
    which = kind(line)
    if line.get("status", "ok") != "ok" or which not in ("peers", "fanout"):
        return None
    if which == "peers":
        peer = str(line.get("peer", "?"))
        server = "floor" if peer == "raw" and "floor" in str(line.get("label", "")) else peer
        cpu = (line.get("server_cpu_s") or {}).get("publish")
        readers, events = line.get("n"), line.get("m")
    else:
        server = f"pushhub (bench.fanout, {line.get('store', '?')})"
        cpu, readers, events = line.get("server_cpu_s"), line.get("readers"), line.get("messages")
    if not isinstance(cpu, int | float) or not isinstance(readers, int):
        return None
    if not isinstance(events, int) or events < 1:
        return None
    return Run(server, readers, cpu / events * 1e3)


@dataclass(frozen=True, slots=True)
class Split:
    server: str
    one_reader_runs: int
    ms_per_event: float
    # N -> (runs, median µs per reader beyond the per-event part)
    us_per_reader: dict[int, tuple[int, float]]


def split(runs: Iterable[Run]) -> list[Split]:
    """Per server with one-reader runs: the per-event part, and the per-reader part at each N."""
    by_server: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        by_server[run.server][run.readers].append(run.cpu_ms_per_event)
    out = []
    for server, by_n in by_server.items():
        if 1 not in by_n:
            continue
        fixed = statistics.median(by_n[1])
        per_reader = {
            n: (len(v), statistics.median((ms - fixed) / n * 1e3 for ms in v))
            for n, v in sorted(by_n.items())
            if n > 1
        }
        out.append(Split(server, len(by_n[1]), fixed, per_reader))
    return sorted(out, key=lambda s: s.server)


def table(splits: Sequence[Split]) -> str:
    sizes = sorted({n for s in splits for n in s.us_per_reader})
    head = ["server", "CPU ms per event (1 reader, runs)"] + [
        f"CPU µs per reader at N = {n:,} (runs)" for n in sizes
    ]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in splits:
        cells = [s.server, f"{s.ms_per_event:.2f} ({s.one_reader_runs})"]
        for n in sizes:
            cell = s.us_per_reader.get(n)
            cells.append("–" if cell is None else f"{cell[1]:.1f} ({cell[0]})")
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.split", description=__doc__)
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args(argv)
    try:
        lines = read_lines(args.files)
    except (OSError, ValueError) as exc:
        print(f"split: {exc}", file=sys.stderr)
        return 2
    runs = [run for run in map(run_of, lines) if run is not None]
    splits = split(runs)
    if not splits:
        print("no server has runs with one reader: nothing to split", file=sys.stderr)
        return 1
    print(table(splits))
    missing = sorted({r.server for r in runs} - {s.server for s in splits})
    for server in missing:
        print(f"{server}: no runs with one reader, left out", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
