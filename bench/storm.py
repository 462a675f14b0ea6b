"""Reconnect storm: N readers drop at once and all resume with since = head − B.

    python -m bench.storm --readers 1000 [--backlog 20] [--missed 20] [--redis] [--json]
    python -m bench.storm --url http://127.0.0.1:8000 --token T --pid PID [--redis-url URL]

Starts a pushhub server (embedded store, or its own redis-server with --redis) on a free
loopback port with PUSHHUB_PUBLISH_RATE=0, or uses a running one with --url. A separate load
process (`bench._loadgen`, storm mode in `bench._storm_load`) opens N WebSocket readers on one
blog. Then:

1. K = --backlog entries are published and every reader gets them (the blog is warm on the node);
2. every reader's socket is aborted at once (no close frame);
3. B = --missed entries are published, each answered 201 before the next;
4. after --settle seconds, all N reconnect at once with ?since=<last seq held>&epoch=E, at most
   --connect-concurrency handshakes in flight, and each must get exactly the B missed events,
   in seq order, once.

What it measures, from the start of that burst until every reader holds its B entries: the
time (per reader and for the last one), the server's CPU (utime + stime of its process tree, from
/proc) and, with --redis (or --redis-url), the commands Redis ran (INFO commandstats before and
after, less the benchmark's own INFO calls) and its CPU (INFO cpu). A node that keeps the blog
warm answers a resume from memory: the target is 0 Redis commands per reconnect. The drop to
resume gap (K publishes and --settle) must stay under PUSHHUB_LINGER (30 s), or the blog goes
cold and the resume reloads it, which is then what gets measured.

The started server runs with PUSHHUB_WATCHDOG_INTERVAL=600 (--server-env overrides it): its
watchdog reads each warm blog's head from the store every interval (one MGET) and pings the
pub/sub link when quiet, whatever the readers do; at the default 5 s one such command lands in a
one-second burst window one time in five, and would be charged to the resumes.

Columns of the table (--json prints one JSON line with the same numbers and more):

    store                   embedded, redis, or external (--url)
    N                       readers
    K / B                   backlog entries, then entries missed while dropped
    all caught up ms        burst start → the last reader holds all B (`all_caught_up_ms`)
    catch-up ms             burst start → each reader holds all B: p50/p95/p99/max (`catch_up_ms`)
    handshake ms            a reader's connect → its 101 (`handshake_ms`)
    server CPU s            burst start → all caught up (`server_cpu_s`)
    CPU ms / reconnect      that, per reader (`server_cpu_ms_per_reconnect`)
    Redis cmds / reconnect  commands Redis ran in the window, total and per reader
    lost / dup / ooo / resets  per resuming reader, by seq; a reset is a snapshot instead of
                            the events

Exits 0 when every reader got exactly its missed events, 1 if any count is not zero or
anything timed out (the report says what), 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import secrets
import signal
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from bench._payload import MIN_SIZE, make_body
from bench._proc import (
    cpu_delta,
    cpu_seconds,
    load_average,
    machine_busy_seconds,
    raise_nofile,
    tree,
)
from bench._report import _ms, _num, json_line
from bench._servers import PushhubServer, RedisServer, StartError
from bench._storm_redis import RedisInfo, RedisInfoError, RedisSample, RedisWindow, window
from bench.fanout import (
    FD_HEADROOM,
    LOOPBACK,
    BenchError,
    Deadline,
    LoadProcess,
    _mint,
    _own_cpu,
    _setting,
    _terminate,
    git_state,
    source_digest,
)

SERVER_DEFAULTS = {"PUSHHUB_PUBLISH_RATE": "0", "PUSHHUB_WATCHDOG_INTERVAL": "600"}
COUNTS = ("lost", "dup", "out_of_order", "resets", "unexpected_frames", "bad_frames")

_STARTED = time.monotonic()


def say(text: str) -> None:
    print(f"storm: [{time.monotonic() - _STARTED:6.1f}s] {text}", file=sys.stderr, flush=True)


# -- the processes -----------------------------------------------------------------------------


@dataclass
class Stack:
    base: str
    server_pids: list[int]
    redis_pid: int | None
    redis_addr: tuple[str, int] | None


def server_env(args: argparse.Namespace) -> dict[str, str]:
    return {**SERVER_DEFAULTS, **dict(args.server_env)}


@contextlib.contextmanager
def servers(args: argparse.Namespace, workdir: Path) -> Iterator[Stack]:
    """The server (and redis-server) of the run; the ones started here are stopped on exit."""
    if args.url:
        pids = [p for pid in args.pid for p in tree(pid)]
        yield Stack(args.url.rstrip("/"), pids, None, redis_addr(args.redis_url))
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
            workdir / "node", secret=args.secret, redis_url=redis.url if redis else None,
            extra_env=server_env(args),
        ).start()  # fmt: skip
        pids = tree(server.pid)
        say(f"server: pid {server.pid} ({len(pids)} process(es)) on {server.url}")
        addr = redis_addr(redis.url) if redis else None
        try:
            yield Stack(server.url, pids, redis.pid if redis else None, addr)
        except BenchError as exc:
            raise BenchError(f"{exc}\n--- server log ---\n{server.log_tail()}") from None
    finally:
        if server is not None:
            say("stopping the server")
            server.stop()
        if redis is not None:
            redis.stop()
        say("stopped")


def redis_addr(url: str | None) -> tuple[str, int] | None:
    if not url:
        return None
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 6379


def load_args(args: argparse.Namespace) -> argparse.Namespace:
    """What fanout's LoadProcess reads: the readers expect K backlog events after the snapshot."""
    return argparse.Namespace(**{**vars(args), "messages": args.backlog})


