"""The processes a soak runs and breaks: one redis-server and pushhub nodes on loopback.

Each process keeps its port across restarts, so clients come back to the address they knew, and
each can be killed (SIGKILL), frozen (SIGSTOP), stopped gracefully (SIGTERM) and started again.
Every wait is bounded. Processes are spawned from the main thread into their own session, with
a parent-death signal: a Ctrl-C in the terminal reaches only the soak, which then ends them in
order, and a soak that is itself killed takes them with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bench._proc import HOST, free_port
from bench._servers import tail

_PR_SET_PDEATHSIG = 1


class StartError(RuntimeError):
    """A process did not come up in time; the message carries the end of its log."""


def _child_setup() -> None:
    # Runs in the child between fork and exec. PDEATHSIG is tied to the spawning thread, which
    # is why every spawn happens on the main (event loop) thread and never in an executor.
    os.setsid()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _spawn(
    args: list[str], log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            args, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            preexec_fn=_child_setup,
        )  # fmt: skip


async def _reap(proc: subprocess.Popen[bytes], timeout: float) -> int | None:
    """Wait for `proc` to exit without blocking the loop; None if it is still running."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code = proc.poll()
        if code is not None:
            return code
        await asyncio.sleep(0.02)
    return proc.poll()


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    # The child leads its own session, so its group holds it and anything it forked.
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


class SoakRedis:
    """redis-server with the append-only file on: an acknowledged write has been fsync'ed
    (`appendfsync always`), so a SIGKILL loses nothing that was acknowledged."""

    def __init__(self, workdir: Path, *, appendfsync: str = "always") -> None:
        self.dir = workdir
        self.port = free_port()
        self.appendfsync = appendfsync
        self.proc: subprocess.Popen[bytes] | None = None
        self.frozen = False

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.dir / "redis.log"

    async def start(self, timeout: float = 15.0) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise StartError("redis-server is not installed (apt-get install redis-server)")
        self.dir.mkdir(parents=True, exist_ok=True)
        args = [
            binary, "--bind", HOST, "--port", str(self.port), "--dir", str(self.dir),
            "--save", "", "--appendonly", "yes", "--appendfsync", self.appendfsync,
            "--logfile", str(self.log_path),
        ]  # fmt: skip
        self.proc = _spawn(args, self.dir / "redis.stdout")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if await self._pong():
                return
            await asyncio.sleep(0.05)
        self.kill()
        raise StartError(f"redis-server did not start in {timeout}s:\n{tail(self.log_path)}")

    async def _pong(self) -> bool:
        # Loading the AOF after a restart answers -LOADING, which is not ready yet.
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(1.0):
                reader, writer = await asyncio.open_connection(HOST, self.port)
                try:
                    writer.write(b"PING\r\n")
                    return (await reader.readline()).startswith(b"+PONG")
                finally:
                    writer.close()
        return False

    def freeze(self) -> None:
        assert self.proc is not None and self.proc.poll() is None
        os.kill(self.proc.pid, signal.SIGSTOP)
        self.frozen = True

    def thaw(self) -> None:
        if self.proc is not None and self.proc.poll() is None and self.frozen:
            os.kill(self.proc.pid, signal.SIGCONT)
        self.frozen = False

    def kill(self) -> None:
        if self.proc is not None:
            self.thaw()  # a stopped process would not die before SIGCONT on every kernel
            _kill_group(self.proc)
            self.proc = None

    def aof_tail(self) -> Path:
        """The append-only file Redis 7 is writing now (the newest `*.incr.aof`)."""
        found = sorted(
            (self.dir / "appendonlydir").glob("*.incr.aof"),
            key=lambda p: int(p.name.split(".")[-3]),
        )  # fmt: skip
        if not found:
            raise StartError(f"no *.incr.aof in {self.dir / 'appendonlydir'} (Redis 7 needed)")
        return found[-1]

    def lose_tail(self, path: Path, size: int) -> int:
        """Cut the AOF back to `size` bytes while Redis is dead: what a power cut does to the
        writes of the last second under `appendfsync everysec`. Returns the bytes dropped. A
        transaction cut in half is reverted by Redis when it loads the file."""
        assert self.proc is None, "only while Redis is down"
        dropped = path.stat().st_size - size
        with path.open("r+b") as f:
            f.truncate(size)
        return dropped


class SoakNode:
    """`python -m pushhub serve` on Redis, on a fixed loopback port, one worker."""

    def __init__(
        self, name: str, workdir: Path, *, redis_url: str, secret: str, log_level: str = "info"
    ) -> None:
        self.name = name
        self.dir = workdir
        self.port = free_port()
        self.redis_url = redis_url
        self.secret = secret
        self.log_level = log_level
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.dir / "server.log"

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def env(self) -> dict[str, str]:
        # Settings from the caller's shell must not change the server under test.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PUSHHUB_")}
        env.update(
            PUSHHUB_SECRET=self.secret,
            PUSHHUB_DATA_DIR=str(self.dir),
            PUSHHUB_REDIS_URL=self.redis_url,
            PUSHHUB_LOG_LEVEL=self.log_level,
        )
        return env

    async def start(self, timeout: float = 30.0) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"\n==== soak: start #{self.starts} of node {self.name} ====\n".encode())
        args = [sys.executable, "-m", "pushhub", "serve", "--host", HOST, "--port", str(self.port)]
        self.proc = _spawn(args, self.log_path, self.env())
        if not await self._poll("/healthz", timeout):
            code = self.proc.poll()
            self.kill()
            why = f"exited with {code}" if code is not None else f"not healthy in {timeout}s"
            raise StartError(f"node {self.name} {why}:\n{tail(self.log_path)}")

    async def ready(self, timeout: float) -> bool:
        """True once /readyz answers 200: the store answers and the pub/sub link is live."""
        return await self._poll("/readyz", timeout)

    async def _poll(self, path: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(trust_env=False, timeout=1.0) as client:
            while time.monotonic() < deadline:
                if not self.alive:
                    return False
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{self.url}{path}")).status_code == 200:
                        return True
                await asyncio.sleep(0.05)
        return False

    def kill(self) -> None:
        """SIGKILL: no drain, no close frames; readers see their connections reset."""
        if self.proc is not None:
            _kill_group(self.proc)
            self.proc = None

    async def terminate(self, timeout: float) -> tuple[int | None, float]:
        """SIGTERM and wait up to `timeout`: (exit code, seconds). A node that outlives the bound
        is killed and the code is None."""
        assert self.proc is not None
        started = time.monotonic()
        with contextlib.suppress(ProcessLookupError):
            self.proc.terminate()
        code = await _reap(self.proc, timeout)
        took = time.monotonic() - started
        if code is None:
            _kill_group(self.proc)
        self.proc = None
        return code, took

    def log_lines(self, levels: tuple[str, ...] = ("WARNING", "ERROR", "CRITICAL")) -> list[str]:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return []
        # pushhub logs "<time> LEVEL name: message"; uvicorn's own lines start "LEVEL:".
        return [
            line for line in text.splitlines()
            if any(f" {lv} " in line or line.startswith(f"{lv}:") for lv in levels)
            or line.startswith("Traceback")
        ]  # fmt: skip
