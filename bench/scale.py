"""Worker scaling: deliveries per second with 1 and 2 server workers on Redis, same run.

    python -m bench.scale --readers 10000 --messages 50 --workers 1 2 --runs 2 [--json]

On a two-core machine a load process that reads takes one of the cores the second worker
would need (`bench.fanout`'s readers cost more CPU per delivery than the server), so more
workers cannot show up as more deliveries per second. Here the readers are parked
(`bench._parked`): after their snapshot they sleep, the kernel queues what the server writes,
and each socket's receive time stamp tells afterwards when its last frame arrived. While the
server works the load process takes no CPU, and the cores are the server's.

For each run and each worker count: a redis-server and a pushhub server with that many
workers, one blog, N parked readers, then M entries published as fast as the server takes them
(up to --publish-concurrency in flight). When the server's CPU goes quiet every reader is read
and checked by seq. Deliveries/s = N × M / (last arrival − first publish). The worker counts
of a run alternate, and each run's ratio is against the first count of the same run. Exits 1
if any delivery is wrong or anything timed out, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import multiprocessing
import secrets
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

import orjson

from bench import _run
from bench._payload import MIN_SIZE, make_body
from bench._proc import connections_by_pid, cpu_seconds
from bench._publish_http import Connection, ProtocolError
from bench._report import json_line
from bench._run import BenchError, Deadline, LoadPipe
from bench._servers import StartError

say = _run.sayer("scale")
QUIET_WINDOW = 0.3  # s over which the server must be nearly idle to count as done
QUIET_CPU = 0.1  # …nearly idle: under a tenth of a core
# A reader's frame is the entry's body as html plus the event's fields: well under this.
FRAME_OVERHEAD = 512


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = _run.parser("bench.scale", __doc__)
    p.add_argument("--readers", type=int, default=10_000, help="parked readers N (10000)")
    p.add_argument("--messages", type=int, default=50, help="entries published M (50)")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="counts to compare")
    p.add_argument("--runs", type=int, default=1, help="runs of every count, alternated (1)")
    p.add_argument("--size", type=int, default=256, help="entry body in bytes (256)")
    p.add_argument("--publish-concurrency", type=int, default=4, help="POSTs in flight (4)")
    p.add_argument("--connect-concurrency", type=int, default=200, help="handshakes in flight")
    p.add_argument("--connect-timeout", type=float, default=15.0, help="per reader, s (15)")
    p.add_argument("--connect-phase-timeout", type=float, default=120.0, help="all readers, s")
    p.add_argument("--drain-timeout", type=float, default=60.0, help="server done, s (60)")
    p.add_argument("--settle", type=float, default=1.0, help="pause after connecting, s (1)")
    p.add_argument("--wall-limit", type=float, default=300.0, help="each run, s (300)")
    p.add_argument("--json", action="store_true", help="print JSON lines instead of the table")
    p.add_argument(
        "--server-env", type=_run.setting, action="append", default=[], metavar="PUSHHUB_X=V",
        help="a setting for the started servers (repeat)",
    )  # fmt: skip
    args = p.parse_args(argv)
    problems = [
        f"--{name.replace('_', '-')} must be at least 1"
        for name in ("readers", "messages", "runs", "publish_concurrency", "connect_concurrency")
        if getattr(args, name) < 1
    ]
    if any(w < 1 for w in args.workers):
        problems.append("--workers counts must be at least 1")
    if args.size < MIN_SIZE:
        problems.append(f"--size must be at least {MIN_SIZE}")
    if problems:
        print("scale: " + "; ".join(problems), file=sys.stderr)
        raise SystemExit(2)
    return args


def rcvbuf(args: argparse.Namespace) -> int:
    """Each parked reader's receive buffer: the whole run's frames, twice over, as Linux
    counts its own bookkeeping against the buffer; never below its usual default."""
    return max(131_072, 2 * args.messages * (args.size + FRAME_OVERHEAD))


def server_env(args: argparse.Namespace) -> dict[str, str]:
    # Parked readers answer no pings, and the publish burst must not meet the rate limit.
    return {"PUSHHUB_WS_PING_INTERVAL": "600", "PUSHHUB_PUBLISH_RATE": "0", **dict(args.server_env)}


async def publish(
    base: str, token: str, slug: str, args: argparse.Namespace, deadline: Deadline
) -> tuple[list[int], int]:
    """POST M entries from --publish-concurrency editors, each sending its next one as soon as
    the last is answered; (seqs, time.time_ns() of the first send)."""
    host, port = base.removeprefix("http://").rsplit(":", 1)
    indexes = itertools.count()
    seqs: list[int] = []
    first_ns = time.time_ns()

    async def editor() -> None:
        conn = Connection(host, int(port), {"Authorization": f"Bearer {token}"})
        try:
            while (index := next(indexes)) < args.messages:
                body = orjson.dumps(
                    {"title": f"scale {index}", "body": make_body(index, time.time_ns(), args.size)}
                )
                status, answer = await conn.request("POST", f"/api/blogs/{slug}/entries", body)
                if status != 201:
                    raise BenchError(f"publishing entry {index}: HTTP {status} {answer[:200]!r}")
                seqs.append(int(orjson.loads(answer)["seq"]))
        except (OSError, ProtocolError, asyncio.IncompleteReadError) as exc:
            raise BenchError(f"publishing: {exc!r}") from None
        finally:
            conn.close()

    async with asyncio.timeout(deadline.left()), asyncio.TaskGroup() as editors:
        for _ in range(min(args.publish_concurrency, args.messages)):
            editors.create_task(editor())
    return sorted(seqs), first_ns


def _spin(n: int) -> float:
    started = time.perf_counter()
    x = 0
    for i in range(n):
        x += i * i % 7
    return time.perf_counter() - started


def machine_scaling(workers: int, seconds: float = 1.0) -> float:
    """What this machine gives `workers` CPU-bound Python processes over one, in the same
    sitting: the ceiling the server's scaling is read against (vCPUs may share a core)."""
    n = max(1_000_000, int(8_000_000 * seconds))
    one = n / _spin(n)
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        pool.map(_spin, [1] * workers)  # the processes are up before the clock starts
        started = time.perf_counter()
        pool.map(_spin, [n] * workers)
        many = workers * n / (time.perf_counter() - started)
    return many / one