# -- measuring a window ------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    at: float
    cpu: dict[int, float]
    busy: float
    own: float
    redis: RedisSample | None


def sample(pids: Sequence[int], info: RedisInfo | None) -> Sample:
    redis = info.sample() if info is not None else None
    return Sample(time.monotonic(), cpu_seconds(pids), machine_busy_seconds(), _own_cpu(), redis)


def cpu_between(before: Sample, after: Sample, pids: Sequence[int]) -> float | None:
    picked = {p: before.cpu[p] for p in pids if p in before.cpu}
    return cpu_delta(picked, after.cpu) if picked else None


# -- the editor's side -------------------------------------------------------------------------


def create_blog(client: httpx.Client, slug: str) -> int:
    resp = client.put(f"/api/blogs/{slug}", json={"title": "Reconnect storm benchmark"})
    if resp.status_code not in (200, 201):
        raise BenchError(f"creating blog {slug}: HTTP {resp.status_code} {resp.text[:300]}")
    return int(resp.json()["seq"])


def publish_entries(
    client: httpx.Client, slug: str, count: int, label: str, size: int, deadline: Deadline
) -> list[int]:
    """POST `count` entries one after another, each answered 201 before the next; their seqs."""
    tag = secrets.token_hex(4)
    seqs = []
    for i in range(count):
        try:
            resp = client.post(
                f"/api/blogs/{slug}/entries",
                json={"title": f"storm {label} {i}", "body": make_body(i, time.time_ns(), size)},
                headers={"Idempotency-Key": f"storm-{tag}-{label}-{i}"},
                timeout=deadline.left(10.0),
            )
        except httpx.HTTPError as exc:
            raise BenchError(f"publishing {label} entry {i} failed: {exc!r}") from None
        if resp.status_code == 429:
            raise BenchError(
                f"publishing {label} entry {i}: HTTP 429: the server's publish rate limit"
                " (start it with PUSHHUB_PUBLISH_RATE=0)"
            )
        if resp.status_code != 201:
            raise BenchError(f"publishing {label} entry {i}: HTTP {resp.status_code} {resp.text}")
        seqs.append(int(resp.json()["seq"]))
    return seqs


def check_seqs(seqs: list[int], first: int, label: str, problems: list[str]) -> None:
    if seqs != list(range(first, first + len(seqs))):
        problems.append(f"{label} entries got seqs {seqs[:3]}…, not {first}..{first + len(seqs)}")


# -- the run -----------------------------------------------------------------------------------


@dataclass
class Phases:
    """What the load process reported, and the samples around the burst."""

    connected: dict[str, Any]
    drained: dict[str, Any]
    dropped: dict[str, Any]
    caught: dict[str, Any]
    resumed: dict[str, Any]
    final: dict[str, Any]
    head_at_resume: int
    dropped_at: float
    before: Sample
    after: Sample
    loadavg: float


