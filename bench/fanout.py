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
import contextlib
import datetime
import hashlib
import platform
import queue
import resource
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO, Any
from urllib.parse import urlsplit

import httpx

from bench import _report
from bench._payload import MIN_SIZE, make_body
from bench._proc import (
    cpu_delta,
    cpu_seconds,
    end_tree,
    load_average,
    machine_busy_seconds,
    raise_nofile,
    rss_kb,
    spawn,
    tree,
)
from bench._servers import PushhubServer, RedisServer, StartError, tail
from bench._stats import summary

ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
FD_HEADROOM = 256


class BenchError(Exception):
    """The run cannot go on; the message says why (with a log tail when there is one)."""


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds

    def left(self, cap: float | None = None) -> float:
        left = self.at - time.monotonic()
        if left <= 0:
            raise BenchError("the total wall limit (--wall-limit) was reached")
        return left if cap is None else min(left, cap)


_STARTED = time.monotonic()


def say(text: str) -> None:
    print(f"fanout: [{time.monotonic() - _STARTED:6.1f}s] {text}", file=sys.stderr, flush=True)


# -- the load process --------------------------------------------------------------------------


class LoadProcess:
    """`python -m bench._loadgen` and its JSON-lines conversation (see that module)."""

    def __init__(self, args: argparse.Namespace, ws_url: str, log: Path) -> None:
        self.log = log
        cmd = [
            sys.executable, "-m", "bench._loadgen", "--url", ws_url,
            "--readers", str(args.readers), "--messages", str(args.messages),
            "--connect-concurrency", str(args.connect_concurrency),
            "--connect-timeout", str(args.connect_timeout),
            "--connect-phase-timeout", str(args.connect_phase_timeout),
            "--wait-timeout", str(args.wall_limit), "--client", args.client,
        ]  # fmt: skip
        if args.deflate:
            cmd.append("--deflate")
        if args.no_uvloop:
            cmd.append("--no-uvloop")
        with log.open("ab") as err:
            self.proc = spawn(
                cmd, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err
            )
        self.lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        import json

        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            with contextlib.suppress(ValueError):
                self.lines.put(json.loads(raw))
        self.lines.put(None)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def expect(self, phase: str, timeout: float) -> dict[str, Any]:
        try:
            doc = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise BenchError(f"the load process sent no {phase!r} line in {timeout:.0f}s") from None
        if doc is None:
            code = self.proc.poll()
            raise BenchError(
                f"the load process ended (exit {code}) before {phase!r}:\n{tail(self.log)}"
            )
        if doc.get("phase") != phase:
            raise BenchError(f"the load process said {doc.get('phase')!r}, expected {phase!r}")
        return doc

    def send(self, doc: dict[str, Any]) -> None:
        import json

        stdin: IO[bytes] | None = self.proc.stdin
        assert stdin is not None
        try:
            stdin.write((json.dumps(doc) + "\n").encode())
            stdin.flush()
        except BrokenPipeError:
            raise BenchError(f"the load process is gone:\n{tail(self.log)}") from None

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()  # EOF tells it to close its readers and leave
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            end_tree(self.proc, grace=5.0)


# -- the run -----------------------------------------------------------------------------------


def check_args(args: argparse.Namespace) -> None:
    problems = []
    if args.readers < 1 or args.messages < 1:
        problems.append("--readers and --messages must be at least 1")
    if args.rate <= 0:
        problems.append("--rate must be positive")
    if args.size < MIN_SIZE:
        problems.append(f"--size must be at least {MIN_SIZE} (the body carries index and time)")
    if args.connect_concurrency < 1 or args.publish_concurrency < 1:
        problems.append("--connect-concurrency and --publish-concurrency must be at least 1")
    if args.workers < 1:
        problems.append("--workers must be at least 1")
    if args.url:
        if args.server_env:
            problems.append("--server-env applies to a server the benchmark starts: not with --url")
        parts = urlsplit(args.url)
        if parts.scheme != "http" or parts.hostname not in LOOPBACK:
            problems.append("--url must be http:// on loopback (127.0.0.1, localhost or ::1)")
        if args.redis or args.workers > 1:
            problems.append("--redis and --workers start a server: not with --url")
        if not args.token:
            problems.append("--url needs an editor token: --token or PUSHHUB_TOKEN")
    elif args.workers > 1 and not args.redis:
        problems.append("--workers > 1 needs --redis (the embedded store serves one process)")
    if problems:
        raise SystemExit("fanout: " + "; ".join(problems))


