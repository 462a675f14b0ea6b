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
- first delivery ms: the first reader's arrival time − the send time in the entry's body (read
  from its html, since readers' frames carry no Markdown source).
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
import itertools
import math
import secrets
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from bench import _report, _run
from bench._payload import make_body
from bench._proc import run_loop
from bench._publish_http import Connection, ProtocolError
from bench._run import BenchError, Deadline
from bench._servers import StartError
from bench._stats import summary

RATE_SETTING = "PUSHHUB_PUBLISH_RATE"
# An editor that gets this many failures in a row stops: the server is not taking publishes,
# and a closed loop on instant errors would only measure how fast it can refuse.
GIVE_UP_AFTER = 20

say = _run.sayer("publish")


def start_readers(args: argparse.Namespace, url: str, log: Path) -> _run.LoadPipe:
    """`python -m bench._firstdelivery`: the R readers, in their own process."""
    cmd = [
        sys.executable, "-m", "bench._firstdelivery", "--url", url,
        "--readers", str(args.readers), "--connect-timeout", str(args.connect_timeout),
        "--connect-phase-timeout", str(args.connect_phase_timeout),
        "--wait-timeout", str(args.wall_limit),
    ]  # fmt: skip
    if args.no_uvloop:
        cmd.append("--no-uvloop")
    return _run.LoadPipe(cmd, log)


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


# -- one run -----------------------------------------------------------------------------------


def run_one(args: argparse.Namespace, editors: int) -> dict[str, Any]:
    """One editor count, on its own server (unless --url): the result's JSON fields."""
    deadline = Deadline(args.wall_limit)
    problems: list[str] = []
    with _run.servers(args, say, dict(args.server_env)) as stack:
        base, server_pids = stack.base, stack.server_pids
        slug = f"pub-{secrets.token_hex(4)}"
        # One token per editor, as separate people would have (the rate limit is per token).
        tokens = [args.token or _run.mint(stack.secret, slug) for _ in range(editors)]
        with _run.editor_client(base, tokens[0]) as client:
            head = _run.create_blog(client, slug, "Publish benchmark")
        if args.warmup:
            warm = run_loop(
                publish(
                    base, tokens[:1], slug, args, messages=args.warmup, duration=None,
                    first_index=0, deadline=deadline,
                ),
                uvloop=not args.no_uvloop,
            )  # fmt: skip
            if len(warm.accepted) != args.warmup:
                raise BenchError(
                    f"warm-up: {len(warm.accepted)} of {args.warmup} accepted;"
                    f" errors {dict(warm.errors)}"
                )
            head = max(a.seq for a in warm.accepted)

        url = _run.ws_url(base, slug)
        say(f"{editors} editor(s); connecting {args.readers} reader(s) to {url}")
        reader = start_readers(args, url, stack.workdir / "readers.log")
        try:
            reader.connected(args, deadline, head, problems)
            redis = [stack.redis_pid] if stack.redis_pid else []
            measured = [*server_pids, reader.pid, *redis]
            before = _run.sample(measured)
            what = f"{args.messages} entries each" if args.messages else f"{args.duration:g} s"
            say(f"publishing with {editors} editor(s) for {what}")
            pub = run_loop(
                publish(
                    base, tokens, slug, args, messages=args.messages,
                    duration=None if args.messages else args.duration,
                    first_index=args.warmup, deadline=deadline,
                ),
                uvloop=not args.no_uvloop,
            )  # fmt: skip
            say(f"{len(pub.accepted)} accepted in {pub.window_s:.2f} s; draining the readers")
            drained = reader.drain(args, deadline, seqs=[a.seq for a in pub.accepted])
            window = _run.Window(before, _run.sample(measured))
            res = reader.expect("result", deadline.left(30.0))
        finally:
            reader.stop()

    def per_publish_ms(cpu_s: float | None) -> float | None:
        return cpu_s / accepted * 1000 if cpu_s is not None and accepted else None

    accepted = len(pub.accepted)
    first_ms, all_ms, mismatched = delivery_latencies(pub.accepted, res)
    server_cpu, redis_cpu = window.cpu(server_pids), window.cpu(redis) if redis else None
    readers_cpu = window.cpu([reader.pid])
    result: dict[str, Any] = {
        "bench": "publish",
        **_run.stamp(),
        "machine": _run.machine(),
        "store": _run.store(args), "redis_aof": False if args.redis else None,
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
        "bench_cpu_s": window.own,
        "machine_busy_cpu_s": window.busy,
        "loadavg_1m_before_publish": before.loadavg,
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
    result["other_cpu_s"] = window.others(server_cpu, redis_cpu, readers_cpu)
    problems += check(result, sorted(a.seq for a in pub.accepted), head)
    result["problems"] = problems
    result["status"] = "ok" if not problems else "error"
    return result


def delivery_latencies(
    accepted: Sequence[Accepted], res: dict[str, Any]
) -> tuple[list[float], list[float], int]:
    """(first-reader ms, all-readers ms, mismatched) per accepted entry that was delivered.

    Mismatched: the frame with that seq carried another entry's stamp, i.e. the seq the API
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
        "bench": "publish", **_run.stamp(), "machine": _run.machine(), "store": _run.store(args),
        "editors": editors,
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
    p = _run.parser("bench.publish", __doc__)
    p.add_argument(
        "--editors", type=int, nargs="+", default=[1, 4], metavar="E",
        help="concurrent editors; one run per value (default: 1 4)",
    )  # fmt: skip
    p.add_argument("--readers", type=int, default=1, help="WebSocket readers R (1)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of publishing (10)")
    p.add_argument("--messages", type=int, help="entries per editor, instead of --duration")
    p.add_argument("--warmup", type=int, default=20, help="entries published first, unmeasured")
    p.add_argument("--request-timeout", type=float, default=10.0, help="per publish, s (10)")
    _run.add_options(
        p, env_help=f"a setting for the started server (repeat); {RATE_SETTING}=0 unless given",
        connect_timeout=10.0, phase_timeout=60.0, wall_limit=None,
        wall_help="one editor count's whole run, s"
        " (default: --duration + 120, or 600 with --messages)",
    )  # fmt: skip
    args = p.parse_args(argv)
    problems = check_args(args)
    if problems:
        p.error("; ".join(problems))  # exit 2
    if args.wall_limit is None:
        args.wall_limit = 600.0 if args.messages else args.duration + 120.0
    if not args.url and not any(name == RATE_SETTING for name, _ in args.server_env):
        args.server_env = [(RATE_SETTING, "0"), *args.server_env]
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
    timeouts = ("request_timeout", "connect_timeout", "connect_phase_timeout", "drain_timeout")
    problems += _run.positive(args, *timeouts)
    if args.wall_limit is not None:
        problems += _run.positive(args, "wall_limit")
    problems += _run.check_options(args)
    if not args.url and args.pid:
        problems.append("--pid goes with --url")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    _run.exit_on_sigterm()
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