def connect(load: LoadProcess, args: argparse.Namespace, deadline: Deadline) -> dict[str, Any]:
    conn = load.expect("connected", deadline.left(args.connect_phase_timeout + 15))
    if conn["ok"] != args.readers or conn["timed_out"]:
        raise BenchError(
            f"{conn['ok']} of {args.readers} readers connected"
            f" (timed out: {conn['timed_out']}); errors: {conn['errors']}"
        )
    say(f"all {conn['ok']} readers have their snapshot in {conn['connect_s']:.2f}s")
    return conn


def drain(load: LoadProcess, args: argparse.Namespace, deadline: Deadline) -> dict[str, Any]:
    load.send({"cmd": "drain", "timeout_s": deadline.left(args.drain_timeout)})
    return load.expect("drained", deadline.left(args.drain_timeout + 15))


@dataclass
class Run:
    """Everything one run's phases share."""

    args: argparse.Namespace
    stack: Stack
    client: httpx.Client
    slug: str
    head: int  # the blog's seq when the readers connected
    load: LoadProcess
    info: RedisInfo | None
    deadline: Deadline
    problems: list[str]

    def publish(self, count: int, label: str, first: int) -> None:
        seqs = publish_entries(self.client, self.slug, count, label, self.args.size, self.deadline)
        check_seqs(seqs, first, label, self.problems)


def storm(ctx: Run) -> Phases:
    args, load, deadline = ctx.args, ctx.load, ctx.deadline
    connected = connect(load, args, deadline)
    if connected["snapshot_seqs"] != [ctx.head] or connected["epochs"] != 1:
        ctx.problems.append(f"snapshots at seqs {connected['snapshot_seqs']}; head was {ctx.head}")
    say(f"publishing {args.backlog} backlog entries")
    ctx.publish(args.backlog, "backlog", ctx.head + 1)
    drained = drain(load, args, deadline)
    say(f"every reader has the backlog; dropping all {args.readers}")
    load.send({"cmd": "drop"})
    dropped = load.expect("dropped", deadline.left(30.0))
    dropped_at = time.monotonic()
    say(f"publishing {args.missed} entries while they are away")
    ctx.publish(args.missed, "missed", ctx.head + args.backlog + 1)
    # Let the server finish with the disconnects and the fan-out before the window opens.
    time.sleep(min(args.settle, deadline.left()))
    loadavg = load_average()
    measured = [*ctx.stack.server_pids, load.pid]
    before = sample(measured, ctx.info)
    say(f"resuming all {args.readers} at once (≤ {args.connect_concurrency} handshakes in flight)")
    load.send({"cmd": "resume", "missed": args.missed,
               "timeout_s": deadline.left(args.resume_timeout)})  # fmt: skip
    caught = load.expect("caught_up", deadline.left(args.resume_timeout + 15))
    after = sample(measured, ctx.info)
    resumed = load.expect("resumed", deadline.left(30.0))
    load.send({"cmd": "finish"})
    final = load.expect("result", deadline.left(30.0))
    head_at_resume = ctx.head + args.backlog + args.missed
    return Phases(connected, drained, dropped, caught, resumed, final,
                  head_at_resume, dropped_at, before, after, loadavg)  # fmt: skip


def run(args: argparse.Namespace) -> dict[str, Any]:
    deadline = Deadline(args.wall_limit)
    soft, hard = raise_nofile(args.readers + FD_HEADROOM)
    if soft < args.readers + 64:
        raise BenchError(f"fd limit {soft} (hard {hard}) is too low for {args.readers} readers")
    problems: list[str] = []
    with (
        tempfile.TemporaryDirectory(prefix="pushhub-storm-") as tmp,
        servers(args, Path(tmp)) as stack,
        redis_info(stack) as info,
    ):
        slug = f"storm-{secrets.token_hex(4)}"
        # A PUSHHUB_TOKEN from the shell is for some other server: never for the one started here.
        token = args.token if args.url else _mint(args.secret, slug)
        with httpx.Client(
            base_url=stack.base, trust_env=False, timeout=10.0,
            headers={"Authorization": f"Bearer {token}"},
        ) as client:  # fmt: skip
            head = create_blog(client, slug)
            ws_url = stack.base.replace("http://", "ws://", 1) + f"/ws/blogs/{slug}"
            say(f"connecting {args.readers} readers to {ws_url}")
            load = LoadProcess(load_args(args), ws_url, Path(tmp) / "loadgen.log")
            try:
                phases = storm(Run(args, stack, client, slug, head, load, info, deadline, problems))
            finally:
                load.stop()
    return report(args, stack, load.pid, phases, problems)


