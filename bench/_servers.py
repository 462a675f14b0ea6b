"""The processes a benchmark runs against: a redis-server and a pushhub node, each its own
process on a free loopback port, logging to a file that is shown when something goes wrong."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bench._proc import HOST, end_tree, free_port, spawn, wait_port


def tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


class StartError(RuntimeError):
    """A process did not come up in time; the message carries the end of its log."""


class RedisServer:
    """redis-server for benchmarking: no RDB snapshots and, unless asked, no append-only file.

    With the AOF off a publish is acknowledged before it is on disk, so these numbers leave out
    the fsync that production (`appendfsync always`) pays on every write.
    """

    def __init__(self, workdir: Path, *, appendonly: bool = False) -> None:
        self.dir = workdir
        self.port = free_port()
        self.appendonly = appendonly
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def describe(self) -> str:
        if self.appendonly:
            return "redis-server, AOF on (appendfsync always)"
        return "redis-server, AOF off and no RDB snapshots (benchmark setting, not for production)"

    def start(self, timeout: float = 10.0) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise StartError("redis-server is not installed (apt-get install redis-server)")
        self.dir.mkdir(parents=True, exist_ok=True)
        log = self.dir / "redis.log"
        args = [
            binary, "--bind", HOST, "--port", str(self.port), "--dir", str(self.dir),
            "--save", "", "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "always", "--logfile", str(log),
        ]  # fmt: skip
        self.proc = spawn(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not (wait_port(self.port, timeout) and self._pong()):
            self.stop()
            raise StartError(f"redis-server did not start in {timeout}s:\n{tail(log)}")
        return self

    def _pong(self) -> bool:
        with contextlib.suppress(OSError), socket.create_connection((HOST, self.port), 2.0) as s:
            s.settimeout(2.0)
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
        return False

    def stop(self) -> None:
        if self.proc is not None:
            end_tree(self.proc, grace=5.0)
            self.proc = None


class PushhubServer:
    """`python -m pushhub serve` with its own data directory, secret and (maybe) Redis.
    `module` runs another module's `serve` instead, one that wraps pushhub's (bench._stamped)."""

    def __init__(
        self,
        data_dir: Path,
        *,
        secret: str,
        redis_url: str | None = None,
        workers: int = 1,
        extra_env: dict[str, str] | None = None,
        module: str = "pushhub",
    ) -> None:
        self.module = module
        self.data_dir = data_dir
        self.extra_env = extra_env or {}
        self.secret = secret
        self.redis_url = redis_url
        self.workers = workers
        self.port = free_port()
        self.log_path = data_dir / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def env(self) -> dict[str, str]:
        # Settings from the caller's shell must not leak into the measured server.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PUSHHUB_")}
        env.update(
            PUSHHUB_SECRET=self.secret,
            PUSHHUB_DATA_DIR=str(self.data_dir),
            # Per-connection access lines for thousands of readers would be measured as server
            # work; warnings and errors still reach the log.
            PUSHHUB_LOG_LEVEL="warning",
        )
        if self.redis_url:
            env["PUSHHUB_REDIS_URL"] = self.redis_url
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 30.0) -> PushhubServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            sys.executable,
            "-m",
            self.module,
            "serve",
            "--host",
            HOST,
            "--port",
            str(self.port),
        ]
        if self.workers > 1:
            args += ["--workers", str(self.workers)]
        with self.log_path.open("ab") as log:
            self.proc = spawn(args, env=self.env(), stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        with httpx.Client(trust_env=False, timeout=1.0) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    code = self.proc.returncode
                    raise StartError(f"pushhub exited with {code}:\n{tail(self.log_path)}")
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(f"{self.url}/healthz").status_code == 200:
                        return self
                time.sleep(0.05)
        self.stop()
        raise StartError(f"pushhub did not become healthy in {timeout}s:\n{tail(self.log_path)}")

    def log_tail(self) -> str:
        return tail(self.log_path)

    def stop(self) -> None:
        if self.proc is not None:
            end_tree(self.proc, grace=15.0)
            self.proc = None
