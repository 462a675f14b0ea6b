"""Summaries of measured samples. Pure: no I/O, no clocks."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of values already sorted ascending."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return float(sorted_values[min(rank, len(sorted_values)) - 1])


def summary(values: Sequence[float]) -> dict[str, float]:
    """count, p50, p95, p99, max and mean; NaN (null in JSON) for an empty sample."""
    ordered = sorted(values)
    n = len(ordered)
    return {
        "count": n,
        "p50": percentile(ordered, 50),
        "p95": percentile(ordered, 95),
        "p99": percentile(ordered, 99),
        "max": float(ordered[-1]) if n else math.nan,
        "mean": sum(ordered) / n if n else math.nan,
    }


def ns_to_ms(values: Sequence[int]) -> list[float]:
    return [v / 1e6 for v in values]