@contextlib.contextmanager
def servers(args: argparse.Namespace, workdir: Path) -> Iterator[tuple[str, list[int], int | None]]:
    """(base URL, server pids to measure, redis-server pid) for the run; stopped on exit."""
    if args.url:
        pids = [p for pid in args.pid for p in tree(pid)]
        yield args.url.rstrip("/"), pids, None
        return
    redis: RedisServer | None = None
    server: PushhubServer | None = None
    try:
        if args.redis:
            redis = RedisServer(workdir / "redis").start()
            say(f"store: {redis.describe()} on {redis.url}")
        else:
            say("store: embedded (SQLite in a temporary data directory)")
        args.secret = secrets.token_urlsafe(48)
        server = PushhubServer(
            workdir / "node", secret=args.secret, workers=args.workers,
            redis_url=redis.url if redis else None, extra_env=dict(args.server_env),
        ).start()  # fmt: skip
        # uvicorn's workers may still be starting when /healthz first answers.
        time.sleep(0.5 if args.workers > 1 else 0.0)
        pids = tree(server.pid)
        say(f"server: pid {server.pid} ({len(pids)} process(es)) on {server.url}")
        try:
            yield server.url, pids, redis.pid if redis else None
        except BenchError as exc:
            raise BenchError(f"{exc}\n--- server log ---\n{server.log_tail()}") from None
    finally:
        if server is not None:
            say("stopping the server")
            server.stop()
        if redis is not None:
            redis.stop()
        say("stopped")


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
        if resp.status_code == 429:
            raise BenchError(
                f"publishing entry {i}: HTTP 429 {resp.text[:200]}: the server's publish rate limit"
                " is below --rate (a started server takes --server-env PUSHHUB_PUBLISH_RATE=N)"
            )
        if resp.status_code != 201:
            raise BenchError(f"publishing entry {i}: HTTP {resp.status_code} {resp.text[:300]}")
        seqs.append(int(resp.json()["seq"]))

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
    soft, hard = raise_nofile(args.readers + FD_HEADROOM)
    if soft < args.readers + 64:
        raise BenchError(
            f"fd limit {soft} (hard {hard}) is too low for {args.readers} readers;"
            " lower --readers or raise the hard limit"
        )
    problems: list[str] = []
    with (
        tempfile.TemporaryDirectory(prefix="pushhub-bench-") as tmp,
        servers(args, Path(tmp)) as (base, server_pids, redis_pid),
    ):
        workdir = Path(tmp)
        slug = f"bench-{secrets.token_hex(4)}"
        token = args.token or _mint(args.secret, slug)
        with httpx.Client(
            base_url=base, trust_env=False, timeout=10.0,
            headers={"Authorization": f"Bearer {token}"},
        ) as client:  # fmt: skip
            resp = client.put(f"/api/blogs/{slug}", json={"title": "Fan-out benchmark"})
            if resp.status_code not in (200, 201):
                raise BenchError(f"creating blog {slug}: HTTP {resp.status_code} {resp.text[:300]}")
            head = int(resp.json()["seq"])
            rss_before = rss_kb(server_pids) if server_pids else None

            ws_url = base.replace("http://", "ws://", 1) + f"/ws/blogs/{slug}"
            say(f"connecting {args.readers} readers to {ws_url}")
            load = LoadProcess(args, ws_url, workdir / "loadgen.log")
            try:
                conn = load.expect("connected", deadline.left(args.connect_phase_timeout + 15))
                if conn["ok"] != args.readers or conn["timed_out"]:
                    raise BenchError(
                        f"{conn['ok']} of {args.readers} readers connected"
                        f" (timed out: {conn['timed_out']}); errors: {conn['errors']}"
                    )
                if conn["snapshot_seqs"] != [head] or conn["epochs"] != 1:
                    problems.append(
                        f"snapshots at seqs {conn['snapshot_seqs']} in {conn['epochs']} epoch(s);"
                        f" the blog's head was {head}"
                    )
                say(f"all {conn['ok']} readers have their snapshot in {conn['connect_s']:.2f}s")
                # Let the server settle after the connect burst before sampling its memory.
                time.sleep(min(args.settle, deadline.left()))
                rss_connected = rss_kb(server_pids) if server_pids else None

                measured = [*server_pids, load.pid, *([redis_pid] if redis_pid else [])]
                cpu_before = cpu_seconds(measured)
                busy_before, own_before, load_before = (
                    machine_busy_seconds(),
                    _own_cpu(),
                    load_average(),
                )
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
                load.send({"cmd": "drain", "timeout_s": deadline.left(args.drain_timeout)})
                drained = load.expect("drained", deadline.left(args.drain_timeout + 15))
                cpu_after = cpu_seconds(measured)
                busy = machine_busy_seconds() - busy_before
                own = _own_cpu() - own_before
                rss_after = rss_kb(server_pids) if server_pids else None
                if drained["timed_out"]:
                    problems.append(f"drain timed out after {args.drain_timeout:.0f}s")
                say("all delivered; closing the readers")
                load.send({"cmd": "finish"})
                res = load.expect("result", deadline.left(30.0))
            finally:
                load.stop()

    def cpu_of(pids: Sequence[int]) -> float | None:
        picked = {p: cpu_before[p] for p in pids if p in cpu_before}
        return cpu_delta(picked, cpu_after) if picked else None

    server_cpu = cpu_of(server_pids)
    delivered = res["delivered"]
    result: dict[str, Any] = {
        "bench": "fanout",
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "store": "external" if args.url else ("redis" if args.redis else "embedded"),
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
        "loadgen_cpu_s": cpu_of([load.pid]),
        "redis_cpu_s": cpu_of([redis_pid]) if redis_pid else None,
        "machine_busy_cpu_s": busy,
        "loadavg_1m_before_publish": load_before,
        "rss_kb": {"before": rss_before, "connected": rss_connected, "after": rss_after},
        "kb_per_reader": (
            (rss_connected - rss_before) / args.readers
            if rss_before is not None and rss_connected is not None else None
        ),
        "server_env": dict(args.server_env),
        "git": git_state(),
        "pushhub_source": source_digest(),
        "python": platform.python_version(),
    }  # fmt: skip
    ours = sum(v for v in (server_cpu, result["loadgen_cpu_s"], result["redis_cpu_s"]) if v)
    # What other tenants of this shared box took from the same cores during the publish phase.
    result["other_cpu_s"] = max(0.0, busy - ours - own)
    for key in ("lost", "dup", "out_of_order", "unexpected_frames", "dropped", "bad_frames"):
        if result[key]:
            problems.append(f"{key} = {result[key]}")
    if delivered != res["expected_deliveries"]:
        problems.append(f"delivered {delivered} of {res['expected_deliveries']}")
    result["problems"] = problems
    result["status"] = "ok" if not problems else "failed"
    return result


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _mint(secret: str | None, slug: str) -> str:
    from pushhub.auth import issue_token

    if not secret:
        raise BenchError("no editor token: pass --token (or PUSHHUB_TOKEN) with --url")
    return issue_token(secret, subject="bench", blogs=[slug], ttl_seconds=3600)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    import os

    p = argparse.ArgumentParser(
        prog="python -m bench.fanout", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    p.add_argument("--readers", type=int, default=1000, help="WebSocket readers N (1000)")
    p.add_argument("--messages", type=int, default=50, help="entries published M (50)")
    p.add_argument("--rate", type=float, default=10.0, help="entries per second (10)")
    p.add_argument("--size", type=int, default=256, help="entry body in bytes (256)")
    p.add_argument("--redis", action="store_true", help="start a redis-server (AOF off) and use it")
    p.add_argument("--workers", type=int, default=1, help="server worker processes (needs --redis)")
    p.add_argument("--json", action="store_true", help="print one JSON line instead of a table")
    p.add_argument("--connect-concurrency", type=int, default=200, help="handshakes in flight")
    p.add_argument("--publish-concurrency", type=int, default=32, help="POSTs in flight (32)")
    p.add_argument("--connect-timeout", type=float, default=15.0, help="per reader, s (15)")
    p.add_argument("--connect-phase-timeout", type=float, default=90.0, help="all readers, s")
    p.add_argument("--drain-timeout", type=float, default=30.0, help="after the last publish, s")
    p.add_argument("--wall-limit", type=float, default=180.0, help="whole run, s (180)")
    p.add_argument("--settle", type=float, default=1.0, help="pause before sampling RSS, s")
    p.add_argument("--deflate", action="store_true", help="readers offer permessage-deflate")
    p.add_argument("--no-uvloop", action="store_true", help="plain asyncio loop in the load")
    p.add_argument(
        "--client", choices=("lean", "websockets"), default="lean",
        help="readers: websockets' sans-I/O protocol on asyncio.Protocol (lean, default) or the"
        " websockets.asyncio client (about 1.4x the load's CPU per delivery)",
    )  # fmt: skip
    p.add_argument(
        "--server-env",
        type=_setting,
        action="append",
        default=[],
        metavar="PUSHHUB_X=V",
        help="a setting for the started server (repeat), e.g. PUSHHUB_WIRE=asgi",
    )
    p.add_argument("--url", help="use this running server (loopback only) instead of starting one")
    p.add_argument(
        "--pid", type=int, action="append", default=[], help="with --url: server pid to measure"
    )
    p.add_argument("--token", default=os.environ.get("PUSHHUB_TOKEN"), help="with --url")
    args = p.parse_args(argv)
    args.secret = None
    return args


def _setting(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.startswith("PUSHHUB_"):
        raise argparse.ArgumentTypeError("use PUSHHUB_NAME=value")
    if name in ("PUSHHUB_SECRET", "PUSHHUB_DATA_DIR", "PUSHHUB_REDIS_URL"):
        raise argparse.ArgumentTypeError(f"{name} is set by the benchmark itself")
    return name, value


def git_state() -> str | None:
    """The commit measured, with `+dirty` when pushhub/ has uncommitted changes (read-only)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
            timeout=5, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "pushhub"], cwd=ROOT, capture_output=True,
            text=True, timeout=5, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")


def source_digest() -> str:
    """A short digest of pushhub/'s source as measured: the tree may hold uncommitted work."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "pushhub").rglob("*")):
        if path.is_file() and path.suffix in (".py", ".lua"):
            digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def _terminate(signum: int, frame: FrameType | None) -> None:
    # Turn SIGTERM into an exception so that the finally blocks stop the server and load.
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    check_args(args)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        result = run(args)
    except (BenchError, StartError) as exc:
        say(f"FAILED: {exc}")
        if args.json:
            failed: dict[str, Any] = {"bench": "fanout", "status": "error", "error": str(exc)}
            failed.update(git=git_state(), pushhub_source=source_digest())
            print(_report.json_line(failed))
        return 1
    if args.json:
        print(_report.json_line(result))
    else:
        print(_report.markdown(result))
    for problem in result["problems"]:
        say(f"PROBLEM: {problem}")
    return 0 if result["status"] == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
