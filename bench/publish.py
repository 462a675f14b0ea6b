"""Publish-path benchmark: entries/s accepted through the API with E concurrent editors, and
publish-to-first-delivery latency.

    python -m bench.publish [--editors 1 4] [--duration 10 | --messages M] [--readers 1]
                            [--redis] [--json]

For each editor count E (default: 1, then 4) a fresh server is started on a free loopback port
(`--redis` also starts its own redis-server, AOF off; otherwise the embedded SQLite store) with
PUSHHUB_PUBLISH_RATE=0, so the per-token publish rate limit does not cap the result; or
`--url/--token/--pid` point it at a running server, which keeps whatever limit it has. One blog
is created and `--warmup` entries are published (not measured). Then:

- R readers (`--readers`, default 1) hold a WebSocket on the blog, in their own process
  (`bench._firstdelivery`), so their work competes neither with the editors nor inside the
  server. They stamp each event frame's arrival with `time.time_ns()`.
- E editors, each a closed loop on its own keep-alive HTTP connection and editor token, send
  `POST /api/blogs/{blog}/entries`, wait for the answer, and send the next, for `--duration`
  seconds (or `--messages` entries each). Each request carries an `Idempotency-Key`, as
  pushhub-client's do, and a body that holds its send time (`bench._payload.make_body`). The
  editors run in this process (an event loop with a raw HTTP/1.1 client, `bench._publish_http`,
  cheaper than httpx), never in the server's.
- When the editors stop, the reader process is told which seqs the API accepted; it waits until
  every reader has all of them (`--drain-timeout`) and reports, per seq, the first and last
  arrival.

What is measured and checked, per editor count:

- accepted/s: 201 answers ÷ the window (first send to last answer).
- publish HTTP ms: request written → whole 201 answer read, per accepted publish.
- first delivery ms: the first reader's arrival time − the send time in the entry's body.
- server CPU ms / publish: utime+stime of the server's process tree (from /proc) from the first
  send until every reader has every entry, ÷ accepted. Also redis-server's, the reader
  process's, this process's, and what other tenants of the machine used meanwhile.
- errors: non-201 answers by status (and "timeout" / "connection" for no answer).
- correctness: every accepted entry reaches every reader exactly once and in seq order, with
  the accepted seqs contiguous after the warm-up; lost / dup / out-of-order (also unexpected
  seqs, gaps, and entries whose seq carried another entry's body: mismatched).

The table has one row per editor count: store | editors | readers | window s | accepted |
accepted/s | publish HTTP p50 / p95 / p99 / max ms | first delivery p50 / p95 / p99 / max ms |
server CPU ms / publish | errors | lost / dup / out-of-order | status; a line of notes follows
it. `--json` prints one JSON line per editor count instead, as each finishes (the fields are
those of the table and more; see `run_one`). Exits 1 if any run had a problem (an error answer,
anything lost, duplicated or out of order, a timeout), 2 on bad arguments.

Everything runs on loopback. The machine's cores are shared by the server, the readers, the
editors and (with --redis) redis-server, and by other tenants: read the CPU notes before
comparing runs. Timings are measured here, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import itertools
import math
import os
import platform
import queue
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
import orjson

from bench import _report
from bench._payload import MIN_SIZE, make_body
from bench._proc import (
    cpu_delta,
    cpu_seconds,
    load_average,
    machine_busy_seconds,
    raise_nofile,
    spawn,
)
from bench._publish_http import Connection, ProtocolError
from bench._servers import StartError
from bench._stats import summary
from bench.fanout import (
    FD_HEADROOM,
    LOOPBACK,
    ROOT,
    BenchError,
    Deadline,
    LoadProcess,
    _mint,
    _own_cpu,
    _setting,
    _terminate,
    git_state,
    servers,
    source_digest,
)

RATE_SETTING = "PUSHHUB_PUBLISH_RATE"
# An editor that gets this many failures in a row stops: the server is not taking publishes,
# and a closed loop on instant errors would only measure how fast it can refuse.
GIVE_UP_AFTER = 20
T = TypeVar("T")

_STARTED = time.monotonic()


def say(text: str) -> None:
    print(f"publish: [{time.monotonic() - _STARTED:6.1f}s] {text}", file=sys.stderr, flush=True)


# -- the reader process ------------------------------------------------------------------------


class ReaderProcess(LoadProcess):
    """`python -m bench._firstdelivery`, spoken to over the same JSON-lines pipes as fanout's
    load process (expect / send / stop are LoadProcess's)."""

    def __init__(self, args: argparse.Namespace, ws_url: str, log: Path) -> None:
        # Not LoadProcess.__init__: that one starts bench._loadgen.
        self.log = log
        cmd = [
            sys.executable, "-m", "bench._firstdelivery", "--url", ws_url,
            "--readers", str(args.readers), "--connect-timeout", str(args.connect_timeout),
            "--connect-phase-timeout", str(args.connect_phase_timeout),
            "--wait-timeout", str(args.wall_limit),
        ]  # fmt: skip
        if args.no_uvloop:
            cmd.append("--no-uvloop")
        with log.open("ab") as err:
            self.proc = spawn(
                cmd, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err
            )
        self.lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()


# -- the editors -------------------------------------------------------------------------------


@dataclass
class Accepted:
    seq: int
    index: int
    sent_ns: int


@dataclass
class Published:
    accepted: list[Accepted] = field(default_factory=list)
    http_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    per_editor: list[int] = field(default_factory=list)
    gave_up: int = 0
    window_s: float = 0.0


async def publish(
    base: str,
    tokens: Sequence[str],
    slug: str,
    args: argparse.Namespace,
    *,
    messages: int | None,
    duration: float | None,
    first_index: int,
    deadline: Deadline,
) -> Published:
    """One closed-loop editor per token: POST, wait for the answer, POST the next, until
    `messages` each or `duration` seconds are done."""
    parts = urlsplit(base)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = f"/api/blogs/{slug}/entries"
    tag = secrets.token_hex(4)
    indexes = itertools.count(first_index)
    out = Published(per_editor=[0] * len(tokens))
    conns = [Connection(host, port, {"Authorization": f"Bearer {t}"}) for t in tokens]

    async def editor(k: int, conn: Connection, start: float) -> None:
        stop_at = start + duration if duration is not None else math.inf
        sent = streak = 0
        while (messages is None or sent < messages) and time.perf_counter() < stop_at:
            index = next(indexes)
            sent += 1
            sent_ns = time.time_ns()
            body = orjson.dumps(
                {"title": f"publish bench {index}", "body": make_body(index, sent_ns, args.size)}
            )
            outcome: str | int
            t0 = time.perf_counter()
            try:
                async with asyncio.timeout(args.request_timeout):
                    status, data = await conn.request(
                        "POST", path, body, {"Idempotency-Key": f"pb-{tag}-{index}"}
                    )
                outcome = status
            except TimeoutError:
                outcome = "timeout"
            except (OSError, EOFError, asyncio.LimitOverrunError, ProtocolError, ValueError):
                outcome = "connection"
            t1 = time.perf_counter()
            out.window_s = max(out.window_s, t1 - start)
            if outcome == 201:
                try:
                    seq = int(orjson.loads(data)["seq"])
                except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                    outcome = "201 without a seq"
                else:
                    out.accepted.append(Accepted(seq, index, sent_ns))
                    out.http_ms.append((t1 - t0) * 1000)
                    out.per_editor[k] += 1
                    streak = 0
                    continue
            out.errors[str(outcome)] += 1
            streak += 1
            if streak >= GIVE_UP_AFTER:
                out.gave_up += 1
                return

    try:
        async with asyncio.timeout(deadline.left()):
            # Connections are opened before the clock starts: the window is publishing only.
            await asyncio.gather(*(c.connect() for c in conns))
            start = time.perf_counter()
            await asyncio.gather(*(editor(k, c, start) for k, c in enumerate(conns)))
    except TimeoutError:
        raise BenchError("publishing ran past the wall limit (--wall-limit)") from None
    except OSError as exc:
        raise BenchError(f"editors could not connect to {base}: {exc!r}") from None
    finally:
        for conn in conns:
            conn.close()
    return out


def run_loop(coro: Coroutine[Any, Any, T], args: argparse.Namespace) -> T:
    if not args.no_uvloop:
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.run(coro)
    return asyncio.run(coro)


# -- one run -----------------------------------------------------------------------------------


def store_name(args: argparse.Namespace) -> str:
    return "external" if args.url else ("redis" if args.redis else "embedded")


def run_metadata() -> dict[str, Any]:
    """When, on what and from which source a result was measured (fanout's git_state and
    source_digest, plus the machine: results from different boxes are not comparable)."""
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "git": git_state(),
        "pushhub_source": source_digest(),
        "python": platform.python_version(),
        "machine": machine(),
    }