def wait_quiet(pids: Sequence[int], timeout: float) -> bool:
    """Poll the server's CPU until a QUIET_WINDOW in which it used under QUIET_CPU of a core;
    False if it was still busy after `timeout`."""
    deadline = time.monotonic() + timeout
    samples: list[tuple[float, float]] = []
    while time.monotonic() < deadline:
        now = time.monotonic()
        samples.append((now, sum(cpu_seconds(pids).values())))
        old = [s for s in samples if now - s[0] >= QUIET_WINDOW]
        if old:
            at, cpu = old[-1]
            if (samples[-1][1] - cpu) / (now - at) < QUIET_CPU:
                return True
        time.sleep(0.05)
    return False


def one_run(args: argparse.Namespace, workers: int, run: int) -> dict[str, Any]:
    deadline = Deadline(args.wall_limit)
    problems: list[str] = []
    setup = argparse.Namespace(readers=args.readers, url=None, pid=[], redis=True, workers=workers)
    with _run.servers(setup, say, server_env(args)) as stack:
        pids = stack.server_pids
        slug = f"scale-{secrets.token_hex(4)}"
        token = _run.mint(stack.secret, slug)
        with _run.editor_client(stack.base, token) as client:
            head = _run.create_blog(client, slug, "Scaling benchmark")
        url = _run.ws_url(stack.base, slug)
        say(f"run {run}, {workers} worker(s): parking {args.readers} readers on {url}")
        load = LoadPipe(
            [
                sys.executable, "-m", "bench._parked", "--url", url,
                "--readers", str(args.readers), "--messages", str(args.messages),
                "--connect-concurrency", str(args.connect_concurrency),
                "--timeout", str(args.connect_timeout), "--rcvbuf", str(rcvbuf(args)),
            ],
            stack.workdir / "parked.log",
        )  # fmt: skip
        try:
            conn = load.expect("connected", deadline.left(args.connect_phase_timeout))
            if conn["ok"] != args.readers:
                raise BenchError(f"{conn['ok']} of {args.readers} readers connected: {conn}")
            if conn["snapshot_seqs"] != [head]:
                problems.append(f"snapshots at {conn['snapshot_seqs']}, the head was {head}")
            time.sleep(min(args.settle, deadline.left()))
            port = int(stack.base.rsplit(":", 1)[1])
            split = connections_by_pid(pids, port)
            measured = [*pids, load.pid, *([stack.redis_pid] if stack.redis_pid else [])]
            before = _run.sample(measured)
            say(f"readers per process {sorted(split.values(), reverse=True)}; publishing")
            try:
                seqs, first_ns = asyncio.run(publish(stack.base, token, slug, args, deadline))
            except* BenchError as group:
                raise group.exceptions[0] from None
            except* TimeoutError:
                raise BenchError("publishing ran past the wall limit") from None
            if seqs != list(range(head + 1, head + args.messages + 1)):
                problems.append(f"publish seqs {seqs} are not {head + 1}..{head + args.messages}")
            quiet = wait_quiet(pids, deadline.left(args.drain_timeout))
            quiet_ns = time.time_ns()
            window = _run.Window(before, _run.sample(measured))
            if not quiet:
                problems.append(f"the server was still busy after {args.drain_timeout:.0f}s")
            timeout = deadline.left(args.drain_timeout)
            load.send({"cmd": "collect", "since_ns": first_ns, "timeout_s": timeout})
            res = load.expect("collected", deadline.left(args.drain_timeout + 30))
        finally:
            load.stop()
        log = (stack.workdir / "node" / "server.log").read_text(errors="replace")[-3000:]

    finish_s = (res["last_arrival_ns"] - first_ns) / 1e9 if res["last_arrival_ns"] else None
    server_cpu = window.cpu(pids) or 0.0
    delivered = res["delivered"]
    result: dict[str, Any] = {
        "bench": "scale", **_run.stamp(), "store": "redis", "redis_aof": False,
        "run": run, "workers": workers, "readers": args.readers, "messages": args.messages,
        "size": args.size, "publish_concurrency": args.publish_concurrency,
        **{k: v for k, v in res.items() if k != "phase"},
        "connect_s": conn["connect_s"],
        "readers_per_process": sorted(split.values(), reverse=True),
        "finish_s": finish_s,
        "deliveries_per_s": delivered / finish_s if finish_s else None,
        "server_cpu_s": server_cpu,
        "server_cpu_s_per_process": sorted(
            (round(window.cpu([p]) or 0.0, 3) for p in pids), reverse=True
        ),
        "server_cpu_us_per_delivery": server_cpu / delivered * 1e6 if delivered else None,
        "server_cores_busy": server_cpu / finish_s if finish_s else None,
        "load_cpu_s": window.cpu([load.pid]),
        "redis_cpu_s": window.cpu([stack.redis_pid]) if stack.redis_pid else None,
        "machine_busy_cpu_s": window.busy, "window_s": window.after.at - window.before.at,
        "server_env": server_env(args),
    }  # fmt: skip
    problems += collected_problems(res, quiet_ns)
    result["problems"] = problems
    result["status"] = "ok" if not problems else "failed"
    if problems:
        result["server_log_tail"] = log
    return result


