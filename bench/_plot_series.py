"""Benchmark JSON lines turned into plottable series: pure, no matplotlib (see bench/plots.py).

A series maps a label (a configuration, or a peer) to points; each point is one x value (N
readers, or editors) and the median, min and max of one metric over the repeated runs there.
"""

from __future__ import annotations

import json
import math
import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

Line = Mapping[str, Any]
Getter = Callable[[Line], float | None]

KINDS = ("fanout", "peers", "peer-storm", "storm", "publish")
# pushhub next to the reference it is compared with, then the others.
PEER_ORDER = ("pushhub", "nchan", "socketio", "pybroadcaster")
MACHINE_KEYS = ("machine", "hostname", "host")
# Settings bench.storm and bench.publish put on every server they start (their SERVER_DEFAULTS
# and RATE_SETTING): part of the harness, not of the configuration, so not in a label.
HARNESS_ENV = {"PUSHHUB_PUBLISH_RATE": "0", "PUSHHUB_WATCHDOG_INTERVAL": "600"}


@dataclass(frozen=True)
class Point:
    x: float
    median: float
    low: float
    high: float
    runs: int


Series = dict[str, list[Point]]


@dataclass
class Runs:
    """The ok lines of each kind, and how many lines were left out and why."""

    ok: dict[str, list[Line]] = field(default_factory=lambda: {k: [] for k in KINDS})
    skipped: Counter[str] = field(default_factory=Counter)
    unknown: int = 0


def read_lines(paths: Iterable[Path]) -> list[Line]:
    lines: list[Line] = []
    for path in paths:
        for number, text in enumerate(path.read_text().splitlines(), 1):
            if not text.strip():
                continue
            try:
                lines.append(json.loads(text))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: not a JSON line ({exc})") from exc
    return lines


def kind(line: Line) -> str | None:
    """Which benchmark wrote `line`: one of KINDS, or None for a line this module cannot plot."""
    if line.get("tool") == "loadgen.js":
        return "peer-storm" if isinstance(line.get("storm"), Mapping) else "peers"
    bench = line.get("bench", "fanout")
    return bench if bench in ("fanout", "storm", "publish") else None


def split(lines: Iterable[Line]) -> Runs:
    runs = Runs()
    for line in lines:
        which = kind(line)
        if which is None:
            runs.unknown += 1
        elif line.get("status") != "ok":
            runs.skipped[which] += 1
        else:
            runs.ok[which].append(line)
    return runs


def number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return None
    return float(value)


def path(*dotted: str) -> Getter:
    """A getter for the first of the dotted key paths that holds a number in a line."""

    def get(line: Line) -> float | None:
        for one in dotted:
            value: Any = line
            for key in one.split("."):
                value = value.get(key) if isinstance(value, Mapping) else None
            if (found := number(value)) is not None:
                return found
        return None

    return get


