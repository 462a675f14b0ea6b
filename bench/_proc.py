"""Processes on this machine: spawning children that die with us, reading /proc, ending a tree,
and running this one's event loop.

Linux only (the benchmark reads /proc). Every wait here is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import resource
import signal
import socket
import subprocess
import time
from collections.abc import Coroutine, Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, TypeVar

HOST = "127.0.0.1"
_PR_SET_PDEATHSIG = 1
_CLK_TCK = os.sysconf("SC_CLK_TCK")
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.5):
            return True
        time.sleep(0.02)
    return False


def raise_nofile(wanted: int) -> tuple[int, int]:
    """Raise the soft fd limit towards `wanted` (never past the hard limit); returns (soft, hard).

    Children inherit the raised limit, which is how the server gets room for N readers.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft, hard


def run_loop(coro: Coroutine[Any, Any, T], *, uvloop: bool) -> T:
    """Run `coro` on a uvloop event loop when asked and installed, else on asyncio's."""
    if uvloop:
        try:
            import uvloop as fast
        except ImportError:
            pass
        else:
            return fast.run(coro)
    return asyncio.run(coro)


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: a benchmark killed with SIGKILL must not leave
    # servers behind, and nothing else would stop them.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def spawn(
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    stdin: int | IO[bytes] | None = None,
    stdout: int | IO[bytes] | None = None,
    stderr: int | IO[bytes] | None = None,
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        list(args), env=dict(env) if env is not None else None, cwd=cwd,
        stdin=stdin, stdout=stdout, stderr=stderr, preexec_fn=_die_with_parent,
    )  # fmt: skip


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def tree(pid: int) -> list[int]:
    """`pid` and all its descendants (uvicorn workers, multiprocessing helpers)."""
    out: list[int] = []
    todo = [pid]
    while todo and len(out) < 4096:
        p = todo.pop()
        out.append(p)
        todo.extend(children(p))
    return out


def cpu_seconds(pids: Iterable[int]) -> dict[int, float]:
    """utime + stime of each live pid, in seconds (children that were reaped are not counted)."""
    out: dict[int, float] = {}
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        # The command name may contain spaces and parentheses: split after its closing one.
        fields = stat[stat.rindex(")") + 2 :].split()
        out[pid] = (int(fields[11]) + int(fields[12])) / _CLK_TCK
    return out


def cpu_delta(before: Mapping[int, float], after: Mapping[int, float]) -> float:
    return sum(after[p] - before[p] for p in after if p in before)


def machine_busy_seconds() -> float:
    """CPU time the whole machine spent busy (all cores, all processes), from /proc/stat."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / _CLK_TCK


def load_average() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def rss_kb(pids: Iterable[int]) -> int:
    """Sum of VmRSS over the pids; pages shared between workers are counted once per worker."""
    total = 0
    for pid in pids:
        try:
            lines = Path(f"/proc/{pid}/status").read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
                break
    return total


def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2 :].split()[19]


def end_tree(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM the process, wait up to `grace`, then SIGKILL it and any descendants left over.

    Only pids that descended from a process we started are signalled, and only while they are
    still that process (same start time), so a recycled pid is never hit.
    """
    if proc.poll() is not None:
        return
    leftovers = [(pid, _start_time(pid)) for pid in tree(proc.pid)[1:]]
    with contextlib.suppress(ProcessLookupError):
        proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
    for pid, started in leftovers:
        if started is not None and _start_time(pid) == started:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def connections_by_pid(pids: Iterable[int], port: int) -> dict[int, int]:
    """How many established TCP connections to local `port` each pid holds open.

    uvicorn's workers share one listening socket and the kernel hands each connection to
    whichever worker accepts first, so the split is measured, not assumed: each pid's socket
    inodes (/proc/PID/fd) against the established IPv4 connections on `port` (/proc/net/tcp).
    """
    local = f":{port:04X}"
    established: set[str] = set()
    with contextlib.suppress(OSError), open("/proc/net/tcp") as table:
        next(table, None)
        for line in table:
            fields = line.split()
            if len(fields) > 9 and fields[1].endswith(local) and fields[3] == "01":
                established.add(fields[9])
    out: dict[int, int] = {}
    for pid in pids:
        count = 0
        with contextlib.suppress(OSError):
            for fd in os.scandir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    target = os.readlink(fd.path)
                    if target.startswith("socket:[") and target[8:-1] in established:
                        count += 1
        out[pid] = count
    return out
