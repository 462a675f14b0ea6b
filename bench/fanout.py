"""Fan-out benchmark: one blog, N WebSocket readers, M entries published over the HTTP API.

    python -m bench.fanout --readers 1000 --messages 50 [--redis] [--json]

The server runs as its own process (started here on a free loopback port, or an existing one
with --url); the readers live in a separate load process (`bench._loadgen`). Each entry's body
carries its send time, so every reader measures publish-to-delivery latency, and checks by seq
that nothing is lost, duplicated or out of order. Server CPU (utime+stime) and RSS come from
/proc. Exits 1 if any delivery is wrong or anything timed out, 2 on bad arguments or setup.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from bench import _report, _run
from bench._payload import make_body
from bench._proc import rss_kb
from bench._run import BenchError, Deadline
from bench._stats import summary

say = _run.sayer("fanout")


def check_args(args: argparse.Namespace) -> None:
    problems = []
    if args.readers < 1 or args.messages < 1:
        problems.append("--readers and --messages must be at least 1")
    if args.rate <= 0:
        problems.append("--rate must be positive")
    if args.connect_concurrency < 1 or args.publish_concurrency < 1:
        problems.append("--connect-concurrency and --publish-concurrency must be at least 1")
    problems += _run.check_options(args)
    if problems:
        print("fanout: " + "; ".join(problems), file=sys.stderr)
        raise SystemExit(2)


@dataclass
class Published:
    seqs: list[int]
    http_ms: list[float]
    rate: float  # achieved: (M - 1) / (last send - first send)
    blocked: int  # sends that had to wait for a free slot (all --publish-concurrency in flight)
    jitter_ms: float  # the latest a send went out after its scheduled time


async def publish(
    base: str, token: str, slug: str, args: argparse.Namespace, deadline: Deadline
) -> Published:
    """POST M entries on a fixed schedule, open loop: a slow answer does not delay the next send
    (up to --publish-concurrency in flight), so a slow server cannot lower the offered load."""
    tag = secrets.token_hex(4)
    slots = asyncio.Semaphore(args.publish_concurrency)
    seqs: list[int] = []
    http_ms: list[float] = []
    blocked = 0
    jitter = 0.0

    async def one(client: httpx.AsyncClient, i: int) -> None:
        try:
            sent_ns = time.time_ns()
            t0 = time.perf_counter()
            resp = await client.post(
                f"/api/blogs/{slug}/entries",
                json={"title": f"bench entry {i}", "body": make_body(i, sent_ns, args.size)},
                headers={"Idempotency-Key": f"bench-{tag}-{i}"},
            )
            http_ms.append((time.perf_counter() - t0) * 1000)
        except httpx.HTTPError as exc:
            raise BenchError(f"publishing entry {i} failed: {exc!r}") from None
        finally:
            slots.release()
        hint = "is below --rate (a started server takes --server-env PUSHHUB_PUBLISH_RATE=N)"
        seqs.append(_run.entry_seq(resp, f"publishing entry {i}", hint))

    limits = httpx.Limits(max_connections=args.publish_concurrency)
    async with httpx.AsyncClient(
        base_url=base, trust_env=False, limits=limits, timeout=10.0,
        headers={"Authorization": f"Bearer {token}"},
    ) as client:  # fmt: skip
        loop = asyncio.get_running_loop()
        start = last = loop.time()
        first = start
        async with asyncio.timeout(deadline.left()), asyncio.TaskGroup() as tasks:
            for i in range(args.messages):
                at = start + i / args.rate
                await asyncio.sleep(max(0.0, at - loop.time()))
                blocked += slots.locked()
                await slots.acquire()
                last = loop.time()
                jitter = max(jitter, last - at)
                if i == 0:
                    first = last
                tasks.create_task(one(client, i))
    rate = (args.messages - 1) / (last - first) if args.messages > 1 and last > first else args.rate
    return Published(sorted(seqs), http_ms, rate, blocked, jitter * 1000)


def run(args: argparse.Namespace) -> dict[str, Any]:
    deadline = Deadline(args.wall_limit)
    problems: list[str] = []
    with _run.servers(args, say, dict(args.server_env)) as stack:
        base, server_pids = stack.base, stack.server_pids
        slug = f"bench-{secrets.token_hex(4)}"
        token = args.token or _run.mint(stack.secret, slug)
        with _run.editor_client(base, token) as client:
            head = _run.create_blog(client, slug, "Fan-out benchmark")
            rss_before = rss_kb(server_pids) if server_pids else None

            url = _run.ws_url(base, slug)
            say(f"connecting {args.readers} readers to {url}")
            load = _run.start_loadgen(args, url, stack.workdir / "loadgen.log", args.messages)
            try:
                conn = load.connected(args, deadline, head, problems)
                say(f"all {conn['ok']} readers have their snapshot in {conn['connect_s']:.2f}s")
                # Let the server settle after the connect burst before sampling its memory.
                time.sleep(min(args.settle, deadline.left()))
                rss_connected = rss_kb(server_pids) if server_pids else None

                redis = [stack.redis_pid] if stack.redis_pid else []
                measured = [*server_pids, load.pid, *redis]
                before = _run.sample(measured)
                say(f"publishing {args.messages} entries at {args.rate}/s")
                try:
                    pub = asyncio.run(publish(base, token, slug, args, deadline))
                except* BenchError as group:
                    raise group.exceptions[0] from None
                except* TimeoutError:
                    raise BenchError("publishing ran past the wall limit") from None
                expected = list(range(head + 1, head + args.messages + 1))
                if pub.seqs != expected:
                    problems.append(f"publish seqs {pub.seqs[:3]}… are not {head + 1}..")
                if pub.blocked:
                    problems.append(
                        f"{pub.blocked} publishes waited for a slot: the server is behind"
                        " (or raise --publish-concurrency)"
                    )
                drained = load.drain(args, deadline)
                window = _run.Window(before, _run.sample(measured))
                rss_after = rss_kb(server_pids) if server_pids else None
                if drained["timed_out"]:
                    problems.append(f"drain timed out after {args.drain_timeout:.0f}s")
                say("all delivered; closing the readers")
                load.send({"cmd": "finish"})
                res = load.expect("result", deadline.left(30.0))
            finally:
                load.stop()

    server_cpu = window.cpu(server_pids)
    delivered = res["delivered"]
    result: dict[str, Any] = {
        "bench": "fanout",
        **_run.stamp(),
        "store": _run.store(args),
        "redis_aof": False if args.redis else None,
        "workers": args.workers, "deflate": args.deflate, "client": args.client,
        "readers": args.readers, "messages": args.messages, "rate": args.rate, "size": args.size,
        **{k: v for k, v in res.items() if k != "phase"},
        "publish_http_ms": summary(pub.http_ms), "publish_rate": pub.rate,
        "publish_blocked": pub.blocked, "publish_jitter_ms": pub.jitter_ms,
        "connect_s": conn["connect_s"], "max_handshakes_in_flight": conn["max_in_flight"],
        "server_pids": len(server_pids),
        "server_cpu_s": server_cpu,
        "server_cpu_us_per_delivery": (
            server_cpu / delivered * 1e6 if server_cpu is not None and delivered else None
        ),
        "loadgen_cpu_s": window.cpu([load.pid]),
        "redis_cpu_s": window.cpu(redis) if redis else None,
        "machine_busy_cpu_s": window.busy,
        "loadavg_1m_before_publish": before.loadavg,
        "rss_kb": {"before": rss_before, "connected": rss_connected, "after": rss_after},
        "kb_per_reader": (
            (rss_connected - rss_before) / args.readers
            if rss_before is not None and rss_connected is not None else None
        ),
        "server_env": dict(args.server_env),
    }  # fmt: skip
    ours = (server_cpu, result["loadgen_cpu_s"], result["redis_cpu_s"])
    result["other_cpu_s"] = window.others(*ours)
    for key in ("lost", "dup", "out_of_order", "unexpected_frames", "dropped", "bad_frames"):
        if result[key]:
            problems.append(f"{key} = {result[key]}")
    if delivered != res["expected_deliveries"]:
        problems.append(f"delivered {delivered} of {res['expected_deliveries']}")
    result["problems"] = problems
    result["status"] = "ok" if not problems else "failed"
    return result


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = _run.parser("bench.fanout", __doc__)
    _run.add_loadgen_options(p)
    p.add_argument("--messages", type=int, default=50, help="entries published M (50)")
    p.add_argument("--rate", type=float, default=10.0, help="entries per second (10)")
    p.add_argument("--publish-concurrency", type=int, default=32, help="POSTs in flight (32)")
    p.add_argument("--settle", type=float, default=1.0, help="pause before sampling RSS, s")
    _run.add_options(
        p, env_help="a setting for the started server (repeat), e.g. PUSHHUB_WIRE=asgi"
    )
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    check_args(args)
    return _run.main(args, say, run, failed, _report.markdown)


def failed(args: argparse.Namespace, error: str) -> dict[str, Any]:
    return {
        "bench": "fanout", "status": "error", "error": error,
        "git": _run.git_state(), "pushhub_source": _run.source_digest(),
    }  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
