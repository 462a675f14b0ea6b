"""`pushhub serve` with the garbage collector's own accounting, to see what it costs under load.

    python -m bench.gcstats --out gc.jsonl -- --host 127.0.0.1 --port 8097
    kill -USR1 <pid>     # append one JSON line: the totals so far

Runs the server in this process (one worker) exactly as `pushhub serve` would, settings from
the same PUSHHUB_* variables, and times every collection through `gc.callbacks`. Each SIGUSR1
appends a line with, per generation, the collections so far, their total and longest time in
ms, and the objects they freed; take one before and one after a run and subtract.

docs/performance.md (third sitting, "The collector") has the runs this was made for.
"""

from __future__ import annotations

import argparse
import gc
import json
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any


class Accounts:
    def __init__(self) -> None:
        self.count = [0, 0, 0]
        self.total = [0.0, 0.0, 0.0]
        self.longest = [0.0, 0.0, 0.0]
        self.freed = [0, 0, 0]
        self._started = 0.0

    def callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        took = time.perf_counter() - self._started
        g = info["generation"]
        self.count[g] += 1
        self.total[g] += took
        self.longest[g] = max(self.longest[g], took)
        self.freed[g] += info["collected"]

    def line(self) -> dict[str, Any]:
        return {
            "time": time.time(),
            "frozen": gc.get_freeze_count(),
            "threshold": list(gc.get_threshold()),
            "generations": [
                {
                    "collections": self.count[g],
                    "total_ms": round(self.total[g] * 1000, 3),
                    "longest_ms": round(self.longest[g] * 1000, 3),
                    "freed": self.freed[g],
                }
                for g in range(3)
            ],
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.gcstats", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--out", type=Path, required=True, help="JSON lines go here")
    parser.add_argument("serve", nargs=argparse.REMAINDER, help="-- then `pushhub serve` options")
    args = parser.parse_args(argv)
    serve_args = args.serve[1:] if args.serve[:1] == ["--"] else args.serve

    accounts = Accounts()
    gc.callbacks.append(accounts.callback)

    def report(signum: int, frame: FrameType | None) -> None:
        with args.out.open("a") as f:
            f.write(json.dumps(accounts.line()) + "\n")

    signal.signal(signal.SIGUSR1, report)
    from pushhub.cli import main as pushhub_main

    return pushhub_main(["serve", *serve_args])


if __name__ == "__main__":
    sys.exit(main())
