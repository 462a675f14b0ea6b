"""`pushhub serve` with a time stamp at each stage of a publish, for bench.stages.

    BENCH_STAMPS=/path/stamps.json python -m bench._stamped serve [pushhub serve options]

Wraps, before the server starts, the functions a publish passes through, and appends
(stage, time.monotonic_ns()) to one list; SIGUSR1 writes the list to $BENCH_STAMPS as JSON.
The stages, in the order a publish meets them (`committed`, `answered` and `event` may come in
another order: the store's answer and its pub/sub message arrive on two connections):

    read       uvicorn's HTTP protocol gets bytes that start a POST (data_received)
    route      the route asks for the editor (Runtime.editor): uvicorn, the middleware and
               Starlette's routing are behind it
    checked    token, blog and revocation checked (Runtime.editor returns)
    commit     the change is built and goes to the store (Service._commit)
    committed  the store's answer is back (the broker's commit returns)
    answered   the 201 is handed to uvicorn (RequestResponseCycle.send, its status line)
    event      the hub takes the event: from the store's answer when it is the next one
               (Hub.on_commit), else from pub/sub or the embedded store (Hub.on_message)
    fanned     the hub has written it to every reader (the same call returns)

It reaches into uvicorn's httptools protocol; tests/integration/test_bench_stages.py fails if
a stage stops being stamped.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from types import FrameType
from typing import Any

from uvicorn.protocols.http import httptools_impl

from pushhub import cli
from pushhub.brokers.embedded import EmbeddedBroker
from pushhub.brokers.redis import RedisBroker
from pushhub.hub import Hub
from pushhub.runtime import Runtime
from pushhub.service import Service

STAMPS: list[tuple[str, int]] = []


def _stamp(stage: str) -> None:
    STAMPS.append((stage, time.monotonic_ns()))


def install() -> None:
    data_received = httptools_impl.HttpToolsProtocol.data_received
    send = httptools_impl.RequestResponseCycle.send
    editor = Runtime.editor
    commit = Service._commit
    on_message = Hub.on_message
    on_commit = Hub.on_commit

    def stamped_data_received(self: Any, data: bytes) -> None:
        if data.startswith(b"POST "):
            _stamp("read")
        data_received(self, data)

    async def stamped_send(self: Any, message: Any) -> None:
        if message["type"] == "http.response.start" and message["status"] == 201:
            _stamp("answered")
        await send(self, message)

    async def stamped_editor(self: Runtime, *args: Any, **kwargs: Any) -> Any:
        _stamp("route")
        result = await editor(self, *args, **kwargs)
        _stamp("checked")
        return result

    async def stamped_commit(self: Service, change: Any) -> Any:
        _stamp("commit")
        return await commit(self, change)

    def stamp_answer(broker: Any) -> None:
        store_commit = broker.commit

        async def stamped_store_commit(self: Any, change: Any) -> Any:
            result = await store_commit(self, change)
            _stamp("committed")
            return result

        broker.commit = stamped_store_commit

    def stamped_on_message(self: Hub, blog: str, frame: str) -> None:
        _stamp("event")
        on_message(self, blog, frame)
        _stamp("fanned")

    def stamped_on_commit(self: Hub, blog: str, seq: int, epoch: str, frame: str) -> None:
        at = time.monotonic_ns()
        on_commit(self, blog, seq, epoch, frame)
        ch = self.channels.get(blog)
        if ch is not None and ch.replica is not None and ch.replica.head == seq:
            STAMPS.append(("event", at))  # only when this call fanned it out
            _stamp("fanned")

    httptools_impl.HttpToolsProtocol.data_received = stamped_data_received  # type: ignore[method-assign]
    httptools_impl.RequestResponseCycle.send = stamped_send  # type: ignore[method-assign]
    Runtime.editor = stamped_editor  # type: ignore[method-assign]
    Service._commit = stamped_commit  # type: ignore[method-assign]
    stamp_answer(EmbeddedBroker)
    stamp_answer(RedisBroker)
    Hub.on_message = stamped_on_message  # type: ignore[method-assign]
    Hub.on_commit = stamped_on_commit  # type: ignore[method-assign]


def _write(signum: int, frame: FrameType | None) -> None:
    path = os.environ["BENCH_STAMPS"]
    with open(path + ".tmp", "w") as f:
        json.dump(STAMPS, f)
    os.replace(path + ".tmp", path)


if __name__ == "__main__":
    install()
    signal.signal(signal.SIGUSR1, _write)
    sys.exit(cli.main(sys.argv[1:]))
