"""The entry a benchmark publishes: its body carries the send time, so a reader can measure
publish-to-delivery latency from the frame alone (all processes share the machine's clock)."""

from __future__ import annotations

PREFIX = "bench"
MIN_SIZE = 48


def make_body(index: int, sent_ns: int, size: int) -> str:
    """`bench <index> <time_ns> xxx…`, padded with `x` to `size` characters (ASCII)."""
    head = f"{PREFIX} {index} {sent_ns} "
    return head + "x" * max(0, size - len(head))


def parse_body(body: object) -> tuple[int, int] | None:
    """(index, sent_ns) from a body made by `make_body`, or None if it is not one."""
    if not isinstance(body, str):
        return None
    parts = body.split(" ", 3)
    if len(parts) < 3 or parts[0] != PREFIX or not parts[1].isdigit() or not parts[2].isdigit():
        return None
    return int(parts[1]), int(parts[2])
