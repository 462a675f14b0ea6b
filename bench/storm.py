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
import os
import platform
import secrets
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from bench import _run
from bench._payload import make_body
from bench._report import _ms, _num
from bench._run import BenchError, Deadline
from bench._storm_redis import RedisInfo, RedisInfoError, RedisSample, RedisWindow, window

SERVER_DEFAULTS = {"PUSHHUB_PUBLISH_RATE": "0", "PUSHHUB_WATCHDOG_INTERVAL": "600"}
COUNTS = ("lost", "dup", "out_of_order", "resets", "unexpected_frames", "bad_frames")

say = _run.sayer("storm")


def server_env(args: argparse.Namespace) -> dict[str, str]:
    return {**SERVER_DEFAULTS, **dict(args.server_env)}


# -- the editor's side -------------------------------------------------------------------------


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
        hint = "(start it with PUSHHUB_PUBLISH_RATE=0)"
        seqs.append(_run.entry_seq(resp, f"publishing {label} entry {i}", hint))
    return seqs


def check_seqs(seqs: list[int], first: int, label: str, problems: list[str]) -> None:
    if seqs != list(range(first, first + len(seqs))):
        problems.append(f"{label} entries got seqs {seqs[:3]}…, not {first}..{first + len(seqs)}")


# -- the run -----------------------------------------------------------------------------------


@dataclass
class Phases:
    """What the load process reported, and what was measured around the burst."""

    connected: dict[str, Any]
    drained: dict[str, Any]
    dropped: dict[str, Any]
    caught: dict[str, Any]
    resumed: dict[str, Any]
    final: dict[str, Any]
    head_at_resume: int
    dropped_at: float
    window: _run.Window
    redis: RedisWindow | None


@dataclass
class Run:
    """Everything one run's phases share."""

    args: argparse.Namespace
    stack: _run.Stack
    client: httpx.Client
    slug: str
    head: int  # the blog's seq when the readers connected
    load: _run.LoadPipe
    info: RedisInfo | None
    deadline: Deadline
    problems: list[str]

    def publish(self, count: int, label: str, first: int) -> None:
        seqs = publish_entries(self.client, self.slug, count, label, self.args.size, self.deadline)
        check_seqs(seqs, first, label, self.problems)

    def redis_sample(self) -> RedisSample | None:
        return self.info.sample() if self.info is not None else None


def storm(ctx: Run) -> Phases:
    args, load, deadline = ctx.args, ctx.load, ctx.deadline
    connected = load.connected(args, deadline, ctx.head, ctx.problems)
    say(f"all {connected['ok']} readers have their snapshot in {connected['connect_s']:.2f}s")
    say(f"publishing {args.backlog} backlog entries")
    ctx.publish(args.backlog, "backlog", ctx.head + 1)
    drained = load.drain(args, deadline)
    say(f"every reader has the backlog; dropping all {args.readers}")
    load.send({"cmd": "drop"})
    dropped = load.expect("dropped", deadline.left(30.0))
    dropped_at = time.monotonic()
    say(f"publishing {args.missed} entries while they are away")
    ctx.publish(args.missed, "missed", ctx.head + args.backlog + 1)
    # Let the server finish with the disconnects and the fan-out before the window opens.
    time.sleep(min(args.settle, deadline.left()))
    measured = [*ctx.stack.server_pids, load.pid]
    redis_before, before = ctx.redis_sample(), _run.sample(measured)
    say(f"resuming all {args.readers} at once (≤ {args.connect_concurrency} handshakes in flight)")
    load.send({"cmd": "resume", "missed": args.missed,
               "timeout_s": deadline.left(args.resume_timeout)})  # fmt: skip
    caught = load.expect("caught_up", deadline.left(args.resume_timeout + 15))
    redis_after, after = ctx.redis_sample(), _run.sample(measured)
    resumed = load.expect("resumed", deadline.left(30.0))
    load.send({"cmd": "finish"})
    final = load.expect("result", deadline.left(30.0))
    head_at_resume = ctx.head + args.backlog + args.missed
    redis = window(redis_before, redis_after) if redis_before and redis_after else None
    return Phases(connected, drained, dropped, caught, resumed, final,
                  head_at_resume, dropped_at, _run.Window(before, after), redis)  # fmt: skip


