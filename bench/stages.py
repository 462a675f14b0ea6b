"""Where one publish's time goes, stage by stage, while its event fans out to N readers.

    python -m bench.stages [--readers 1000] [--messages 100] [--rate 10] [--redis] [--json]

Starts `pushhub serve` through bench._stamped (and its own redis-server with --redis, AOF off),
which notes the time of each stage of every publish inside the server; then runs bench.fanout
against it (`--url`): the readers in their own load process, one blog, M entries at --rate,
every delivery checked. Afterwards the server hands over its stamps (SIGUSR1) and each publish
is cut into the time between its stages (bench/_stamped.py names them):

    read → route        uvicorn's parser, the middleware, Starlette's routing, the task
    route → checked     token, blog, revocation (one Redis round trip) and the publish rate
    checked → commit    the body read, Markdown, the sanitizer, the change built
    commit → committed  the write (one Redis round trip, or the embedded store's thread)
    commit → event      the write, then the hub takes the event: from the store's answer
                        when it is the next one (Hub.on_commit), else from pub/sub
    event → fanned      the fan-out itself: one write per reader
    read → event        the server's part of publish-to-first-delivery
    read → answered     what the editor's 201 waits for inside the server

A publish counts only if its stamps came in that order, uninterrupted by another's (at 10/s
they do not overlap); the rest are counted as `skipped`. Times are wall-clock inside one
process, so they include waiting for the other core (Redis, the readers). Exits 1 if fan-out
found a problem or no publish could be cut, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from bench import _run, fanout
from bench._report import json_line
from bench._servers import StartError
from bench._stats import summary
from pushhub.auth import issue_token

say = _run.sayer("stages")

ORDER = ("read", "route", "checked", "commit", "event", "fanned")
STAGES = (*ORDER, "committed", "answered")
SPANS = (
    ("read", "route"), ("route", "checked"), ("checked", "commit"), ("commit", "committed"),
    ("commit", "event"), ("event", "fanned"), ("read", "event"), ("read", "answered"),
)  # fmt: skip


def cut(stamps: Sequence[tuple[str, int]]) -> tuple[list[dict[str, int]], int]:
    """The publishes in a run's stamps, each {stage: ns}, and how many were skipped: those
    missing a stage, with one out of order, or overlapping the next one's."""
    publishes: list[dict[str, int]] = []
    skipped = 0
    current: dict[str, int] | None = None
    for stage, ns in stamps:
        if stage == "read":
            if current is not None:
                skipped += 1
            current = {"read": ns}
        elif current is None or stage in current:
            continue  # not part of a publish, or a second one began without its read
        else:
            current[stage] = ns
            if "fanned" in current and "answered" in current:
                if _complete(current):
                    publishes.append(current)
                else:
                    skipped += 1
                current = None
    if current is not None:
        skipped += 1
    return publishes, skipped


def _complete(p: dict[str, int]) -> bool:
    if not all(stage in p for stage in STAGES):
        return False
    times = [p[stage] for stage in ORDER]
    return times == sorted(times) and p["commit"] <= p["committed"] <= p["answered"]


def spans_ms(publishes: Sequence[dict[str, int]]) -> dict[str, dict[str, float]]:
    return {f"{a} → {b}": summary([(p[b] - p[a]) / 1e6 for p in publishes]) for a, b in SPANS}


def run(args: argparse.Namespace) -> dict[str, Any]:
    setup = argparse.Namespace(readers=args.readers, url=None, pid=[], redis=args.redis, workers=1)
    with tempfile.TemporaryDirectory(prefix="pushhub-stages-") as tmp:
        stamps_path = Path(tmp) / "stamps.json"
        env = {"BENCH_STAMPS": str(stamps_path), "PUSHHUB_PUBLISH_RATE": "0"}
        with _run.servers(setup, say, env, module="bench._stamped") as stack:
            (pid,) = stack.server_pids
            assert stack.secret is not None  # a server started here
            load = fanout.parse_args([
                "--url", stack.base, "--pid", str(pid), "--token", issue_token(stack.secret),
                "--readers", str(args.readers), "--messages", str(args.messages),
                "--rate", str(args.rate), "--size", str(args.size),
            ])  # fmt: skip
            fanned = fanout.run(load)
            os.kill(pid, signal.SIGUSR1)
            stamps = _await_stamps(stamps_path)
    publishes, skipped = cut([(str(stage), int(ns)) for stage, ns in stamps])
    problems = list(fanned["problems"])
    if not publishes:
        problems.append(f"no publish could be cut from {len(stamps)} stamps")
    return {
        "bench": "stages", **_run.stamp(), "store": "redis" if args.redis else "embedded",
        "readers": args.readers, "messages": args.messages, "rate": args.rate, "size": args.size,
        "publishes": len(publishes), "skipped": skipped, "spans_ms": spans_ms(publishes),
        "first_delivery_ms": fanned.get("first_reader_ms"), "lost": fanned.get("lost"),
        "problems": problems, "status": "ok" if not problems else "failed",
    }  # fmt: skip


def _await_stamps(path: Path, timeout: float = 10.0) -> list[Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            stamps: list[Any] = orjson.loads(path.read_bytes())
            return stamps
        time.sleep(0.05)
    raise _run.BenchError(f"the server wrote no stamps within {timeout}s")


def table(result: dict[str, Any]) -> str:
    lines = [
        f"{result['store']}, {result['readers']} readers, {result['messages']} entries at "
        f"{result['rate']}/s: {result['publishes']} publishes cut, {result['skipped']} skipped",
        "",
        "| span | p50 ms | p95 ms | max ms |",
        "|---|---|---|---|",
    ]
    for name, s in result["spans_ms"].items():
        lines.append(f"| {name} | {s['p50']:.2f} | {s['p95']:.2f} | {s['max']:.2f} |")
    first = result["first_delivery_ms"]
    if first:
        lines += [
            "",
            f"publish sent → first reader has it (the load process): p50 {first['p50']:.2f} ms",
        ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = _run.parser("bench.stages", __doc__)
    p.add_argument("--readers", type=int, default=1000, help="WebSocket readers N (1000)")
    p.add_argument("--messages", type=int, default=100, help="entries published M (100)")
    p.add_argument("--rate", type=float, default=10.0, help="entries per second (10)")
    _run.add_simple_options(p)
    args = p.parse_args(argv)
    if args.readers < 1 or args.messages < 1 or args.rate <= 0 or args.size < 1:
        print("stages: --readers, --messages, --size ≥ 1 and --rate > 0", file=sys.stderr)
        return 2
    try:
        result = run(args)
    except (_run.BenchError, StartError) as exc:
        say(f"FAILED: {exc}")
        return 1
    print(json_line(result) if args.json else table(result))
    for problem in result["problems"]:
        say(f"PROBLEM: {problem}")
    return 0 if result["status"] == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