def machine() -> dict[str, Any]:
    model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(), "cpu_model": model, "arch": platform.machine(),
        "kernel": platform.release(), "host": platform.node(),
    }  # fmt: skip


def create_blog(base: str, token: str, slug: str) -> int:
    with httpx.Client(
        base_url=base, trust_env=False, timeout=10.0,
        headers={"Authorization": f"Bearer {token}"},
    ) as client:  # fmt: skip
        try:
            resp = client.put(f"/api/blogs/{slug}", json={"title": "Publish benchmark"})
        except httpx.HTTPError as exc:
            raise BenchError(f"creating blog {slug}: {exc!r}") from None
    if resp.status_code not in (200, 201):
        raise BenchError(f"creating blog {slug}: HTTP {resp.status_code} {resp.text[:300]}")
    return int(resp.json()["seq"])


def run_one(args: argparse.Namespace, editors: int) -> dict[str, Any]:
    """One editor count, on its own server (unless --url): the result's JSON fields."""
    deadline = Deadline(args.wall_limit)
    soft, hard = raise_nofile(args.readers + FD_HEADROOM)
    if soft < args.readers + 64:
        raise BenchError(f"fd limit {soft} (hard {hard}) is too low for {args.readers} readers")
    problems: list[str] = []
    with (
        tempfile.TemporaryDirectory(prefix="pushhub-bench-") as tmp,
        servers(args, Path(tmp)) as (base, server_pids, redis_pid),
    ):
        slug = f"pub-{secrets.token_hex(4)}"
        # One token per editor, as separate people would have (the rate limit is per token).
        tokens = [args.token or _mint(args.secret, slug) for _ in range(editors)]
        head = create_blog(base, tokens[0], slug)
        if args.warmup:
            warm = run_loop(
                publish(
                    base, tokens[:1], slug, args, messages=args.warmup, duration=None,
                    first_index=0, deadline=deadline,
                ),
                args,
            )  # fmt: skip
            if len(warm.accepted) != args.warmup:
                raise BenchError(
                    f"warm-up: {len(warm.accepted)} of {args.warmup} accepted;"
                    f" errors {dict(warm.errors)}"
                )
            head = max(a.seq for a in warm.accepted)

        ws_url = base.replace("http://", "ws://", 1) + f"/ws/blogs/{slug}"
        say(f"{editors} editor(s); connecting {args.readers} reader(s) to {ws_url}")
        reader = ReaderProcess(args, ws_url, Path(tmp) / "readers.log")
        try:
            conn = reader.expect("connected", deadline.left(args.connect_phase_timeout + 15))
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
            measured = [*server_pids, reader.pid, *([redis_pid] if redis_pid else [])]
            cpu_before = cpu_seconds(measured)
            busy_before, own_before, load_before = (
                machine_busy_seconds(),
                _own_cpu(),
                load_average(),
            )
            what = f"{args.messages} entries each" if args.messages else f"{args.duration:g} s"
            say(f"publishing with {editors} editor(s) for {what}")
            pub = run_loop(
                publish(
                    base, tokens, slug, args, messages=args.messages,
                    duration=None if args.messages else args.duration,
                    first_index=args.warmup, deadline=deadline,
                ),
                args,
            )  # fmt: skip
            say(f"{len(pub.accepted)} accepted in {pub.window_s:.2f} s; draining the readers")
            reader.send({
                "cmd": "drain", "seqs": [a.seq for a in pub.accepted],
                "timeout_s": deadline.left(args.drain_timeout),
            })  # fmt: skip
            drained = reader.expect("drained", deadline.left(args.drain_timeout + 15))
            cpu_after = cpu_seconds(measured)
            busy = machine_busy_seconds() - busy_before
            own = _own_cpu() - own_before
            res = reader.expect("result", deadline.left(30.0))
        finally:
            reader.stop()

    def cpu_of(pids: Sequence[int]) -> float | None:
        picked = {p: cpu_before[p] for p in pids if p in cpu_before}
        return cpu_delta(picked, cpu_after) if picked else None

    def per_publish_ms(cpu_s: float | None) -> float | None:
        return cpu_s / accepted * 1000 if cpu_s is not None and accepted else None

    accepted = len(pub.accepted)
    first_ms, all_ms, mismatched = delivery_latencies(pub.accepted, res)
    server_cpu, redis_cpu = cpu_of(server_pids), cpu_of([redis_pid]) if redis_pid else None
    readers_cpu = cpu_of([reader.pid])
    result: dict[str, Any] = {
        "bench": "publish",
        **run_metadata(),
        "store": store_name(args), "redis_aof": False if args.redis else None,
        "workers": args.workers, "editors": editors, "readers": args.readers, "size": args.size,
        "messages_per_editor": args.messages,
        "duration_requested_s": None if args.messages else args.duration,
        "warmup": args.warmup,
        "duration_s": pub.window_s,
        "accepted": accepted,
        "accepted_per_s": accepted / pub.window_s if pub.window_s > 0 else 0.0,
        "accepted_per_editor": pub.per_editor,
        "publish_http_ms": summary(pub.http_ms),
        "first_delivery_ms": summary(first_ms),
        "all_readers_delivery_ms": summary(all_ms),
        "server_cpu_s": server_cpu,
        "server_cpu_ms_per_publish": per_publish_ms(server_cpu),
        "redis_cpu_s": redis_cpu,
        "redis_cpu_ms_per_publish": per_publish_ms(redis_cpu),
        "readers_cpu_s": readers_cpu,
        "bench_cpu_s": own,
        "machine_busy_cpu_s": busy,
        "loadavg_1m_before_publish": load_before,
        "errors": dict(pub.errors),
        "editors_gave_up": pub.gave_up,
        "readers_connected": res["readers_connected"],
        **{k: res[k] for k in ("lost", "dup", "out_of_order", "unexpected", "gaps")},
        "mismatched": mismatched,
        **{k: res[k] for k in ("unexpected_frames", "bad_frames", "dropped", "drop_reasons")},
        "drain_s": drained["waited_s"],
        "drain_timed_out": drained["timed_out"],
        "server_pids": len(server_pids),
        "server_env": dict(args.server_env),
    }  # fmt: skip
    ours = sum(v for v in (server_cpu, redis_cpu, readers_cpu) if v)
    # What other tenants of this shared box took from the same cores meanwhile.
    result["other_cpu_s"] = max(0.0, busy - ours - own)
    problems += check(result, sorted(a.seq for a in pub.accepted), head)
    result["problems"] = problems
    result["status"] = "ok" if not problems else "error"
    return result


