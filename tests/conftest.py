"""Fixtures shared by every suite: real redis-server and real pushhub processes on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import hypothesis  # noqa: F401  (imported early: a late import at summary time trips a CPython 3.11 AST bug)
import pytest

from pushhub.auth import issue_token
from tests.support.api import Editor
from tests.support.servers import TEST_SECRET, PushhubProcess, RedisProcess


@pytest.fixture
def redis_proc(tmp_path: Path) -> Iterator[RedisProcess]:
    """A fresh redis-server (append-only file on) that the test may stop, kill or freeze."""
    proc = RedisProcess(tmp_path / "redis").start()
    try:
        yield proc
    finally:
        proc.kill()


@pytest.fixture(params=["embedded", "redis"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def server(
    store_kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[PushhubProcess]:
    """One pushhub node on the store named by `store_kind` (both, when parametrized)."""
    redis_url = None
    if store_kind == "redis":
        redis_url = request.getfixturevalue("redis_proc").url
    node = PushhubProcess(tmp_path / "node", redis_url=redis_url).start()
    try:
        yield node
    finally:
        node.kill()


@pytest.fixture
def token() -> str:
    """An editor token valid for every blog."""
    return issue_token(TEST_SECRET, subject="Test Editor", blogs=["*"], ttl_seconds=3600)


@pytest.fixture
def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def editor(server: PushhubProcess, token: str) -> AsyncIterator[Editor]:
    client = Editor(server.url, token)
    try:
        yield client
    finally:
        await client.aclose()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Playwright's sync API keeps an event loop marked running in this thread for as long as it
    # lives (a session fixture), and asyncio tests cannot share the thread with it: run every
    # browser test last.
    browser_dir = Path(__file__).parent / "browser"
    items.sort(key=lambda item: browser_dir in item.path.parents)