@contextlib.contextmanager
def redis_info(stack: Stack) -> Iterator[RedisInfo | None]:
    if stack.redis_addr is None:
        yield None
        return
    try:
        info = RedisInfo(*stack.redis_addr)
    except OSError as exc:
        raise BenchError(f"cannot reach redis at {stack.redis_addr}: {exc!r}") from None
    try:
        yield info
    finally:
        info.close()


# -- the result --------------------------------------------------------------------------------


def report(
    args: argparse.Namespace, stack: Stack, load_pid: int, p: Phases, problems: list[str]
) -> dict[str, Any]:
    resumed = p.resumed
    server_cpu = cpu_between(p.before, p.after, stack.server_pids)
    load_cpu = cpu_between(p.before, p.after, [load_pid])
    redis = window(p.before.redis, p.after.redis) if p.before.redis and p.after.redis else None
    result: dict[str, Any] = {
        "bench": "storm",
        **metadata(args),
        "readers": args.readers, "backlog": args.backlog, "missed": args.missed,
        "connect_concurrency": args.connect_concurrency, "size": args.size,
        "head_at_resume": p.head_at_resume, "since_seqs": resumed["since_seqs"],
        "all_caught_up_ms": resumed["all_caught_up_ms"],
        "catch_up_ms": resumed["catch_up_ms"], "handshake_ms": resumed["handshake_ms"],
        "resume_ms": resumed["resume_ms"],
        "caught_up": resumed["caught_up"], "failed": resumed["failed"],
        "errors": resumed["errors"], "timed_out": resumed["timed_out"],
        "max_handshakes_in_flight": resumed["max_in_flight"],
        **{key: resumed[key] for key in COUNTS},
        "server_pids": len(stack.server_pids),
        "server_cpu_s": server_cpu,
        "server_cpu_ms_per_reconnect": per_reader(server_cpu, args.readers, 1000),
        **redis_numbers(redis, args.readers),
        "loadgen_cpu_s": load_cpu,
        "window_s": p.after.at - p.before.at,
        "drop_to_resume_s": p.before.at - p.dropped_at,
        "connect_s": p.connected["connect_s"],
        "backlog_phase": backlog_phase(p.final),
        "loadavg_1m_before_burst": p.loadavg,
    }  # fmt: skip
    busy = p.after.busy - p.before.busy
    ours = sum(v for v in (server_cpu, load_cpu, result["redis_cpu_s"]) if v)
    # What other tenants of this shared box took from the same cores during the burst.
    result["other_cpu_s"] = max(0.0, busy - ours - (p.after.own - p.before.own))
    problems.extend(find_problems(args, p, result))
    result["problems"] = problems
    result["status"] = "ok" if not problems else "error"
    return result


def per_reader(value: float | int | None, readers: int, scale: float = 1.0) -> float | None:
    return value * scale / readers if value is not None else None


def redis_numbers(redis: RedisWindow | None, readers: int) -> dict[str, Any]:
    if redis is None:
        return dict.fromkeys(
            ("redis_commands", "redis_commands_per_reconnect", "redis_by_command", "redis_cpu_s")
        )
    return {
        "redis_commands": redis.total,
        "redis_commands_per_reconnect": per_reader(redis.total, readers),
        "redis_by_command": redis.by_command,
        "redis_cpu_s": redis.cpu_s,
        "redis_own_info_calls": redis.own_info,
    }