def delivery_latencies(
    accepted: Sequence[Accepted], res: dict[str, Any]
) -> tuple[list[float], list[float], int]:
    """(first-reader ms, all-readers ms, mismatched) per accepted entry that was delivered.

    Mismatched: the frame with that seq carried another entry's body, i.e. the seq the API
    answered with is not the seq its readers saw the entry under."""
    by_seq = {row[0]: row for row in res["seqs"]}
    everyone = res["readers_connected"]
    first_ms: list[float] = []
    all_ms: list[float] = []
    mismatched = 0
    for a in accepted:
        row = by_seq.get(a.seq)
        if row is None:
            continue  # never delivered: counted as lost by the reader process
        _, index, sent_ns, first_ns, last_ns, have = row
        if index != a.index or sent_ns != a.sent_ns:
            mismatched += 1
            continue
        first_ms.append((first_ns - a.sent_ns) / 1e6)
        if have == everyone:
            all_ms.append((last_ns - a.sent_ns) / 1e6)
    return first_ms, all_ms, mismatched


def check(result: dict[str, Any], seqs: Sequence[int], head: int) -> list[str]:
    """What is wrong with a finished run (empty: nothing)."""
    problems: list[str] = []
    if not result["accepted"]:
        problems.append("no publish was accepted")
    if result["errors"]:
        problems.append(f"publishes not accepted, by status: {result['errors']}")
    if "429" in result["errors"]:
        problems.append(
            f"429s come from the server's publish rate limit: a started server takes"
            f" --server-env {RATE_SETTING}=0 (the default), a running one needs it set"
        )
    if result["editors_gave_up"]:
        problems.append(f"{result['editors_gave_up']} editor(s) gave up after errors in a row")
    if list(seqs) != list(range(head + 1, head + 1 + len(seqs))):
        problems.append(f"accepted seqs are not contiguous from {head + 1}: {list(seqs[:5])}…")
    if result["drain_timed_out"]:
        problems.append("the readers did not get every entry before --drain-timeout")
    for key in (
        "lost", "dup", "out_of_order", "unexpected", "gaps", "mismatched",
        "unexpected_frames", "dropped",
    ):  # fmt: skip
        if result[key]:
            problems.append(f"{key} = {result[key]}")
    if result["first_delivery_ms"]["count"] != result["accepted"]:
        problems.append(
            f"first delivery measured for {result['first_delivery_ms']['count']}"
            f" of {result['accepted']} accepted entries"
        )
    return problems