def run(args: argparse.Namespace) -> dict[str, Any]:
    deadline = Deadline(args.wall_limit)
    problems: list[str] = []
    with (
        _run.servers(args, say, server_env(args)) as stack,
        redis_info(stack.redis_url or args.redis_url) as info,
    ):
        slug = f"storm-{secrets.token_hex(4)}"
        # A PUSHHUB_TOKEN from the shell is for some other server: never for the one started here.
        token = args.token if args.url else _run.mint(stack.secret, slug)
        with _run.editor_client(stack.base, token) as client:
            head = _run.create_blog(client, slug, "Reconnect storm benchmark")
            url = _run.ws_url(stack.base, slug)
            say(f"connecting {args.readers} readers to {url}")
            # The readers expect the K backlog events after their snapshot.
            load = _run.start_loadgen(args, url, stack.workdir / "loadgen.log", args.backlog)
            try:
                phases = storm(Run(args, stack, client, slug, head, load, info, deadline, problems))
            finally:
                load.stop()
    return report(args, stack, load.pid, phases, problems)


@contextlib.contextmanager
def redis_info(url: str | None) -> Iterator[RedisInfo | None]:
    """A connection for INFO to the server's Redis, when it has one."""
    if not url:
        yield None
        return
    parts = urlsplit(url)
    addr = parts.hostname or "127.0.0.1", parts.port or 6379
    try:
        info = RedisInfo(*addr)
    except OSError as exc:
        raise BenchError(f"cannot reach redis at {addr}: {exc!r}") from None
    try:
        yield info
    finally:
        info.close()


# -- the result --------------------------------------------------------------------------------


def report(
    args: argparse.Namespace, stack: _run.Stack, load_pid: int, p: Phases, problems: list[str]
) -> dict[str, Any]:
    resumed = p.resumed
    server_cpu = p.window.cpu(stack.server_pids)
    load_cpu = p.window.cpu([load_pid])
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
        **redis_numbers(p.redis, args.readers),
        "loadgen_cpu_s": load_cpu,
        "window_s": p.window.after.at - p.window.before.at,
        "drop_to_resume_s": p.window.before.at - p.dropped_at,
        "connect_s": p.connected["connect_s"],
        "backlog_phase": backlog_phase(p.final),
        "loadavg_1m_before_burst": p.window.before.loadavg,
    }  # fmt: skip
    result["other_cpu_s"] = p.window.others(server_cpu, load_cpu, result["redis_cpu_s"])
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
    """Where and what was measured."""
    return {
        **_run.stamp(),
        "store": _run.store(args),
        "redis_aof": False if args.redis else None,
        "client": args.client,
        "deflate": args.deflate,
        "server_env": {} if args.url else server_env(args),
        # Less than bench.publish records (`_run.machine`), as storm's results always had it.
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
    p = _run.parser("bench.storm", __doc__)
    _run.add_loadgen_options(p)
    p.add_argument("--backlog", type=int, default=20, help="entries before the drop K (20)")
    p.add_argument("--missed", type=int, default=20, help="entries while dropped B (20)")
    p.add_argument("--resume-timeout", type=float, default=60.0, help="the burst, s (60)")
    p.add_argument("--settle", type=float, default=1.0, help="pause before the burst, s (1)")
    p.add_argument("--redis-url", help="with --url: the server's Redis, for INFO (loopback)")
    defaults = " ".join(f"{k}={v}" for k, v in SERVER_DEFAULTS.items())
    env_help = f"a setting for the started server (repeat); overrides {defaults}"
    _run.add_options(p, workers=False, env_help=env_help)
    return p.parse_args(argv)


def check_args(args: argparse.Namespace) -> None:
    problems = []
    if min(args.readers, args.backlog, args.missed, args.connect_concurrency) < 1:
        problems.append("--readers, --backlog, --missed, --connect-concurrency must be ≥ 1")
    timeouts = ("resume_timeout", "connect_timeout", "connect_phase_timeout", "drain_timeout")
    problems += _run.positive(args, *timeouts, "wall_limit")
    if args.settle < 0:
        problems.append("--settle must not be negative")
    problems += _run.check_options(args)
    if not args.url:
        if args.pid or args.redis_url:
            problems.append("--pid and --redis-url go with --url")
    elif args.redis_url:
        redis = urlsplit(args.redis_url)
        if redis.scheme != "redis" or redis.hostname not in _run.LOOPBACK:
            problems.append("--redis-url must be redis:// on loopback")
    if problems:
        print("storm: " + "; ".join(problems), file=sys.stderr)
        raise SystemExit(2)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    check_args(args)
    return _run.main(args, say, run, failed, markdown, errors=(RedisInfoError,))


def failed(args: argparse.Namespace, error: str) -> dict[str, Any]:
    return {
        "bench": "storm", "status": "error", "error": error, "problems": [error],
        "readers": args.readers, "backlog": args.backlog, "missed": args.missed,
        "connect_concurrency": args.connect_concurrency, **metadata(args),
    }  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
