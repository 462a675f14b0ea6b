"""How a fan-out run is shown: one Markdown table row (with its header) or one JSON line."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

COLUMNS = (
    "store", "N", "M", "delivery p50 / p95 / p99 / max ms", "last reader p50 / max ms",
    "deliveries/s", "lost / dup / out-of-order", "server CPU s (publish phase)",
    "server CPU µs / delivery", "server RSS before → after connect MB", "KB / reader",
)  # fmt: skip


def _ms(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:,.0f}" if value >= 1000 else f"{value:.1f}"


def _num(value: float | None, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return format(value, fmt)


def store_label(result: Mapping[str, Any]) -> str:
    label = str(result["store"])
    if result.get("workers", 1) > 1:
        label += f", {result['workers']} workers"
    if result.get("deflate"):
        label += ", deflate"
    for name, value in (result.get("server_env") or {}).items():
        label += f", {name.removeprefix('PUSHHUB_').lower()}={value}"
    return label


def header(*, runs: bool = False) -> str:
    columns = (COLUMNS[0], "runs", *COLUMNS[1:]) if runs else COLUMNS
    return "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns)


def row(result: Mapping[str, Any], *, runs: int | None = None) -> str:
    lat = result["latency_ms"]
    last = result["last_reader_ms"]
    rss = result["rss_kb"]
    rss_cell = "–"
    if rss.get("before") is not None and rss.get("connected") is not None:
        rss_cell = f"{rss['before'] / 1024:.1f} → {rss['connected'] / 1024:.1f}"
    cells = [
        store_label(result),
        str(result["readers"]),
        str(result["messages"]),
        " / ".join(_ms(lat[k]) for k in ("p50", "p95", "p99", "max")),
        f"{_ms(last['p50'])} / {_ms(last['max'])}",
        _num(result["deliveries_per_s"], ",.0f"),
        f"{result['lost']} / {result['dup']} / {result['out_of_order']}",
        _num(result.get("server_cpu_s"), ".2f"),
        _num(result.get("server_cpu_us_per_delivery"), ".1f"),
        rss_cell,
        _num(result.get("kb_per_reader"), ".1f"),
    ]
    if runs is not None:
        cells.insert(1, str(runs))
    return "| " + " | ".join(cells) + " |"


def notes(result: Mapping[str, Any]) -> str:
    """The numbers that do not fit the table but explain it."""
    pub = result["publish_http_ms"]
    parts = [
        f"connect {result['connect_s']:.2f} s (≤ {result['max_handshakes_in_flight']} handshakes"
        " in flight)",
        f"publish HTTP p50 / max {_ms(pub['p50'])} / {_ms(pub['max'])} ms at"
        f" {result['publish_rate']:.1f}/s (sends up to {result['publish_jitter_ms']:.0f} ms late)",
        f"first reader p50 {_ms(result['first_reader_ms']['p50'])} ms",
        f"load process CPU {_num(result.get('loadgen_cpu_s'), '.2f')} s",
    ]
    parts.append(
        f"other processes on the box used {_num(result.get('other_cpu_s'), '.2f')} s CPU meanwhile"
        f" (load average {result.get('loadavg_1m_before_publish', math.nan):.2f} before)"
    )
    if result.get("redis_cpu_s") is not None:
        parts.append(f"redis-server CPU {result['redis_cpu_s']:.2f} s")
    if result["rss_kb"].get("after") is not None:
        parts.append(f"server RSS after publishing {result['rss_kb']['after'] / 1024:.1f} MB")
    return "; ".join(parts)


def markdown(result: Mapping[str, Any]) -> str:
    lines = [header(), row(result), "", notes(result)]
    if result["problems"]:
        lines.append("PROBLEMS: " + "; ".join(result["problems"]))
    return "\n".join(lines)


def _clean(value: Any) -> Any:
    # JSON has no NaN: an empty sample is null.
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def json_line(result: Mapping[str, Any]) -> str:
    return json.dumps(_clean(dict(result)), ensure_ascii=False, separators=(",", ":"))
