"""Server CPU per HTTP request, by endpoint: what the HTTP stack costs against what a publish does.

    python -m bench.requestcpu [--requests 300] [--gap 0.05] [--redis] [--json]

Starts a pushhub server (its own redis-server with --redis) with no readers, creates a blog,
and for each of `GET /healthz` (the HTTP stack and little else), `GET /api/blogs/{blog}` (a
store read) and `POST /api/blogs/{blog}/entries` (a publish: token, revocation check, Markdown,
sanitizer, the write) sends --warmup requests, then --requests more one at a time, --gap
seconds apart (0: a closed loop), and divides the server's CPU (utime + stime from /proc) over
those by their number. With a gap, the server's idle work over the run (keepalive and uvicorn
ticks, the watchdog) is part of each figure; `idle` measures that alone over the same time.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from bench import _run
from bench._proc import cpu_seconds
from bench._report import json_line
from bench._servers import StartError

say = _run.sayer("requestcpu")


def measure(pids: Sequence[int], n: int, gap: float, call: Callable[[int], None]) -> float:
    """µs of server CPU per call over n calls, gap seconds apart."""
    before = sum(cpu_seconds(pids).values())
    for i in range(n):
        call(i)
        if gap:
            time.sleep(gap)
    return (sum(cpu_seconds(pids).values()) - before) / n * 1e6


def run(args: argparse.Namespace) -> dict[str, Any]:
    setup = argparse.Namespace(readers=0, url=None, pid=[], redis=args.redis, workers=1)
    with _run.servers(setup, say, {"PUSHHUB_PUBLISH_RATE": "0"}) as stack:
        slug = f"cpu-{secrets.token_hex(4)}"
        token = _run.mint(stack.secret, slug)
        with _run.editor_client(stack.base, token) as client:
            _run.create_blog(client, slug, "Request CPU")
            body = "x" * args.size

            def ok(resp: httpx.Response) -> None:
                if resp.status_code >= 300:
                    raise _run.BenchError(f"HTTP {resp.status_code}: {resp.text[:200]}")

            calls: dict[str, Callable[[int], None]] = {
                "idle": lambda i: None,
                "GET /healthz": lambda i: ok(client.get("/healthz")),
                "GET /api/blogs/{blog}": lambda i: ok(client.get(f"/api/blogs/{slug}")),
                "POST /api/blogs/{blog}/entries": lambda i: ok(
                    client.post(f"/api/blogs/{slug}/entries", json={"title": f"t{i}", "body": body})
                ),
            }
            per_request: dict[str, float] = {}
            for name, call in calls.items():
                for i in range(args.warmup):
                    call(i)
                per_request[name] = measure(stack.server_pids, args.requests, args.gap, call)
                say(f"{name}: {per_request[name]:.0f} µs of server CPU per request")
    return {
        "bench": "requestcpu", **_run.stamp(), "store": "redis" if args.redis else "embedded",
        "requests": args.requests, "gap_s": args.gap, "warmup": args.warmup, "size": args.size,
        "server_cpu_us_per_request": per_request, "problems": [], "status": "ok",
    }  # fmt: skip


def table(result: dict[str, Any]) -> str:
    lines = [
        f"{result['store']}, {result['requests']} requests each, gap {result['gap_s']} s",
        "",
        "| request | server CPU µs / request |",
        "|---|---|",
    ]
    for name, us in result["server_cpu_us_per_request"].items():
        lines.append(f"| {name} | {us:,.0f} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = _run.parser("bench.requestcpu", __doc__)
    p.add_argument("--requests", type=int, default=300, help="measured per endpoint (300)")
    p.add_argument("--warmup", type=int, default=100, help="sent first, not measured (100)")
    p.add_argument("--gap", type=float, default=0.05, help="s between requests; 0: closed loop")
    _run.add_simple_options(p)
    args = p.parse_args(argv)
    if args.requests < 1 or args.warmup < 0 or args.gap < 0 or args.size < 1:
        print("requestcpu: --requests ≥ 1, --warmup ≥ 0, --gap ≥ 0, --size ≥ 1", file=sys.stderr)
        return 2
    try:
        result = run(args)
    except (_run.BenchError, StartError, httpx.HTTPError) as exc:
        say(f"FAILED: {exc}")
        return 1
    print(json_line(result) if args.json else table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