def failed_result(args: argparse.Namespace, editors: int, error: str) -> dict[str, Any]:
    return {
        "bench": "publish", **run_metadata(), "store": store_name(args), "editors": editors,
        "readers": args.readers, "status": "error", "problems": [error], "error": error,
    }  # fmt: skip


# -- output ------------------------------------------------------------------------------------

COLUMNS = (
    "store", "editors", "readers", "window s", "accepted", "accepted/s",
    "publish HTTP p50 / p95 / p99 / max ms", "first delivery p50 / p95 / p99 / max ms",
    "server CPU ms / publish", "errors", "lost / dup / out-of-order", "status",
)  # fmt: skip


def _quantiles(s: dict[str, Any]) -> str:
    return " / ".join(_report._ms(s.get(k)) for k in ("p50", "p95", "p99", "max"))


def label(result: dict[str, Any]) -> str:
    # The rate-limit setting is on in every started run: it says nothing about this one.
    env = {k: v for k, v in (result.get("server_env") or {}).items() if k != RATE_SETTING}
    return _report.store_label({**result, "server_env": env})


def row(result: dict[str, Any]) -> str:
    if "accepted" not in result:
        cells = [label(result), str(result["editors"]), str(result["readers"])]
        cells += ["–"] * (len(COLUMNS) - 4) + ["error"]
        return "| " + " | ".join(cells) + " |"
    errors = ", ".join(f"{k}: {v}" for k, v in result["errors"].items()) or "0"
    cells = [
        label(result),
        str(result["editors"]),
        str(result["readers"]),
        f"{result['duration_s']:.2f}",
        str(result["accepted"]),
        _report._num(result["accepted_per_s"], ",.1f"),
        _quantiles(result["publish_http_ms"]),
        _quantiles(result["first_delivery_ms"]),
        _report._num(result["server_cpu_ms_per_publish"], ".2f"),
        errors,
        f"{result['lost']} / {result['dup']} / {result['out_of_order']}",
        result["status"],
    ]
    return "| " + " | ".join(cells) + " |"


