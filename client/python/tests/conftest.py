"""Fixtures for the client's tests: the repository's real-server fixtures, plus one long-lived
server per store shared by the tests that do not stop or break their server (each test uses
blogs of its own, so they cannot see each other's writes)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

# The repository root, for `tests.conftest` and `tests.support`, however pytest was started.
sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from client_helpers import FAST_RETRY, new_slug
from pushhub_client import AsyncPushHub, PushHub

from tests.conftest import *  # noqa: F403
from tests.support.servers import PushhubProcess, RedisProcess


@pytest.fixture(scope="session")
def session_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    proc = RedisProcess(tmp_path_factory.mktemp("redis")).start()
    try:
        yield proc
    finally:
        proc.kill()


def _start(tmp: Path, redis_url: str | None = None) -> PushhubProcess:
    return PushhubProcess(tmp, redis_url=redis_url).start()


@pytest.fixture(scope="session")
def embedded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PushhubProcess]:
    node = _start(tmp_path_factory.mktemp("embedded"))
    try:
        yield node
    finally:
        node.kill()


@pytest.fixture(scope="session")
def redis_server(
    tmp_path_factory: pytest.TempPathFactory, session_redis: RedisProcess
) -> Iterator[PushhubProcess]:
    node = _start(tmp_path_factory.mktemp("redis-node"), session_redis.url)
    try:
        yield node
    finally:
        node.kill()


@pytest.fixture(params=["embedded", "redis"])
def shared_server(request: pytest.FixtureRequest) -> PushhubProcess:
    """A running server on each store, shared across tests: do not stop it."""
    node: PushhubProcess = request.getfixturevalue(f"{request.param}_server")
    return node


@pytest.fixture
def hub(shared_server: PushhubProcess, token: str) -> Iterator[PushHub]:
    with PushHub(shared_server.url, token, retry=FAST_RETRY) as client:
        yield client


@pytest.fixture
async def ahub(shared_server: PushhubProcess, token: str) -> AsyncIterator[AsyncPushHub]:
    async with AsyncPushHub(shared_server.url, token, retry=FAST_RETRY) as client:
        yield client


@pytest.fixture
def slug(hub: PushHub) -> str:
    """A fresh blog on the shared server."""
    name = new_slug()
    hub.create_blog(name, f"Blog {name}", summary="made by a test")
    return name
