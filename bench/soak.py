"""Soak: two pushhub nodes on one Redis, readers on both, editors publishing, faults on a schedule.

    python -m bench.soak [--duration 60] [--readers 200] [--editors 4] [--rate 2] [--json]

Starts its own redis-server (append-only file, `appendfsync always`) and two nodes on free
loopback ports, connects R WebSocket readers split across the nodes, and has E editors publish
and edit entries at a steady rate, each change under one idempotency key with retries. Over the
run it breaks things, one at a time: a few readers stop reading while a burst of large entries
goes out; Redis is killed and restarted; Redis is frozen (SIGSTOP) and thawed; node A is killed
(SIGKILL) and restarted; node B is stopped gracefully (SIGTERM) and restarted. (An opt-in
fault, redis-lose-tail, makes Redis lose its last second of acknowledged writes, as
`appendfsync everysec` and a power cut would.) Then it waits (bounded) for every reader to reach
the head and checks, per reader, that every acknowledged change arrived exactly once and in
order, and that its copy equals `GET /api/blogs/{blog}` and what Redis holds.

Prints a Markdown report (with --json: one JSON line on stdout, the Markdown on stderr). Exit 0
when nothing acknowledged was lost, duplicated or out of order and every reader matches the
server; 1 otherwise (the report says what); 2 if the soak could not be set up; 130 on Ctrl-C.
Every process it started is killed on the way out, whatever happens. docs/reliability.md has
a run's report and what each fault does.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import secrets
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import redis.asyncio as aioredis
from pushhub_client import RetryPolicy
from redis.exceptions import RedisError

from bench.soak_check import (
    FaultRecord,
    FinalState,
    ReaderResult,
    check_reader,
    check_store,
    fault_rows,
    markdown,
    reader_json,
    totals,
    verdict,
)
from bench.soak_clients import Editor, FrameCache, Ledger, Node, Reader, digest, entry_digest
from bench.soak_cluster import SoakNode, SoakRedis, StartError
from pushhub.auth import issue_token

BLOG = "soak"
# Where in the run each fault starts, as a fraction of --duration. They run one after another:
# a fault that overruns pushes the next one back rather than overlapping it.
SCHEDULE = (
    ("slow-readers", 0.08),
    ("redis-kill", 0.24),
    ("redis-freeze", 0.42),
    ("node-kill", 0.60),
    ("node-term", 0.78),
    ("redis-lose-tail", 0.88),  # opt-in: not in the default set, see --faults
)
DEFAULT_FAULTS = ("slow-readers", "redis-kill", "redis-freeze", "node-kill", "node-term")
FAULT_BOUND = 90.0  # seconds any one fault, recovery included, may take
READY_BOUND = 30.0  # seconds nodes get to answer /readyz after a fault
TERM_BOUND = 20.0  # seconds a SIGTERM'd node gets to exit (uvicorn's own bound is 10)
QUIET_AFTER_FAULTS = 3.0  # editors keep publishing this long after the last fault
GAP = 2.0  # at least this long between one fault's recovery and the next fault


class SetupError(Exception):
    """The soak cannot start: the message says why."""


def say(text: str) -> None:
    print(f"soak: {text}", file=sys.stderr, flush=True)


@dataclass
class Cluster:
    redis: SoakRedis
    nodes: list[SoakNode]
    readers: list[Reader]
    burst: Editor
    ledger: Ledger
    args: argparse.Namespace

    async def wait_ready(self, rec: FaultRecord, since: float, after: str) -> None:
        """Wait for both nodes to be ready again and say how long it took since `since`."""
        async with asyncio.TaskGroup() as group:
            ready = [group.create_task(n.ready(READY_BOUND)) for n in self.nodes]
        late = [n.name for n, r in zip(self.nodes, ready, strict=True) if not r.result()]
        if late:
            rec.failed = f"node {', '.join(late)} not ready {READY_BOUND:.0f} s after recovery"
        else:
            rec.what.append(f"both nodes ready {self.ledger.now() - since:.1f} s after {after}")


# -- faults ------------------------------------------------------------------------------------


async def slow_readers(c: Cluster, rec: FaultRecord) -> None:
    slow = [r for r in c.readers if r.rec.slow]
    if not slow:
        rec.what.append("no slow readers (--slow-readers 0)")
        return
    cut_before = sum(r.rec.cutoffs for r in slow)
    for r in slow:
        r.pause(FAULT_BOUND)  # until the burst is out; shortened below
    await asyncio.sleep(0.3)
    # Large entries make the stalled readers' backlog outgrow what the server may hold for
    # them: its per-reader bound plus the kernel's send buffer (up to 4 MB on Linux).
    chars = c.args.burst_kb * 1000
    burst = [await c.burst.create(big_chars=chars) for _ in range(c.args.burst)]
    acked = sum(w.acked for w in burst)
    # The server cuts a reader off when it next has a frame for it: give the editors' steady
    # stream a moment to bring one.
    resume = max(rec.start + c.args.slow_pause, c.ledger.now() + 2.0)
    for r in slow:
        r.pause(resume - c.ledger.now())
    rec.what.append(
        f"{len(slow)} readers stop reading for {resume - rec.start:.1f} s; meanwhile a burst of "
        f"{len(burst)} entries of ~{c.args.burst_kb} KB ({acked} acked)"
    )
    await asyncio.sleep(max(0.0, resume - c.ledger.now()))
    # They now read what was buffered, find their connection closed, and resume.
    deadline = time.monotonic() + 30
    behind = [r.rec.index for r in slow]
    while behind and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        head = c.ledger.head[0] if c.ledger.head else 0
        behind = [r.rec.index for r in slow if not r.rec.connected or (r.rec.seq or 0) < head]
    cut = sum(r.rec.cutoffs for r in slow) - cut_before
    rec.what.append(
        f"{cut} connection(s) of slow readers cut off; "
        + (f"readers {behind} not back at the head after 30 s" if behind else "all back at head")
    )


async def redis_kill(c: Cluster, rec: FaultRecord) -> None:
    c.redis.kill()
    rec.what.append(f"SIGKILL, down {c.args.redis_down:g} s")
    await asyncio.sleep(c.args.redis_down)
    await c.redis.start()
    await c.wait_ready(rec, c.ledger.now(), "the restart")


async def redis_freeze(c: Cluster, rec: FaultRecord) -> None:
    c.redis.freeze()
    rec.what.append(f"SIGSTOP for {c.args.freeze:g} s")
    try:
        await asyncio.sleep(c.args.freeze)
    finally:
        c.redis.thaw()
    await c.wait_ready(rec, c.ledger.now(), "the thaw")


async def node_kill(c: Cluster, rec: FaultRecord) -> None:
    node = c.nodes[0]
    node.kill()
    rec.what.append(f"node {node.name} SIGKILL, down {c.args.node_down:g} s")
    await asyncio.sleep(c.args.node_down)
    await node.start()
    await c.wait_ready(rec, c.ledger.now(), "the restart")


async def node_term(c: Cluster, rec: FaultRecord) -> None:
    node = c.nodes[1]
    sent = c.ledger.now()
    code, took = await node.terminate(TERM_BOUND)
    if code is None:
        rec.failed = f"node {node.name} still running {TERM_BOUND:.0f} s after SIGTERM (killed)"
    # uvicorn re-raises the signal once its shutdown is done, so a clean exit reads as -15.
    how = "clean exit" if code in (0, -signal.SIGTERM) else f"exit code {code}"
    closes = [d.at - sent for d in c.ledger.drops if d.node == node.name and d.at >= sent]
    told = f"; its readers dropped {min(closes):.1f}–{max(closes):.1f} s after" if closes else ""
    rec.what.append(f"node {node.name} SIGTERM: {how} after {took:.1f} s{told}")
    await asyncio.sleep(c.args.node_down)
    await node.start()
    await c.wait_ready(rec, c.ledger.now(), "the restart")


async def redis_lose_tail(c: Cluster, rec: FaultRecord) -> None:
    path = c.redis.aof_tail()
    size = path.stat().st_size
    seq_then = c.ledger.head[0] if c.ledger.head else 0
    await asyncio.sleep(c.args.lose_window)
    seq_now = c.ledger.head[0] if c.ledger.head else 0
    c.redis.kill()
    dropped = c.redis.lose_tail(path, size)
    rec.what.append(
        f"SIGKILL, then the AOF cut back to {c.args.lose_window:g} s earlier ({dropped} bytes; "
        f"acknowledged head then {seq_then}, at the kill {seq_now}), as appendfsync everysec "
        "and a power cut would"
    )
    await asyncio.sleep(c.args.redis_down)
    await c.redis.start()
    await c.wait_ready(rec, c.ledger.now(), "the restart")


FAULTS: dict[str, Callable[[Cluster, FaultRecord], Awaitable[None]]] = {
    "slow-readers": slow_readers,
    "redis-kill": redis_kill,
    "redis-freeze": redis_freeze,
    "node-kill": node_kill,
    "node-term": node_term,
    "redis-lose-tail": redis_lose_tail,
}


async def restore(c: Cluster) -> None:
    """After a fault went wrong: whatever is down comes back, so the run can still be judged."""
    c.redis.thaw()
    if c.redis.proc is None or c.redis.proc.poll() is not None:
        await c.redis.start()
    for node in c.nodes:
        if not node.alive:
            await node.start()


async def run_faults(c: Cluster, chosen: Sequence[str], start: float) -> list[FaultRecord]:
    records: list[FaultRecord] = []
    for name, at in SCHEDULE:
        if name not in chosen:
            continue
        begin = start + at * c.args.duration
        if records:
            begin = max(begin, records[-1].end + min(GAP, 0.05 * c.args.duration))
        await asyncio.sleep(max(0.0, begin - c.ledger.now()))
        rec = FaultRecord(name, c.ledger.now())
        try:
            async with asyncio.timeout(FAULT_BOUND):
                await FAULTS[name](c, rec)
        except Exception as exc:
            rec.failed = f"{type(exc).__name__}: {str(exc)[:300]}"
            with contextlib.suppress(Exception):
                async with asyncio.timeout(60):
                    await restore(c)
        rec.end = c.ledger.now()
        say(
            f"{rec.start:6.1f}s {name}: {'; '.join(rec.what)}"
            + (f" FAILED {rec.failed}" if rec.failed else "")
        )
        records.append(rec)
    return records


# -- the end of the run ------------------------------------------------------------------------


async def store_state(redis_url: str) -> FinalState | None:
    """The blog as Redis holds it, read from pushhub's keys directly: the truth the nodes'
    answers are held to. None when the keys are not where this expects them (their layout is
    pushhub's business); then only the nodes are compared with each other."""
    client = aioredis.Redis.from_url(redis_url, decode_responses=True, socket_timeout=5)
    key = f"ph:{{{BLOG}}}:"
    try:
        pipe = client.pipeline(transaction=True)
        pipe.get(key + "meta")
        pipe.hvals(key + "entries")
        pipe.get(key + "seq")
        pipe.get(key + "epoch")
        meta, entries, seq, epoch = await pipe.execute()
    except (RedisError, OSError):
        return None
    finally:
        await client.aclose()
    if meta is None or seq is None or epoch is None:
        return None
    doc = {"blog": orjson.loads(meta), "entries": [orjson.loads(e) for e in entries]}
    return _state({**doc, "seq": seq, "epoch": epoch})


async def final_state(
    nodes: list[SoakNode], redis_url: str, bound: float
) -> tuple[FinalState, dict[str, bool]]:
    """The blog as the store holds it, and per node whether `GET /api/blogs/{blog}` answers
    the same (waiting, up to `bound`, for nodes still catching up)."""
    deadline = time.monotonic() + bound
    async with httpx.AsyncClient(trust_env=False, timeout=5.0) as client:
        while True:
            truth = await store_state(redis_url)
            answers: dict[str, FinalState] = {}
            for node in nodes:
                with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
                    r = await client.get(f"{node.url}/api/blogs/{BLOG}")
                    if r.status_code == 200:
                        answers[node.name] = _state(orjson.loads(r.content))
            if not answers and truth is None:
                raise SetupError("neither a node nor Redis answered for the blog at the end")
            reference = truth or max(answers.values(), key=lambda a: a.seq)
            equal = {n.name: answers.get(n.name) == reference for n in nodes}
            if all(equal.values()) or time.monotonic() > deadline:
                return reference, equal
            await asyncio.sleep(0.2)


def _state(doc: dict[str, Any]) -> FinalState:
    entries = doc["entries"]
    return FinalState(
        seq=int(doc["seq"]), epoch=str(doc["epoch"]),
        entries={e["id"]: entry_digest(e) for e in entries}, blog=digest(doc["blog"]),
        titles=Counter(str(e.get("title")) for e in entries),
    )  # fmt: skip


async def settle(readers: list[Reader], final: FinalState, bound: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < bound:
        if all(r.rec.seq == final.seq and r.rec.epoch == final.epoch for r in readers):
            break
        await asyncio.sleep(0.1)
    return time.monotonic() - started


async def progress(ledger: Ledger, readers: list[Reader], every: float) -> None:
    while True:
        await asyncio.sleep(every)
        acked = sum(w.acked for w in ledger.writes)
        done = sum(w.finished is not None for w in ledger.writes)
        connected = sum(r.rec.connected for r in readers)
        head = ledger.head[0] if ledger.head else 0
        at_head = sum(r.rec.seq is not None and r.rec.seq >= head for r in readers)
        say(
            f"{ledger.now():6.1f}s head {head}; writes acked {acked}, refused {done - acked}; "
            f"readers connected {connected}/{len(readers)}, at head {at_head}"
        )


def log_findings(nodes: list[SoakNode]) -> list[str]:
    out = []
    for node in nodes:
        lines = node.log_lines(("ERROR", "CRITICAL"))
        if lines:
            out.append(f"node {node.name} logged {len(lines)} error lines, first: {lines[0][:300]}")
    return out


# -- the whole run -----------------------------------------------------------------------------


Outcome = tuple[dict[str, Any], list[ReaderResult]]


async def soak(args: argparse.Namespace, workdir: Path) -> Outcome:
    began = time.monotonic()
    rng = random.Random(args.seed)
    secret = secrets.token_urlsafe(48)
    redis = SoakRedis(workdir / "redis", appendfsync=args.appendfsync)
    nodes = [
        SoakNode(name, workdir / f"node-{name.lower()}", redis_url=redis.url, secret=secret)
        for name in ("A", "B")
    ]
    readers: list[Reader] = []
    editors: list[Editor] = []
    tasks: list[asyncio.Task[None]] = []
    try:
        say(f"starting redis-server and nodes A and B (logs in {workdir})")
        try:
            await redis.start()
            await asyncio.gather(*(n.start() for n in nodes))
        except StartError as exc:
            raise SetupError(str(exc)) from None
        for n in nodes:
            if not await n.ready(READY_BOUND):
                raise SetupError(f"node {n.name} not ready:\n{n.log_lines()[-10:]}")
        ledger = Ledger()
        endpoints = [Node(n.name, n.url, n.ws_url, n.port) for n in nodes]
        run_id = secrets.token_hex(3)

        def editor(name: str, home: int) -> Editor:
            # One token per editor, as in a newsroom: the server's publish rate is per token.
            token = issue_token(secret, subject=f"soak {name}", ttl_seconds=24 * 3600)
            e = Editor(
                name, endpoints, token, ledger, BLOG, home=home, run_id=run_id,
                rng=random.Random(rng.random()), attempts=args.attempts,
            )  # fmt: skip
            editors.append(e)
            return e

        setup = editor("setup", 0)
        if not (await setup.put_blog("Soak: harbour marathon")).acked:
            raise SetupError(f"could not create the blog: {ledger.writes[-1].error}")

        cache = FrameCache()
        readers = [
            Reader(
                i, endpoints, i % 2, ledger, BLOG, slow=i < args.slow_readers,
                rng=random.Random(rng.random()), cache=cache,
            )
            for i in range(args.readers)
        ]  # fmt: skip
        for i, r in enumerate(readers):
            tasks.append(asyncio.create_task(r.run()))
            if i % 25 == 24:
                await asyncio.sleep(0.05)  # a gentle ramp: the handshakes are not the test
        deadline = time.monotonic() + 30
        while any(r.rec.seq is None for r in readers):
            if time.monotonic() > deadline:
                missing = sum(r.rec.seq is None for r in readers)
                raise SetupError(f"{missing} readers got no snapshot within 30 s")
            await asyncio.sleep(0.05)
        start = ledger.now()
        say(f"{len(readers)} readers connected; editors start; faults: {', '.join(args.faults)}")

        stop = asyncio.Event()
        writers = [editor(f"e{i}", i % 2) for i in range(args.editors)]
        editor_tasks = [
            asyncio.create_task(e.run(args.rate, args.update_share, stop)) for e in writers
        ]
        tasks += editor_tasks
        tasks.append(asyncio.create_task(progress(ledger, readers, 10.0)))
        cluster = Cluster(redis, nodes, readers, editor("burst", 1), ledger, args)
        faults = await run_faults(cluster, args.faults, start)
        end = max(start + args.duration, ledger.now() + (QUIET_AFTER_FAULTS if faults else 0))
        await asyncio.sleep(end - ledger.now())
        stop.set()
        say(f"{ledger.now():6.1f}s editors stop; waiting for their last writes")
        await asyncio.wait(editor_tasks, timeout=editors[0].write_bound + 15)

        with contextlib.suppress(Exception):
            async with asyncio.timeout(60):
                await restore(cluster)
        final, node_equal = await final_state(nodes, redis.url, 20.0)
        nodes_agree = all(node_equal.values())
        took = await settle(readers, final, args.settle)
        say(f"final head seq {final.seq}; readers settled in {took:.1f} s")
        for r in readers:
            if r.rec.seq != final.seq:
                r.rec.note(
                    f"end: at seq {r.rec.seq} of {final.seq}, connected={r.rec.connected} "
                    f"node={r.rec.node}, last frame at {r.rec.last_frame_at:.1f}s"
                )

        acked = sorted((w for w in ledger.writes if w.acked), key=lambda w: w.seq or 0)
        worst: dict[str, tuple[float, int]] = {}
        # A reader that stopped reading on purpose is late by design: the delays that tell of
        # the server are those of the readers that kept reading.
        results = [
            check_reader(r.rec, acked, final, None if r.rec.slow else worst) for r in readers
        ]
        store = check_store(ledger.writes, final, ledger.epochs)
        failed = sum(bool(f.failed) for f in faults)
        problems = verdict(results, store, nodes_agree=nodes_agree, faults_failed=failed)
        t = totals(results, ledger.writes, store, worst)
        warnings = log_findings(nodes)
        if t["server_5xx_other"]:
            warnings.append(f"editors got {t['server_5xx_other']} 5xx answers other than 502-504")
        if store.refused_but_written:
            warnings.append(
                f"{len(store.refused_but_written)} creates refused to the editor exist anyway "
                f"(e.g. {store.refused_but_written[:3]}); writes.jsonl has their answers"
            )
        unexpected = sum(r.rec.unexpected for r in readers)
        if unexpected:
            warnings.append(f"readers got {unexpected} frames the protocol does not allow there")
        slow = [r for r in readers if r.rec.slow]
        if "slow-readers" in args.faults and slow and not any(r.rec.cutoffs for r in slow):
            warnings.append("no slow reader was cut off by the server")
        for f in faults:
            if f.failed:
                warnings.append(f"fault {f.name}: {f.failed}")
        _dump(workdir, ledger, worst)
        report: dict[str, Any] = {
            "status": "ok" if not problems else "failed",
            "problems": problems,
            "warnings": warnings,
            "config": {
                "readers": args.readers, "editors": args.editors, "rate": args.rate,
                "duration": args.duration, "slow_readers": min(args.slow_readers, args.readers),
                "faults": list(args.faults), "appendfsync": args.appendfsync, "seed": args.seed,
            },
            "elapsed_s": round(time.monotonic() - began, 1),
            "final": {"seq": final.seq, "epoch": final.epoch, "entries": len(final.entries),
                      "nodes_agree": nodes_agree, "node_equals_store": node_equal},
            "totals": t,
            **{k: t[k] for k in ("acknowledged", "refused", "lost", "dup", "out_of_order",
                                 "resets", "longest_catch_up_s")},
            "faults": fault_rows(faults, ledger.writes, ledger.drops, ledger.catch_ups, worst),
            "store": {"missing": store.missing, "duplicate_publishes": store.duplicate_publishes,
                      "refused_but_written": store.refused_but_written,
                      "applied_despite_error": dict(store.applied_despite),
                      "seq_clashes": store.seq_clashes, "epochs": store.epochs},
            "readers": [reader_json(r) for r in results],
        }  # fmt: skip
        return report, results
    finally:
        for r in readers:
            r.stop.set()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(10):
                await asyncio.gather(*(r.close() for r in readers), return_exceptions=True)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=10)
        for e in editors:
            with contextlib.suppress(Exception):
                await e.aclose()
        for n in nodes:
            n.kill()
        redis.kill()


def _dump(workdir: Path, ledger: Ledger, worst: dict[str, tuple[float, int]]) -> None:
    """Every write and every reader drop, one JSON object a line, for digging into a report."""
    with (workdir / "writes.jsonl").open("wb") as out:
        for w in ledger.writes:
            doc = asdict(w)
            doc["worst_delay"] = worst.get(w.key)
            out.write(orjson.dumps(doc) + b"\n")
    with (workdir / "drops.jsonl").open("wb") as out:
        for d in ledger.drops:
            out.write(orjson.dumps(asdict(d)) + b"\n")


# -- command line ------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n")[0])
    p.add_argument("--duration", type=float, default=60.0, help="seconds of publishing (60)")
    p.add_argument("--readers", type=int, default=200, help="WebSocket readers, split over 2 nodes")
    p.add_argument("--editors", type=int, default=4, help="editors publishing in parallel (4)")
    p.add_argument("--rate", type=float, default=2.0, help="changes per second per editor (2)")
    p.add_argument("--update-share", type=float, default=0.2, help="share of edits (0.2)")
    p.add_argument(
        "--attempts", type=int, default=RetryPolicy().attempts,
        help="tries per write before it counts as refused (pushhub-client's default, 5)",
    )  # fmt: skip
    p.add_argument(
        "--faults", default=",".join(DEFAULT_FAULTS),
        help=f"comma-separated, from: {', '.join(FAULTS)} (default all but redis-lose-tail, "
        "which loses acknowledged writes on purpose; 'none' for none)",
    )  # fmt: skip
    p.add_argument(
        "--lose-window", type=float, default=1.0,
        help="seconds of acknowledged writes redis-lose-tail throws away (1)",
    )  # fmt: skip
    p.add_argument("--slow-readers", type=int, default=4, help="readers that stop reading (4)")
    p.add_argument("--slow-pause", type=float, default=8.0, help="seconds they stop for (8)")
    p.add_argument("--burst", type=int, default=32, help="large entries published meanwhile (32)")
    p.add_argument("--burst-kb", type=int, default=90, help="size of each, KB of Markdown (90)")
    p.add_argument("--redis-down", type=float, default=2.0, help="seconds Redis stays dead (2)")
    p.add_argument("--freeze", type=float, default=8.0, help="seconds Redis stays frozen (8)")
    p.add_argument("--node-down", type=float, default=1.0, help="seconds a node stays down (1)")
    p.add_argument("--settle", type=float, default=30.0, help="max seconds to reach the head (30)")
    p.add_argument("--appendfsync", choices=("always", "everysec"), default="always")
    p.add_argument("--seed", type=int, default=None, help="seed for the editors' and readers' dice")
    p.add_argument("--rows", choices=("all", "notable", "none"), default="all",
                   help="per-reader rows in the Markdown table (all)")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print the report as one JSON line")
    p.add_argument("--workdir", type=Path, help="keep logs and data here (default: a temp dir)")
    p.add_argument("--wall-limit", type=float, help="abort after this many seconds in all")
    args = p.parse_args(argv)
    args.faults = [] if args.faults == "none" else [f for f in args.faults.split(",") if f]
    unknown = [f for f in args.faults if f not in FAULTS]
    if unknown:
        p.error(f"unknown faults {unknown}; choose from {', '.join(FAULTS)}")
    if not 1 <= args.burst_kb <= 99:
        p.error("--burst-kb must be 1-99: the server takes entry bodies up to 100000 characters")
    if args.readers < 1 or args.editors < 1 or args.rate <= 0 or args.duration <= 0:
        p.error("--readers, --editors, --rate and --duration must be positive")
    if args.seed is None:
        args.seed = secrets.randbelow(2**31)
    if args.wall_limit is None:
        args.wall_limit = 2 * args.duration + 300
    return args


async def _main(args: argparse.Namespace, workdir: Path) -> Outcome:
    task = asyncio.current_task()
    assert task is not None
    # SIGTERM ends the run the way Ctrl-C does: through the finally that kills our processes.
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    async with asyncio.timeout(args.wall_limit):
        return await soak(args, workdir)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    keep = args.workdir is not None
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="pushhub-soak-"))
    workdir.mkdir(parents=True, exist_ok=True)
    code = 1
    try:
        report, results = asyncio.run(_main(args, workdir))
        code = 0 if report["status"] == "ok" else 1
        keep = keep or code != 0 or bool(report["warnings"])
        report["workdir"] = str(workdir) if keep else None
        if keep:
            (workdir / "report.json").write_text(json.dumps(report, indent=1))
        text = markdown(report, results, args.rows)
        if args.json:
            print(text, file=sys.stderr)
            print(json.dumps(report), flush=True)
        else:
            print(text, flush=True)
    except SetupError as exc:
        say(f"setup failed: {exc}")
        keep, code = True, 2
    except TimeoutError:
        say(f"gave up: the wall limit of {args.wall_limit:g} s was reached")
        keep, code = True, 1
    except (KeyboardInterrupt, asyncio.CancelledError):
        say("interrupted; every process it started has been stopped")
        code = 130
    finally:
        if keep:
            say(f"logs and data kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