def backlog_phase(final: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("delivered", "expected_deliveries", "lost", "dup", "out_of_order",
            "unexpected_frames", "dropped")  # fmt: skip
    return {key: final[key] for key in keys}


def find_problems(args: argparse.Namespace, p: Phases, result: Mapping[str, Any]) -> list[str]:
    problems = []
    backlog = result["backlog_phase"]
    if p.drained["timed_out"]:
        problems.append(f"the backlog did not reach every reader in {args.drain_timeout:.0f}s")
    for key in ("lost", "dup", "out_of_order", "unexpected_frames", "dropped"):
        if backlog[key]:
            problems.append(f"backlog phase: {key} = {backlog[key]}")
    if p.dropped["readers"] != args.readers:
        problems.append(f"{p.dropped['readers']} of {args.readers} readers were open to drop")
    if result["since_seqs"] != [p.head_at_resume - args.missed]:
        problems.append(f"readers resumed from seqs {result['since_seqs']}")
    if p.caught["timed_out"]:
        problems.append(f"the resume did not finish in {args.resume_timeout:.0f}s")
    if result["caught_up"] != args.readers:
        problems.append(
            f"{result['caught_up']} of {args.readers} readers caught up;"
            f" failures: {result['errors']}"
        )
    problems.extend(f"{key} = {result[key]}" for key in COUNTS if result[key])
    if (result["redis_by_command"] or {}).get("info", 0) < 0:
        problems.append("INFO calls went missing from commandstats: the counts are unreliable")
    return problems


def metadata(args: argparse.Namespace) -> dict[str, Any]:
    """Where and what was measured, as fanout records it."""
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "store": "external" if args.url else ("redis" if args.redis else "embedded"),
        "redis_aof": False if args.redis else None,
        "client": args.client,
        "deflate": args.deflate,
        "server_env": {} if args.url else server_env(args),
        "git": git_state(),
        "pushhub_source": source_digest(),
        "python": platform.python_version(),
        "machine": {"node": platform.node(), "cpus": os.cpu_count(), "kernel": platform.release()},
    }


COLUMNS = (
    "store", "N", "K / B", "all caught up ms", "catch-up p50 / p95 / p99 / max ms",
    "handshake p50 / p99 ms", "server CPU s", "CPU ms / reconnect",
    "Redis cmds (/ reconnect)", "lost / dup / ooo / resets",
)  # fmt: skip


def markdown(result: Mapping[str, Any]) -> str:
    catch, shake = result["catch_up_ms"], result["handshake_ms"]
    redis = "–"
    if result["redis_commands"] is not None:
        redis = f"{result['redis_commands']} ({result['redis_commands_per_reconnect']:.3f})"
    cells = [
        result["store"], str(result["readers"]), f"{result['backlog']} / {result['missed']}",
        _ms(result["all_caught_up_ms"]),
        " / ".join(_ms(catch[k]) for k in ("p50", "p95", "p99", "max")),
        f"{_ms(shake['p50'])} / {_ms(shake['p99'])}",
        _num(result["server_cpu_s"], ".2f"), _num(result["server_cpu_ms_per_reconnect"], ".3f"),
        redis,
        " / ".join(str(result[k]) for k in ("lost", "dup", "out_of_order", "resets")),
    ]  # fmt: skip
    lines = [
        "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS),
        "| " + " | ".join(cells) + " |", "", notes(result),
    ]  # fmt: skip
    if result["problems"]:
        lines.append("PROBLEMS: " + "; ".join(result["problems"]))
    return "\n".join(lines)


def notes(result: Mapping[str, Any]) -> str:
    parts = [
        f"≤ {result['max_handshakes_in_flight']} handshakes in flight",
        f"resumed from seq {result['since_seqs']} to head {result['head_at_resume']}",
        f"dropped {result['drop_to_resume_s']:.1f} s before the burst",
        f"load process CPU {_num(result['loadgen_cpu_s'], '.2f')} s",
        f"other processes on the box used {result['other_cpu_s']:.2f} s CPU meanwhile"
        f" (load average {result['loadavg_1m_before_burst']:.2f} before)",
    ]
    if result["redis_by_command"] is not None:
        parts.append(f"Redis commands by name {result['redis_by_command'] or '{}'}")
        parts.append(f"redis-server CPU {result['redis_cpu_s']:.3f} s")
    return "; ".join(parts)


