"""A loopback TCP proxy for fault tests: forwards bytes both ways, and can stop forwarding
the server's replies on pub/sub connections only (a "stalled subscription"), or hold the
replies on the other connections for a while (commands answered late, messages not)."""

from __future__ import annotations

import asyncio
import contextlib

from tests.support.servers import HOST


class StallingProxy:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.stall_pubsub = False
        self.reply_delay = 0.0  # s added to every reply on a command connection
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> StallingProxy:
        self._server = await asyncio.start_server(self._handle, HOST, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection(HOST, self.target_port)
        except OSError:
            client_w.close()
            return
        state = {"pubsub": False}

        async def upstream() -> None:
            while data := await client_r.read(65536):
                if b"SUBSCRIBE" in data.upper():
                    state["pubsub"] = True
                server_w.write(data)
                await server_w.drain()

        held: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        async def downstream() -> None:
            while data := await server_r.read(65536):
                while self.stall_pubsub and state["pubsub"]:
                    await asyncio.sleep(0.05)
                delay = 0.0 if state["pubsub"] else self.reply_delay
                held.put_nowait((loop.time() + delay, data))
            held.put_nowait((0.0, b""))

        async def deliver() -> None:
            # Each reply keeps its own due time, so a delay adds latency, not a queue.
            while True:
                due, data = await held.get()
                if not data:
                    return
                await asyncio.sleep(max(0.0, due - loop.time()))
                client_w.write(data)
                await client_w.drain()

        tasks = [asyncio.create_task(f()) for f in (upstream, downstream, deliver)]
        self._tasks.update(tasks)
        with contextlib.suppress(Exception):
            # Not on downstream's end: what it handed to deliver is still to be sent.
            await asyncio.wait([tasks[0], tasks[2]], return_when=asyncio.FIRST_COMPLETED)
        for t in tasks:
            t.cancel()
            self._tasks.discard(t)
        for w in (client_w, server_w):
            w.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for t in list(self._tasks):
            t.cancel()