def collected_problems(res: dict[str, Any], quiet_ns: int) -> list[str]:
    """What is wrong with what the parked readers collected, the server having gone quiet at
    `quiet_ns` (wall clock, as the kernel's stamps)."""
    problems = [
        f"{key} = {res[key]}"
        for key in ("lost", "dup", "out_of_order", "unexpected_frames")
        if res[key]
    ]
    if res["closed"]:
        problems.append(f"readers closed: {res['closed']}")
    if res["timed_out"] or res["delivered"] != res["expected_deliveries"]:
        problems.append(f"delivered {res['delivered']} of {res['expected_deliveries']}")
    if res["last_arrival_ns"] and res["last_arrival_ns"] > quiet_ns:
        # Frames that did not fit a reader's receive queue waited at the server and were
        # stamped when the collect read them: the finish time would be the collect's.
        problems.append("frames arrived after the server went quiet: lower --messages or --size")
    if res["stamped"] != res["readers"]:
        problems.append(f"{res['readers'] - res['stamped']} readers without a receive time")
    return problems


def _fmt(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def table(results: Sequence[dict[str, Any]]) -> str:
    """A row per run, then the median of each worker count with its ratio to the first."""
    lines = [
        "| run | workers | readers per process | finish s | deliveries/s | × first count"
        " | server CPU s (per process) | server cores busy | µs / delivery | load CPU s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    base: dict[int, float] = {}
    ceilings: dict[int, float] = {}
    for r in results:
        machine = r.get("machine_scaling") or {}
        if machine.get("ratio"):
            ceilings[r["run"]] = machine["ratio"]
        rate = r.get("deliveries_per_s")
        if rate and r["run"] not in base:
            base[r["run"]] = rate
        ratio = rate / base[r["run"]] if rate and r["run"] in base else None
        per = " / ".join(f"{c:.2f}" for c in r.get("server_cpu_s_per_process", []))
        lines.append(
            f"| {r['run']} | {r['workers']} | {r.get('readers_per_process')} | "
            f"{_fmt(r.get('finish_s'), '.2f')} | {_fmt(rate, ',.0f')} | {_fmt(ratio, '.2f')}× | "
            f"{_fmt(r.get('server_cpu_s'), '.2f')} ({per}) | "
            f"{_fmt(r.get('server_cores_busy'), '.2f')} | "
            f"{_fmt(r.get('server_cpu_us_per_delivery'), '.1f')} | "
            f"{_fmt(r.get('load_cpu_s'), '.2f')} |"
        )
    if ceilings:
        lines.append("")
        lines.append(
            "the machine (busy-loop processes, same runs): "
            + ", ".join(f"run {k} {v:.2f}×" for k, v in sorted(ceilings.items()))
        )
    ok = [r for r in results if r.get("status") == "ok" and r.get("deliveries_per_s")]
    counts = list(dict.fromkeys(r["workers"] for r in ok))
    if counts:
        medians = {
            w: statistics.median(r["deliveries_per_s"] for r in ok if r["workers"] == w)
            for w in counts
        }
        lines.append("")
        lines.append(
            "medians: "
            + ", ".join(
                f"{w} worker(s) {medians[w]:,.0f}/s ({medians[w] / medians[counts[0]]:.2f}×)"
                for w in counts
            )
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    _run.exit_on_sigterm()
    results: list[dict[str, Any]] = []
    for run in range(1, args.runs + 1):
        top = max(args.workers)
        ceiling = machine_scaling(top) if top > 1 else None
        if ceiling is not None:
            say(f"run {run}: {top} busy-loop processes do {ceiling:.2f}× one on this machine")
        for workers in args.workers:
            try:
                result = one_run(args, workers, run)
                result["machine_scaling"] = {"processes": top, "ratio": ceiling}
            except (BenchError, StartError) as exc:
                say(f"FAILED: {exc}")
                result = {
                    "bench": "scale", "status": "error", "error": str(exc), "run": run,
                    "workers": workers, "git": _run.git_state(),
                }  # fmt: skip
            for problem in result.get("problems", []):
                say(f"PROBLEM: {problem}")
            if args.json:
                print(json_line(result), flush=True)
            results.append(result)
    if not args.json:
        print(table(results))
    return 0 if all(r["status"] == "ok" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
