"""PNG plots from benchmark JSON lines, for docs/performance.md.

    python -m bench.plots bench/results/*.jsonl --out docs/img/bench

Reads lines from `python -m bench.fanout --json`, `bench.storm --json`, `bench.publish --json`
and the peers' Node load generator (loadgen.js, fan-out and --storm), and writes one PNG per
figure that the lines have data for; prints the paths written. Lines whose status is not "ok"
are left out and counted. Repeated runs of one configuration are drawn as their median with
whiskers from the minimum to the maximum. Each figure's footnote says which runs it shows: their
date, and the machine, versions and load average as far as the lines record them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from bench._plot_draw import SPREAD, bar_panel, finish, line_panel, new_figure
from bench._plot_series import (
    Getter,
    Line,
    Runs,
    config_label,
    footnote,
    path,
    peer_label,
    publish_label,
    ratio,
    read_lines,
    readers,
    series,
    split,
    storm_all_caught_up_ms,
    storm_cpu_ms_per_reconnect,
    storm_label,
)

# A figure and its footnote: which runs it shows, and when and where they ran.
Drawn = tuple[Figure, str]
PEER_METRICS: tuple[tuple[str, Getter], ...] = (
    ("server CPU per delivery (µs)", path("server_cpu_us_per_delivery")),
    ("delivery latency p99 (ms)", path("latency_ms.p99")),
    ("server RSS per connection (KB)", path("mem_per_conn_kb")),
)
STORM_METRICS: tuple[tuple[str, Getter], ...] = (
    ("all caught up (ms)", storm_all_caught_up_ms),
    ("server CPU per reconnect (ms)", storm_cpu_ms_per_reconnect),
)


def fanout_latency(runs: Runs) -> Drawn | None:
    lines = runs.ok["fanout"]
    if not lines:
        return None
    fig, (p50, p99) = new_figure(
        "Fan-out: publish-to-delivery latency vs readers (bench.fanout)", 2
    )
    for ax, key in ((p50, "p50"), (p99, "p99")):
        line_panel(
            ax,
            [(series(lines, config_label, readers, path(f"latency_ms.{key}")), "-", "")],
            f"delivery latency {key} (ms)",
        )
        ax.set_title(f"{key} over all N × M deliveries", fontsize=10)
    return fig, f"{SPREAD}. " + footnote(lines, runs.skipped["fanout"])


def _fanout_single(runs: Runs, title: str, getter: Getter, ylabel: str) -> Drawn | None:
    lines = runs.ok["fanout"]
    data = series(lines, config_label, readers, getter)
    if not data:
        return None
    fig, (ax,) = new_figure(title, 1)
    line_panel(ax, [(data, "-", "")], ylabel)
    return fig, f"{SPREAD}. " + footnote(lines, runs.skipped["fanout"])


def fanout_cpu(runs: Runs) -> Drawn | None:
    return _fanout_single(
        runs,
        "Fan-out: server CPU per delivery (bench.fanout)",
        path("server_cpu_us_per_delivery"),
        "server CPU per delivery (µs)",
    )


def fanout_memory(runs: Runs) -> Drawn | None:
    return _fanout_single(
        runs,
        "Fan-out: server memory per idle reader (bench.fanout)",
        path("kb_per_reader"),
        "server RSS per reader (KB)",
    )


def _peer_lines(runs: Runs, deflate: bool) -> list[Line]:
    return [line for line in runs.ok["peers"] if bool(line.get("deflate_offered")) == deflate]


def peer_bars(runs: Runs, deflate: bool) -> Drawn | None:
    lines = _peer_lines(runs, deflate)
    if not lines:
        return None
    state = "on (every client offers permessage-deflate)" if deflate else "off"
    fig, axes = new_figure(f"Peers side by side, fan-out, deflate {state} (peers' loadgen.js)", 3)
    for ax, (ylabel, getter) in zip(axes, PEER_METRICS, strict=True):
        bar_panel(ax, series(lines, peer_label, readers, getter), ylabel)
    return fig, f"{SPREAD}. " + footnote(lines, runs.skipped["peers"])


def ratio_to_nchan(runs: Runs) -> Drawn | None:
    panels: list[tuple[str, list[Line], tuple[tuple[str, Getter], ...]]] = [
        ("fan-out, deflate off", _peer_lines(runs, False), PEER_METRICS),
        ("fan-out, deflate on", _peer_lines(runs, True), PEER_METRICS),
        ("reconnect storm", runs.ok["peer-storm"], STORM_METRICS),
    ]
    drawn = []
    for title, lines, metrics in panels:
        # The metric without its unit: a ratio has none.
        data = {
            name.split(" (")[0]: ratio(series(lines, peer_label, readers, get))
            for name, get in metrics
        }
        if any(data.values()):
            drawn.append((title, lines, {k: v for k, v in data.items() if v}))
    if not drawn:
        return None
    fig, axes = new_figure("pushhub ÷ nchan, same sitting, same load generator", len(drawn))
    for ax, (title, _, data) in zip(axes, drawn, strict=True):
        # Log: 0.5× and 2× sit the same distance from 1×.
        bar_panel(ax, data, "", label=lambda v: f"{v:.2f}×", log=True)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}×"))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
        low, high = ax.get_ylim()
        ax.set_ylim(min(low, 0.5), max(high, 2.0))  # 1× always in view
        ax.axhline(1.0, color="black", linewidth=1)
        ax.set_title(title, fontsize=10)
    axes[0].set_ylabel("pushhub ÷ nchan (below 1×: pushhub lower)")
    every = [line for _, lines, _ in drawn for line in lines]
    skipped = runs.skipped["peers"] + runs.skipped["peer-storm"]
    note = "Ratio of medians; whiskers from the extremes of both peers' runs. "
    return fig, note + footnote(every, skipped)


def storm(runs: Runs) -> Drawn | None:
    lines = runs.ok["peer-storm"] + runs.ok["storm"]
    if not lines:
        return None
    fig, axes = new_figure("Reconnect storm: N readers drop and resume with since", 2)
    for ax, (ylabel, getter) in zip(axes, STORM_METRICS, strict=True):
        line_panel(ax, [(series(lines, storm_label, readers, getter), "-", "")], ylabel)
    skipped = runs.skipped["peer-storm"] + runs.skipped["storm"]
    return fig, f"{SPREAD}. " + footnote(lines, skipped)


def publish(runs: Runs) -> Drawn | None:
    lines = runs.ok["publish"]
    if not lines:
        return None
    editors = path("editors")
    fig, (rate, first) = new_figure("Publishing: editors posting at once (bench.publish)", 2)
    line_panel(
        rate,
        [(series(lines, publish_label, editors, path("accepted_per_s")), "-", "")],
        "accepted entries per second",
        xlabel="editors",
    )
    latency = [
        (series(lines, publish_label, editors, path(f"first_delivery_ms.{key}")), style, f", {key}")
        for key, style in (("p50", "-"), ("p99", "--"))
    ]
    line_panel(first, latency, "publish to first delivery (ms)", xlabel="editors")
    return fig, f"{SPREAD}. " + footnote(lines, runs.skipped["publish"])


PLOTS: tuple[tuple[str, Callable[[Runs], Drawn | None]], ...] = (
    ("fanout-latency.png", fanout_latency),
    ("fanout-cpu.png", fanout_cpu),
    ("fanout-memory.png", fanout_memory),
    ("peers-deflate-off.png", lambda runs: peer_bars(runs, deflate=False)),
    ("peers-deflate-on.png", lambda runs: peer_bars(runs, deflate=True)),
    ("peers-ratio-nchan.png", ratio_to_nchan),
    ("storm.png", storm),
    ("publish.png", publish),
)


def write_plots(runs: Runs, out: Path, note: str = "") -> list[Path]:
    """Every figure the runs have data for, as PNG files in `out`; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, draw in PLOTS:
        drawn = draw(runs)
        if drawn is None:
            continue
        fig, text = drawn
        finish(fig, f"{text} · {note}" if note else text)
        fig.savefig(out / name)
        written.append(out / name)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.plots",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("files", nargs="+", type=Path, help="JSON lines files")
    parser.add_argument("--out", type=Path, required=True, help="directory for the PNG files")
    parser.add_argument(
        "--note",
        default="",
        help="added to every footnote, e.g. the machine when the lines do not record it",
    )
    args = parser.parse_args(argv)
    missing = [str(f) for f in args.files if not f.is_file()]
    if missing:
        parser.error(f"no such file: {', '.join(missing)}")
    try:
        runs = split(read_lines(args.files))
    except ValueError as exc:
        parser.error(str(exc))
    for which, count in sorted(runs.skipped.items()):
        print(f"plots: left out {count} {which} line(s) whose status is not ok", file=sys.stderr)
    if runs.unknown:
        print(f"plots: ignored {runs.unknown} line(s) of no known kind", file=sys.stderr)
    written = write_plots(runs, args.out, args.note)
    if not written:
        print("plots: nothing to plot in these lines", file=sys.stderr)
        return 1
    for png in written:
        print(png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
