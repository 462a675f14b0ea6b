"""The floor: a bare uvloop server that writes one pre-built frame to every socket.

    python -m bench.floor --port 8095
    node loadgen.js --peer raw --sub 'ws://127.0.0.1:8095/sub/{ch}' \\
        --pub 'http://127.0.0.1:8095/pub/{ch}' --n 5000 --pid <its pid>

What issue 5 calls the floor for server CPU per delivery: no ASGI, no framework, no store, no
JSON; `POST /pub/{ch}` frames its body once as a WebSocket text message and writes those bytes
to every socket subscribed with `GET /sub/{ch}`, then answers 200. Anything a real server does
per delivery costs more than this. For measuring only: no limits, no keepalive, no auth, and it
binds to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
from collections import defaultdict
from collections.abc import Sequence

import uvloop

from pushhub.handshake import Upgrade, parse_upgrade, refusal_response, switching_protocols
from pushhub.wsframes import OP_TEXT, encode_frame

channels: defaultdict[str, set[asyncio.Transport]] = defaultdict(set)


class Conn(asyncio.Protocol):
    def __init__(self) -> None:
        self.buf = b""
        self.transport: asyncio.Transport | None = None
        self.channel: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.channel is not None:
            return  # a subscriber: what it sends (pongs, closes) is ignored
        self.buf += data
        head, sep, rest = self.buf.partition(b"\r\n\r\n")
        if not sep:
            return
        assert self.transport is not None
        if head.startswith(b"POST "):
            length = _content_length(head)
            if len(rest) < length:
                return
            self.buf = rest[length:]
            channel = head.split(b" ", 2)[1].decode().rsplit("/", 1)[-1]
            frame = encode_frame(OP_TEXT, rest[:length])
            readers = channels.get(channel, ())
            for transport in readers:
                transport.write(frame)
            body = b'{"subscribers":%d}' % len(readers)
            self.transport.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                b"content-length: %d\r\n\r\n%s" % (len(body), body)
            )
            return
        upgrade = parse_upgrade(head)
        if not isinstance(upgrade, Upgrade):
            self.transport.write(refusal_response(upgrade, []))
            self.transport.close()
            return
        self.channel = upgrade.path.rsplit("/", 1)[-1]
        channels[self.channel].add(self.transport)
        self.transport.write(switching_protocols(upgrade.key, []))

    def connection_lost(self, exc: Exception | None) -> None:
        if self.channel is not None and self.transport is not None:
            channels[self.channel].discard(self.transport)


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


async def serve(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(Conn, "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__)
    p.add_argument("--port", type=int, default=8095)
    args = p.parse_args(argv)
    uvloop.run(serve(args.port))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
