"""Small helpers shared by the client's tests."""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

from pushhub_client import Backoff, RetryPolicy

from pushhub.auth import issue_token
from tests.support.servers import TEST_SECRET, PushhubProcess

# Retries fast enough for tests, still exercising backoff.
FAST_RETRY = RetryPolicy(attempts=4, backoff=Backoff(initial=0.05, factor=2.0, cap=0.3))


def token_for(*blogs: str, subject: str = "Test Editor") -> str:
    return issue_token(TEST_SECRET, subject=subject, blogs=list(blogs), ttl_seconds=3600)


def new_slug(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


BIN = Path(sys.executable).parent


def program(name: str) -> list[str]:
    """The installed console script (as an editor runs it), or the module if not installed."""
    script = BIN / name
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "pushhub" if name == "pushhub" else "pushhub_client"]


def cli_env(server: PushhubProcess, token: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUSHHUB_")}
    env["PUSHHUB_URL"] = server.url
    if token is not None:
        env["PUSHHUB_TOKEN"] = token
    return env
