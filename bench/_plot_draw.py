"""Drawing helpers for bench/plots.py: figures, axes and panels from series (matplotlib, Agg)."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from bench._plot_series import PEER_ORDER, Point, Series, peer_rank

PALETTE = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown",
           "tab:pink", "tab:gray", "tab:olive", "tab:cyan")  # fmt: skip
SPREAD = "median of runs, whiskers min–max"
N_AXIS = "readers N (connections)"
# A metric whose values span more than this factor is drawn on a log axis, or the small values
# (nchan at N = 1000) would be flat against zero next to the large ones (pybroadcaster at 5000).
LOG_SPAN = 30.0


def palette_for(names: Sequence[str]) -> dict[str, str]:
    # A peer keeps its colour in every figure ("nchan (peers' loadgen)" too); other labels take
    # the free ones in order.
    peers = {n: n.split(" ")[0] for n in names if n.split(" ")[0] in PEER_ORDER}
    taken = {PALETTE[PEER_ORDER.index(p)] for p in peers.values()}
    free = iter(c for c in PALETTE if c not in taken)
    return {
        n: PALETTE[PEER_ORDER.index(peers[n])] if n in peers else next(free, "black") for n in names
    }


def value_label(v: float) -> str:
    return f"{v:,.0f}" if v >= 1000 else f"{v:.3g}"


def new_figure(title: str, panels: int) -> tuple[Figure, list[Axes]]:
    fig = Figure(figsize=(5.0 * panels + 1.0, 4.6), dpi=110)
    FigureCanvasAgg(fig)  # rendered off-screen: no display needed
    axes = list(fig.subplots(1, panels, squeeze=False)[0])
    fig.suptitle(title, fontsize=12)
    return fig, axes


def finish(fig: Figure, note: str) -> None:
    """The footnote, wrapped, at the bottom; the panels laid out above it."""
    # About 17 characters of 7.5 pt text per inch of width.
    text = "\n".join(textwrap.wrap(note, width=int(fig.get_figwidth() * 17)))
    height = (0.16 * (text.count("\n") + 1) + 0.12) / fig.get_figheight()
    fig.text(0.01, 0.012, text, fontsize=7.5, color="0.3", ha="left", va="bottom")
    fig.tight_layout(rect=(0, height, 1, 1))


def y_axis(ax: Axes, label: str, values: Sequence[float], log: bool | None = None) -> None:
    """Log when asked, or when the values span more than LOG_SPAN; headroom for bar labels."""
    ax.set_ylabel(label)
    ax.grid(True, axis="y", alpha=0.3)
    positive = [v for v in values if v > 0]
    if not positive:
        return
    if log is None:
        log = max(positive) / min(positive) > LOG_SPAN
    if log:
        ax.set_yscale("log")
        ax.set_ylim(min(positive) / 2, max(positive) * 4)
    else:
        ax.set_ylim(0, max(positive) * 1.25)


def n_axis(ax: Axes, xs: Sequence[float], label: str = N_AXIS) -> None:
    ticks = sorted(set(xs))
    if ticks and ticks[0] > 0 and ticks[-1] / ticks[0] >= 10:
        ax.set_xscale("log")
        ax.set_xlim(ticks[0] / 1.6, ticks[-1] * 1.6)
    else:
        ax.margins(x=0.1)
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.set_xlabel(label)


def _dodge(x: float, i: int, count: int, log: bool) -> float:
    # Shift each series a little sideways so that whiskers at the same N do not hide each other.
    step = 0.025 * (i - (count - 1) / 2)
    return x * (1 + step) if log else x + step * x


def _whiskers(points: Sequence[Point]) -> list[list[float]]:
    return [[p.median - p.low for p in points], [p.high - p.median for p in points]]


def line_panel(
    ax: Axes, lines: Sequence[tuple[Series, str, str]], ylabel: str, xlabel: str = N_AXIS
) -> None:
    """Each (series, linestyle, legend suffix) drawn on one axes, one colour per series label."""
    names = sorted(sorted({name for data, _, _ in lines for name in data}), key=peer_rank)
    colors = palette_for(names)
    xs = [p.x for data, _, _ in lines for points in data.values() for p in points]
    n_axis(ax, xs, xlabel)
    log_x = ax.get_xscale() == "log"
    ys: list[float] = []
    for data, style, suffix in lines:
        for name in sorted(data, key=peer_rank):
            points = data[name]
            at = [_dodge(p.x, names.index(name), len(names), log_x) for p in points]
            ax.errorbar(
                at,
                [p.median for p in points],
                _whiskers(points),
                marker="o",
                ms=4,
                capsize=3,
                linestyle=style,
                color=colors[name],
                label=name + suffix,
            )
            ys += [p.high for p in points]
    y_axis(ax, ylabel, ys)
    ax.legend(fontsize=7.5)


def bar_panel(
    ax: Axes,
    data: Series,
    ylabel: str,
    label: Callable[[float], str] = value_label,
    log: bool | None = None,
) -> None:
    """Grouped bars: a group per N, a bar per label (peers in PEER_ORDER), whiskers min–max."""
    names = sorted(data, key=peer_rank)
    groups = sorted({p.x for points in data.values() for p in points})
    colors = palette_for(names)
    width = 0.8 / max(len(names), 1)
    for i, name in enumerate(names):
        at = {p.x: p for p in data[name]}
        points = [at[g] for g in groups if g in at]
        slots = [groups.index(p.x) - 0.4 + width * (i + 0.5) for p in points]
        bars = ax.bar(
            slots,
            [p.median for p in points],
            width,
            yerr=_whiskers(points),
            capsize=2,
            color=colors[name],
            label=name,
        )
        ax.bar_label(bars, fmt=label, fontsize=7, padding=2)
    ax.set_xticks(range(len(groups)), [f"N = {g:,.0f}" for g in groups])
    y_axis(ax, ylabel, [p.high for points in data.values() for p in points], log)
    ax.legend(fontsize=7.5)
