"""Real processes for tests: redis-server and pushhub nodes on free loopback ports.

Every wait here is bounded; a process that does not come up fails the test with its log.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

HOST = "127.0.0.1"
TEST_SECRET = "test-secret-not-for-production-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.5):
            return
        time.sleep(0.02)
    raise TimeoutError(f"nothing listens on {HOST}:{port} after {timeout}s")


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if not found:
        raise RuntimeError("redis-server is not installed: run scripts/test, which installs it")
    return found


class RedisProcess:
    """A redis-server of our own, with its append-only file on, that a test may stop and restart."""

    def __init__(self, workdir: Path, port: int | None = None, appendonly: bool = True) -> None:
        self.port = port or free_port()
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.appendonly = appendonly
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self) -> RedisProcess:
        args = [
            redis_server_binary(),
            "--bind", HOST, "--port", str(self.port), "--dir", str(self.dir),
            "--save", "", "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "always", "--logfile", str(self.dir / "redis.log"),
        ]  # fmt: skip
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_port(self.port)
        except TimeoutError:
            log = (self.dir / "redis.log").read_text(errors="replace")[-2000:]
            self.kill()
            raise RuntimeError(f"redis-server did not start:\n{log}") from None
        return self

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.thaw()
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.thaw()
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None

    def freeze(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)


class PushhubProcess:
    """`python -m pushhub serve` on a free loopback port, with its own data directory."""

    def __init__(
        self,
        data_dir: Path,
        redis_url: str | None = None,
        port: int | None = None,
        extra_env: dict[str, str] | None = None,
        extra_args: list[str] | None = None,
    ) -> None:
        self.port = port or free_port()
        self.data_dir = data_dir
        self.redis_url = redis_url
        self.extra_env = extra_env or {}
        self.extra_args = extra_args or []
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir / f"server-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PUSHHUB_")}
        env.update(
            PUSHHUB_SECRET=TEST_SECRET,
            PUSHHUB_DATA_DIR=str(self.data_dir),
            PUSHHUB_LOG_LEVEL="info",
        )
        if self.redis_url:
            env["PUSHHUB_REDIS_URL"] = self.redis_url
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 20.0) -> PushhubProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [sys.executable, "-m", "pushhub", "serve", "--host", HOST, "--port", str(self.port)]
        log = self.log_path.open("ab")
        # Its own session, so kill() can take down uvicorn's worker processes with it.
        self.proc = subprocess.Popen(
            [*args, *self.extra_args], env=self.env(), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"pushhub exited with {self.proc.returncode}:\n{self.log()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return self
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"pushhub did not become healthy in {timeout}s:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, then wait; a node that does not exit in time is killed and this raises."""
        if not self.proc or self.proc.poll() is not None:
            return None if not self.proc else self.proc.returncode
        self.proc.terminate()
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
            raise
        finally:
            self.proc = None if self.proc and self.proc.poll() is not None else self.proc

    def kill(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    def restart(self) -> PushhubProcess:
        self.stop()
        return self.start()


@contextlib.contextmanager
def running(*procs: RedisProcess | PushhubProcess) -> Iterator[None]:
    try:
        yield
    finally:
        for p in reversed(procs):
            p.kill()
