"""What the benchmark drivers (fanout, storm, publish) share: their common options and checks,
the servers a run measures, the editor's HTTP client, the JSON-lines pipe to a load process, the
CPU samples around a measured window, and the metadata every result carries."""

from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import json
import os
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
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

import httpx

from bench._payload import MIN_SIZE
from bench._proc import (
    cpu_delta,
    cpu_seconds,
    end_tree,
    load_average,
    machine_busy_seconds,
    raise_nofile,
    spawn,
    tree,
)
from bench._report import json_line
from bench._servers import PushhubServer, RedisServer, StartError, tail

ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
FD_HEADROOM = 256

Say = Callable[[str], None]


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


def sayer(name: str) -> Say:
    """A driver's progress lines on stderr: `name: [seconds since start] text`."""
    started = time.monotonic()

    def say(text: str) -> None:
        print(f"{name}: [{time.monotonic() - started:6.1f}s] {text}", file=sys.stderr, flush=True)

    return say


def exit_on_sigterm() -> None:
    signal.signal(signal.SIGTERM, _terminate)


def _terminate(signum: int, frame: FrameType | None) -> None:
    # Turn SIGTERM into an exception so that the finally blocks stop the server and load.
    raise SystemExit(128 + signum)


# -- the options every driver takes ------------------------------------------------------------