def notes(result: dict[str, Any]) -> str:
    if "accepted" not in result:
        return f"{result['editors']} editor(s): ERROR {result['error']}"
    parts = [
        f"{result['editors']} editor(s): accepted per editor {result['accepted_per_editor']}",
        f"server CPU {_report._num(result['server_cpu_s'], '.2f')} s",
    ]
    if result["redis_cpu_s"] is not None:
        parts.append(
            f"redis-server CPU {result['redis_cpu_s']:.2f} s"
            f" ({_report._num(result['redis_cpu_ms_per_publish'], '.2f')} ms / publish)"
        )
    if result["readers"] > 1:
        parts.append(f"all readers p50 {_report._ms(result['all_readers_delivery_ms']['p50'])} ms")
    parts += [
        f"reader process CPU {_report._num(result['readers_cpu_s'], '.2f')} s",
        f"editors (this process) CPU {result['bench_cpu_s']:.2f} s",
        f"other processes on the box {result['other_cpu_s']:.2f} s CPU meanwhile"
        f" (load average {result['loadavg_1m_before_publish']:.2f} before)",
    ]
    text = "; ".join(parts)
    if result["problems"]:
        text += "\n  PROBLEMS: " + "; ".join(result["problems"])
    return text


def table(results: Sequence[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += [row(r) for r in results]
    lines.append("")
    lines += [notes(r) for r in results]
    return "\n".join(lines)


# -- command line ------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.publish", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    p.add_argument(
        "--editors", type=int, nargs="+", default=[1, 4], metavar="E",
        help="concurrent editors; one run per value (default: 1 4)",
    )  # fmt: skip
    p.add_argument("--readers", type=int, default=1, help="WebSocket readers R (1)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of publishing (10)")
    p.add_argument("--messages", type=int, help="entries per editor, instead of --duration")
    p.add_argument("--warmup", type=int, default=20, help="entries published first, unmeasured")
    p.add_argument("--size", type=int, default=256, help="entry body in bytes (256)")
    p.add_argument("--redis", action="store_true", help="start a redis-server (AOF off) and use it")
    p.add_argument("--workers", type=int, default=1, help="server worker processes (needs --redis)")
    p.add_argument("--json", action="store_true", help="one JSON line per editor count")
    p.add_argument("--request-timeout", type=float, default=10.0, help="per publish, s (10)")
    p.add_argument("--connect-timeout", type=float, default=10.0, help="per reader, s (10)")
    p.add_argument("--connect-phase-timeout", type=float, default=60.0, help="all readers, s")
    p.add_argument("--drain-timeout", type=float, default=30.0, help="after the last publish, s")
    p.add_argument(
        "--wall-limit", type=float,
        help="one editor count's whole run, s (default: --duration + 120, or 600 with --messages)",
    )  # fmt: skip
    p.add_argument("--no-uvloop", action="store_true", help="plain asyncio loops")
    p.add_argument(
        "--server-env", type=_setting, action="append", default=[], metavar="PUSHHUB_X=V",
        help=f"a setting for the started server (repeat); {RATE_SETTING}=0 unless given here",
    )  # fmt: skip
    p.add_argument("--url", help="use this running server (loopback only) instead of starting one")
    p.add_argument(
        "--pid", type=int, action="append", default=[], help="with --url: server pid to measure"
    )
    p.add_argument("--token", default=os.environ.get("PUSHHUB_TOKEN"), help="with --url")
    args = p.parse_args(argv)
    problems = check_args(args)
    if problems:
        p.error("; ".join(problems))  # exit 2
    if args.wall_limit is None:
        args.wall_limit = 600.0 if args.messages else args.duration + 120.0
    if not args.url and not any(name == RATE_SETTING for name, _ in args.server_env):
        args.server_env = [(RATE_SETTING, "0"), *args.server_env]
    args.secret = None
    return args


def check_args(args: argparse.Namespace) -> list[str]:
    problems = []
    if any(e < 1 for e in args.editors):
        problems.append("--editors must be at least 1")
    if args.readers < 1:
        problems.append("--readers must be at least 1")
    if args.messages is not None and args.messages < 1:
        problems.append("--messages must be at least 1")
    if not (math.isfinite(args.duration) and args.duration > 0):
        problems.append("--duration must be a positive number of seconds")
    if args.warmup < 0:
        problems.append("--warmup must be 0 or more")
    if args.size < MIN_SIZE:
        problems.append(f"--size must be at least {MIN_SIZE} (the body carries index and time)")
    if args.workers < 1:
        problems.append("--workers must be at least 1")
    for name in ("request_timeout", "connect_timeout", "connect_phase_timeout", "drain_timeout"):
        if not getattr(args, name) > 0:
            problems.append(f"--{name.replace('_', '-')} must be positive")
    if args.wall_limit is not None and not args.wall_limit > 0:
        problems.append("--wall-limit must be positive")
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
    elif args.pid:
        problems.append("--pid goes with --url")
    elif args.workers > 1 and not args.redis:
        problems.append("--workers > 1 needs --redis (the embedded store serves one process)")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    results: list[dict[str, Any]] = []
    for editors in args.editors:
        try:
            result = run_one(args, editors)
        except (BenchError, StartError) as exc:
            say(f"FAILED with {editors} editor(s): {exc}")
            result = failed_result(args, editors, str(exc))
        results.append(result)
        if args.json:
            print(_report.json_line(result), flush=True)
        for problem in result["problems"]:
            say(f"PROBLEM ({editors} editor(s)): {problem}")
    if not args.json:
        print(table(results))
    return 0 if all(r["status"] == "ok" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