# -- command line ------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.storm", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    p.add_argument("--readers", type=int, default=1000, help="WebSocket readers N (1000)")
    p.add_argument("--backlog", type=int, default=20, help="entries before the drop K (20)")
    p.add_argument("--missed", type=int, default=20, help="entries while dropped B (20)")
    p.add_argument("--size", type=int, default=256, help="entry body in bytes (256)")
    p.add_argument("--redis", action="store_true", help="start a redis-server (AOF off) and use it")
    p.add_argument("--json", action="store_true", help="print one JSON line instead of a table")
    p.add_argument("--connect-concurrency", type=int, default=200, help="handshakes in flight")
    p.add_argument("--connect-timeout", type=float, default=15.0, help="per handshake, s (15)")
    p.add_argument("--connect-phase-timeout", type=float, default=90.0, help="all readers, s")
    p.add_argument("--drain-timeout", type=float, default=30.0, help="backlog to everyone, s")
    p.add_argument("--resume-timeout", type=float, default=60.0, help="the burst, s (60)")
    p.add_argument("--wall-limit", type=float, default=180.0, help="whole run, s (180)")
    p.add_argument("--settle", type=float, default=1.0, help="pause before the burst, s (1)")
    p.add_argument("--deflate", action="store_true", help="readers offer permessage-deflate")
    p.add_argument("--no-uvloop", action="store_true", help="plain asyncio loop in the load")
    p.add_argument("--client", choices=("lean", "websockets"), default="lean", help="readers")
    p.add_argument(
        "--server-env", type=_setting, action="append", default=[], metavar="PUSHHUB_X=V",
        help="a setting for the started server (repeat); overrides "
        + " ".join(f"{k}={v}" for k, v in SERVER_DEFAULTS.items()),
    )  # fmt: skip
    p.add_argument("--url", help="use this running server (loopback only) instead of starting one")
    p.add_argument("--pid", type=int, action="append", default=[], help="with --url: server pid")
    p.add_argument("--token", default=os.environ.get("PUSHHUB_TOKEN"), help="with --url")
    p.add_argument("--redis-url", help="with --url: the server's Redis, for INFO (loopback)")
    args = p.parse_args(argv)
    args.secret = None
    return args


def check_args(args: argparse.Namespace) -> None:
    problems = [*_check_sizes(args), *_check_target(args)]
    if problems:
        print("storm: " + "; ".join(problems), file=sys.stderr)
        raise SystemExit(2)


def _check_sizes(args: argparse.Namespace) -> list[str]:
    problems = []
    if min(args.readers, args.backlog, args.missed, args.connect_concurrency) < 1:
        problems.append("--readers, --backlog, --missed, --connect-concurrency must be ≥ 1")
    if args.size < MIN_SIZE:
        problems.append(f"--size must be at least {MIN_SIZE} (the body carries index and time)")
    timeouts = (args.connect_timeout, args.connect_phase_timeout, args.drain_timeout,
                args.resume_timeout, args.wall_limit)  # fmt: skip
    if min(timeouts) <= 0 or args.settle < 0:
        problems.append("timeouts and --wall-limit must be positive, --settle not negative")
    return problems


def _check_target(args: argparse.Namespace) -> list[str]:
    if not args.url:
        return ["--pid and --redis-url go with --url"] if args.pid or args.redis_url else []
    problems = []
    parts = urlsplit(args.url)
    if parts.scheme != "http" or parts.hostname not in LOOPBACK:
        problems.append("--url must be http:// on loopback (127.0.0.1, localhost or ::1)")
    if args.redis or args.server_env:
        problems.append("--redis and --server-env apply to a server the benchmark starts")
    if not args.token:
        problems.append("--url needs an editor token: --token or PUSHHUB_TOKEN")
    if args.redis_url:
        redis = urlsplit(args.redis_url)
        if redis.scheme != "redis" or redis.hostname not in LOOPBACK:
            problems.append("--redis-url must be redis:// on loopback")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    check_args(args)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        result = run(args)
    except (BenchError, StartError, RedisInfoError) as exc:
        say(f"FAILED: {exc}")
        if args.json:
            print(json_line(failed(args, str(exc))))
        return 1
    print(json_line(result) if args.json else markdown(result))
    for problem in result["problems"]:
        say(f"PROBLEM: {problem}")
    return 0 if result["status"] == "ok" else 1


def failed(args: argparse.Namespace, error: str) -> dict[str, Any]:
    return {
        "bench": "storm", "status": "error", "error": error, "problems": [error],
        "readers": args.readers, "backlog": args.backlog, "missed": args.missed,
        "connect_concurrency": args.connect_concurrency, **metadata(args),
    }  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