def parser(module: str, doc: str | None) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(
        prog=f"python -m {module}", description=doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip


def add_options(
    p: argparse.ArgumentParser,
    *,
    env_help: str,
    workers: bool = True,
    connect_timeout: float = 15.0,
    phase_timeout: float = 90.0,
    wall_limit: float | None = 180.0,
    wall_help: str = "whole run, s (180)",
) -> None:
    """The options of every driver: the server (started, or running at --url), the entries'
    size, the timeouts and the output."""
    p.add_argument("--size", type=int, default=256, help="entry body in bytes (256)")
    p.add_argument("--redis", action="store_true", help="start a redis-server (AOF off) and use it")
    if workers:
        p.add_argument("--workers", type=int, default=1,
                       help="server worker processes (needs --redis)")  # fmt: skip
    else:
        p.set_defaults(workers=1)
    p.add_argument("--json", action="store_true", help="print JSON lines instead of a table")
    p.add_argument("--connect-timeout", type=float, default=connect_timeout,
                   help=f"per reader, s ({connect_timeout:g})")  # fmt: skip
    p.add_argument("--connect-phase-timeout", type=float, default=phase_timeout,
                   help="all readers, s")  # fmt: skip
    p.add_argument("--drain-timeout", type=float, default=30.0, help="to every reader, s (30)")
    p.add_argument("--wall-limit", type=float, default=wall_limit, help=wall_help)
    p.add_argument("--no-uvloop", action="store_true", help="plain asyncio event loops")
    p.add_argument(
        "--server-env", type=setting, action="append", default=[], metavar="PUSHHUB_X=V",
        help=env_help,
    )  # fmt: skip
    p.add_argument("--url", help="use this running server (loopback only) instead of starting one")
    p.add_argument(
        "--pid", type=int, action="append", default=[], help="with --url: server pid to measure"
    )
    p.add_argument("--token", default=os.environ.get("PUSHHUB_TOKEN"), help="with --url")


def add_simple_options(p: argparse.ArgumentParser) -> None:
    """--size, --redis and --json, for drivers that always start their own server."""
    p.add_argument("--size", type=int, default=256, help="entry body in bytes (256)")
    p.add_argument("--redis", action="store_true", help="start a redis-server (AOF off)")
    p.add_argument("--json", action="store_true", help="print a JSON line instead of a table")


def setting(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.startswith("PUSHHUB_"):
        raise argparse.ArgumentTypeError("use PUSHHUB_NAME=value")
    if name in ("PUSHHUB_SECRET", "PUSHHUB_DATA_DIR", "PUSHHUB_REDIS_URL"):
        raise argparse.ArgumentTypeError(f"{name} is set by the benchmark itself")
    return name, value


def check_options(args: argparse.Namespace) -> list[str]:
    """What is wrong with the options of add_options (empty: nothing)."""
    problems = []
    if args.size < MIN_SIZE:
        problems.append(f"--size must be at least {MIN_SIZE} (the body carries index and time)")
    if args.workers < 1:
        problems.append("--workers must be at least 1")
    if args.url:
        if args.server_env:
            problems.append("--server-env applies to a server the benchmark starts: not with --url")
        parts = urlsplit(args.url)
        if parts.scheme != "http" or parts.hostname not in LOOPBACK:
            problems.append("--url must be http:// on loopback (127.0.0.1, localhost or ::1)")
        if args.redis:
            problems.append("--redis starts a server: not with --url")
        if args.workers > 1:
            problems.append("--workers starts a server: not with --url")
        if not args.token:
            problems.append("--url needs an editor token: --token or PUSHHUB_TOKEN")
    elif args.workers > 1 and not args.redis:
        problems.append("--workers > 1 needs --redis (the embedded store serves one process)")
    return problems


def positive(args: argparse.Namespace, *names: str) -> list[str]:
    """A problem for each of the named options (by dest) that is not a positive number."""
    return [
        f"--{name.replace('_', '-')} must be positive"
        for name in names
        if not getattr(args, name) > 0
    ]


# -- the servers -------------------------------------------------------------------------------


@dataclass
class Stack:
    """What a run measures: the server and, when one was started here, its redis-server; and a
    temporary directory for the run's files."""

    workdir: Path
    base: str
    server_pids: list[int]
    redis_pid: int | None = None
    redis_url: str | None = None
    secret: str | None = None  # of a server started here: editor tokens are minted with it


@contextlib.contextmanager
def servers(
    args: argparse.Namespace, say: Say, env: Mapping[str, str], module: str = "pushhub"
) -> Iterator[Stack]:
    """The running server of --url, or a pushhub server (with --redis, its own redis-server)
    started with the settings `env` (by `python -m <module> serve`); the ones started here are
    stopped on exit. First the fd limit is raised for --readers sockets: the server inherits it."""
    soft, hard = raise_nofile(args.readers + FD_HEADROOM)
    if soft < args.readers + 64:
        raise BenchError(
            f"fd limit {soft} (hard {hard}) is too low for {args.readers} readers;"
            " lower --readers or raise the hard limit"
        )
    with tempfile.TemporaryDirectory(prefix="pushhub-bench-") as tmp:
        if args.url:
            yield Stack(Path(tmp), args.url.rstrip("/"), [p for pid in args.pid for p in tree(pid)])
        else:
            with _start(args, Path(tmp), say, env, module) as stack:
                yield stack


@contextlib.contextmanager
def _start(
    args: argparse.Namespace, workdir: Path, say: Say, env: Mapping[str, str], module: str
) -> Iterator[Stack]:
    redis: RedisServer | None = None
    server: PushhubServer | None = None
    try:
        if args.redis:
            redis = RedisServer(workdir / "redis").start()
            say(f"store: {redis.describe()} on {redis.url}")
        else:
            say("store: embedded (SQLite in a temporary data directory)")
        secret = secrets.token_urlsafe(48)
        server = PushhubServer(
            workdir / "node", secret=secret, workers=args.workers,
            redis_url=redis.url if redis else None, extra_env=dict(env), module=module,
        ).start()  # fmt: skip
        # uvicorn's workers may still be starting when /healthz first answers.
        time.sleep(0.5 if args.workers > 1 else 0.0)
        pids = tree(server.pid)
        say(f"server: pid {server.pid} ({len(pids)} process(es)) on {server.url}")
        redis_pid, redis_url = (redis.pid, redis.url) if redis else (None, None)
        try:
            yield Stack(workdir, server.url, pids, redis_pid, redis_url, secret)
        except BenchError as exc:
            raise BenchError(f"{exc}\n--- server log ---\n{server.log_tail()}") from None
    finally:
        if server is not None:
            say("stopping the server")
            server.stop()
        if redis is not None:
            redis.stop()
        say("stopped")


# -- the editor's side -------------------------------------------------------------------------


def mint(secret: str | None, slug: str) -> str:
    from pushhub.auth import issue_token

    if not secret:
        raise BenchError("no editor token: pass --token (or PUSHHUB_TOKEN) with --url")
    return issue_token(secret, subject="bench", blogs=[slug], ttl_seconds=3600)


def editor_client(base: str, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=base, trust_env=False, timeout=10.0, headers={"Authorization": f"Bearer {token}"}
    )


def create_blog(client: httpx.Client, slug: str, title: str) -> int:
    """PUT the blog; its seq."""
    try:
        resp = client.put(f"/api/blogs/{slug}", json={"title": title})
    except httpx.HTTPError as exc:
        raise BenchError(f"creating blog {slug}: {exc!r}") from None
    if resp.status_code not in (200, 201):
        raise BenchError(f"creating blog {slug}: HTTP {resp.status_code} {resp.text[:300]}")
    return int(resp.json()["seq"])


def entry_seq(resp: httpx.Response, what: str, on_429: str) -> int:
    """The seq of the entry a 201 answer accepted, or why there is none."""
    if resp.status_code == 429:
        raise BenchError(
            f"{what}: HTTP 429 {resp.text[:200]}: the server's publish rate limit {on_429}"
        )
    if resp.status_code != 201:
        raise BenchError(f"{what}: HTTP {resp.status_code} {resp.text[:300]}")
    return int(resp.json()["seq"])


def ws_url(base: str, slug: str) -> str:
    return base.replace("http://", "ws://", 1) + f"/ws/blogs/{slug}"


# -- the load process --------------------------------------------------------------------------


class LoadPipe:
    """A load process (`bench._loadgen`, `bench._firstdelivery`) and its conversation: commands
    on its stdin and phases on its stdout, one JSON object per line (see those modules)."""

    def __init__(self, cmd: Sequence[str], log: Path) -> None:
        self.log = log
        with log.open("ab") as err:
            self.proc = spawn(
                cmd, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err
            )
        self.lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
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
        stdin = self.proc.stdin
        assert stdin is not None
        try:
            stdin.write((json.dumps(doc) + "\n").encode())
            stdin.flush()
        except BrokenPipeError:
            raise BenchError(f"the load process is gone:\n{tail(self.log)}") from None

    def connected(
        self, args: argparse.Namespace, deadline: Deadline, head: int, problems: list[str]
    ) -> dict[str, Any]:
        """Every reader is connected with the snapshot at `head`, or the run cannot go on."""
        conn = self.expect("connected", deadline.left(args.connect_phase_timeout + 15))
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
        return conn

    def drain(self, args: argparse.Namespace, deadline: Deadline, **extra: Any) -> dict[str, Any]:
        """Tell it the last entry is out; its answer once every reader has every entry."""
        self.send({"cmd": "drain", **extra, "timeout_s": deadline.left(args.drain_timeout)})
        return self.expect("drained", deadline.left(args.drain_timeout + 15))

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()  # EOF tells it to close its readers and leave
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            end_tree(self.proc, grace=5.0)


def add_loadgen_options(p: argparse.ArgumentParser) -> None:
    """The options of the readers start_loadgen runs (besides the timeouts of add_options)."""
    p.add_argument("--readers", type=int, default=1000, help="WebSocket readers N (1000)")
    p.add_argument("--connect-concurrency", type=int, default=200, help="handshakes in flight")
    p.add_argument("--deflate", action="store_true", help="readers offer permessage-deflate")
    p.add_argument(
        "--client", choices=("lean", "websockets"), default="lean",
        help="readers: websockets' sans-I/O protocol on asyncio.Protocol (lean, default) or the"
        " websockets.asyncio client (about 1.4x the load's CPU per delivery)",
    )  # fmt: skip


def start_loadgen(args: argparse.Namespace, url: str, log: Path, messages: int) -> LoadPipe:
    """`python -m bench._loadgen`: the readers of fanout and storm, expecting `messages` events
    after their snapshot."""
    cmd = [
        sys.executable, "-m", "bench._loadgen", "--url", url,
        "--readers", str(args.readers), "--messages", str(messages),
        "--connect-concurrency", str(args.connect_concurrency),
        "--connect-timeout", str(args.connect_timeout),
        "--connect-phase-timeout", str(args.connect_phase_timeout),
        "--wait-timeout", str(args.wall_limit), "--client", args.client,
    ]  # fmt: skip
    if args.deflate:
        cmd.append("--deflate")
    if args.no_uvloop:
        cmd.append("--no-uvloop")
    return LoadPipe(cmd, log)


# -- CPU around a measured window --------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """CPU seconds so far: of each measured pid, of the whole machine, of this process."""

    at: float
    cpu: dict[int, float]
    busy: float
    own: float
    loadavg: float


def sample(pids: Sequence[int]) -> Sample:
    return Sample(
        time.monotonic(), cpu_seconds(pids), machine_busy_seconds(), own_cpu(), load_average()
    )


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True)
class Window:
    before: Sample
    after: Sample

    def cpu(self, pids: Sequence[int]) -> float | None:
        """CPU seconds the pids (those alive at both ends) used in the window."""
        picked = {p: self.before.cpu[p] for p in pids if p in self.before.cpu}
        return cpu_delta(picked, self.after.cpu) if picked else None

    @property
    def busy(self) -> float:
        return self.after.busy - self.before.busy

    @property
    def own(self) -> float:
        return self.after.own - self.before.own

    def others(self, *ours: float | None) -> float:
        """What other tenants of this shared box took from the same cores in the window: the
        machine's busy time less `ours` and this process's."""
        return max(0.0, self.busy - sum(v for v in ours if v) - self.own)


# -- the result --------------------------------------------------------------------------------


def main(
    args: argparse.Namespace,
    say: Say,
    run: Callable[[argparse.Namespace], dict[str, Any]],
    failed: Callable[[argparse.Namespace, str], dict[str, Any]],
    table: Callable[[dict[str, Any]], str],
    errors: tuple[type[Exception], ...] = (),
) -> int:
    """A driver's one run: its result as one JSON line (--json) or `table(result)`, its problems
    on stderr, and the exit status. A run that cannot go on prints `failed(args, why)` (--json)."""
    exit_on_sigterm()
    caught: tuple[type[Exception], ...] = (BenchError, StartError, *errors)
    try:
        result = run(args)
    except caught as exc:
        say(f"FAILED: {exc}")
        if args.json:
            print(json_line(failed(args, str(exc))))
        return 1
    print(json_line(result) if args.json else table(result))
    for problem in result["problems"]:
        say(f"PROBLEM: {problem}")
    return 0 if result["status"] == "ok" else 1


# -- what every result records -----------------------------------------------------------------


def store(args: argparse.Namespace) -> str:
    return "external" if args.url else ("redis" if args.redis else "embedded")


def stamp() -> dict[str, Any]:
    """When and from which source a result was measured."""
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "git": git_state(),
        "pushhub_source": source_digest(),
        "python": platform.python_version(),
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