def series(lines: Iterable[Line], label: Callable[[Line], str], x: Getter, y: Getter) -> Series:
    """Median, min and max of `y` over the runs at each (label, x); lines lacking either are out."""
    groups: dict[str, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    for line in lines:
        xv, yv = x(line), y(line)
        if xv is not None and yv is not None:
            groups[label(line)][xv].append(yv)
    return {
        name: [
            Point(xv, statistics.median(ys), min(ys), max(ys), len(ys))
            for xv, ys in sorted(by_x.items())
        ]
        for name, by_x in sorted(groups.items())
    }


def ratio(points: Series, num: str = "pushhub", den: str = "nchan") -> list[Point]:
    """`num` ÷ `den` per x: ratio of the medians, spread from the extremes of both sides."""
    if num not in points or den not in points:
        return []
    below = {p.x: p for p in points[den]}
    out: list[Point] = []
    for top in points[num]:
        bottom = below.get(top.x)
        if bottom is None or bottom.low <= 0:
            continue
        out.append(
            Point(
                top.x,
                top.median / bottom.median,
                top.low / bottom.high,
                top.high / bottom.low,
                min(top.runs, bottom.runs),
            )
        )
    return out


def peer_rank(name: str) -> int:
    """Sort key: peers in PEER_ORDER, then the other labels (a stable sort keeps their order)."""
    first = name.split(" ")[0]
    return PEER_ORDER.index(first) if first in PEER_ORDER else len(PEER_ORDER)


def config_label(line: Line) -> str:
    """Store and whatever else differs from the defaults: workers, deflate, client, server env."""
    label = str(line.get("store", "?"))
    if (number(line.get("workers")) or 1) > 1:
        label += f", {line['workers']} workers"
    if line.get("deflate"):
        label += ", deflate"
    if line.get("client") not in (None, "lean"):
        label += f", client={line['client']}"
    for name, value in (line.get("server_env") or {}).items():
        if HARNESS_ENV.get(name) == str(value):
            continue
        label += f", {str(name).removeprefix('PUSHHUB_').lower()}={value}"
    return label


def peer_label(line: Line) -> str:
    return str(line.get("peer", "?"))


def storm_label(line: Line) -> str:
    if line.get("tool") == "loadgen.js":
        return f"{line.get('peer', '?')} (peers' loadgen)"
    # K and B as in the peers' storm unless the run says otherwise.
    label = config_label(line)
    for key, name in (("backlog", "K"), ("missed", "B")):
        if line.get(key) not in (None, 20):
            label += f", {name}={line[key]}"
    return f"pushhub, {label} (bench.storm)"


def publish_label(line: Line) -> str:
    count = line.get("readers")
    return config_label(line) + (f", {count} readers" if count not in (None, 1) else "")


readers = path("readers", "n")
storm_all_caught_up_ms = path("storm.all_caught_up_ms", "all_caught_up_ms")
storm_cpu_ms_per_reconnect = path(
    "storm.server_cpu_ms_per_reconnect", "server_cpu_ms_per_reconnect"
)


def _when(line: Line) -> datetime | None:
    try:
        return datetime.fromisoformat(str(line["date"])).astimezone(UTC)
    except (KeyError, ValueError):
        return None


def _span(times: Sequence[datetime]) -> str:
    first, last = min(times), max(times)
    if first.date() == last.date():
        end = "" if f"{last:%H:%M}" == f"{first:%H:%M}" else f"–{last:%H:%M}"
        return f"{first:%Y-%m-%d %H:%M}{end} UTC"
    return f"{first:%Y-%m-%d %H:%M} – {last:%Y-%m-%d %H:%M} UTC"


def _distinct(values: Iterable[Any], limit: int = 3) -> str:
    seen = list(dict.fromkeys(str(v) for v in values if v not in (None, "", {})))
    return ", ".join(seen[:limit]) + (f" (+{len(seen) - limit} more)" if len(seen) > limit else "")


def _machine(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {v}" for k, v in value.items() if v not in (None, ""))
    return str(value)


def _loadavg(line: Line) -> float | None:
    # The Python benchmarks record the 1-minute load average; the peers' bench.sh puts it in
    # the label.
    found = path("loadavg_1m_before_publish", "loadavg_1m_before_burst")(line)
    if found is None and (match := re.search(r"loadavg=([\d.]+)", str(line.get("label") or ""))):
        found = float(match[1])
    return found


def footnote(lines: Sequence[Line], skipped: int = 0) -> str:
    """Where and when the plotted runs were taken, from the fields the lines carry."""
    parts = [f"{len(lines)} runs" + (f" ({skipped} not ok, left out)" if skipped else "")]
    times = [t for t in map(_when, lines) if t is not None]
    if times:
        parts.append(_span(times))
    machines = _distinct(_machine(line[k]) for line in lines for k in MACHINE_KEYS if k in line)
    parts.append(f"machine: {machines}" if machines else "machine: not recorded in the lines")
    for key, name in (("git", "pushhub"), ("python", "Python"), ("node", "Node")):
        if found := _distinct(line.get(key) for line in lines):
            parts.append(f"{name} {found}")
    labels = (re.sub(r"loadavg=[\d.]+(\s+[\d.]+)*", "", str(line.get("label") or "")).strip()
              for line in lines)  # fmt: skip
    if found := _distinct(labels):
        parts.append(f"label {found}")
    loads = [v for v in map(_loadavg, lines) if v is not None]
    if loads:
        parts.append(f"load average (1 min) before runs {min(loads):.2f}–{max(loads):.2f}")
    return " · ".join(parts)
