"""Fold a py-spy raw profile into the functions that hold the samples: a Markdown table.

    py-spy record -p PID -r 200 -f raw -o storm.txt -d 20 --nonblocking
    python -m bench.pyspy_top storm.txt [--top 25] [--self]

"inclusive" is the share of samples with the function anywhere on the stack (counted once per
sample, however deep the recursion), "self" the share with it on top. Time a Python frame
spends in a system call (a socket write, say) shows up as that frame's self time.
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path


def frame_name(frame: str) -> str:
    """`func (path/to/file.py:12)` → `func file.py`; py-spy's line numbers split one function."""
    name, _, where = frame.partition(" (")
    file = where.rstrip(")").rsplit(":", 1)[0].rsplit("/", 1)[-1]
    return f"{name} {file}".strip()


def fold(lines: Iterable[str]) -> tuple[int, Counter[str], Counter[str]]:
    """(samples, inclusive counts, self counts) from py-spy's `stack;stack;... count` lines."""
    total = 0
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    for line in lines:
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        names = [frame_name(f) for f in stack.split(";")]
        for name in set(names):
            inclusive[name] += n
        own[names[-1]] += n
    return total, inclusive, own


def table(total: int, counts: Counter[str], top: int, *, skip_roots: bool) -> str:
    """The `top` functions by count, leaving out the roots (the entry point and the event loop
    runner, on every stack of the main thread), which say nothing."""
    rows = ["| share of samples | function |", "|---|---|"]
    ranked = counts.most_common()
    roots = ranked[0][1] if skip_roots and ranked else None
    for name, n in [(k, v) for k, v in ranked if v != roots][:top]:
        rows.append(f"| {100 * n / max(1, total):.1f}% | `{name}` |")
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.pyspy_top", description=__doc__.split("\n")[0]
    )
    p.add_argument("profile", type=Path, help="py-spy record -f raw output")
    p.add_argument("--top", type=int, default=25, help="rows (25)")
    p.add_argument("--self", dest="own", action="store_true", help="rank by self, not inclusive")
    args = p.parse_args(argv)
    total, inclusive, own = fold(args.profile.read_text().splitlines())
    print(f"{total} samples")
    counts = own if args.own else inclusive
    print(table(total, counts, args.top, skip_roots=not args.own))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
