"""WebSocket framing (RFC 6455) and permessage-deflate (RFC 7692) for the fast path. Pure.

Server frames are built once per event and written as-is to every reader. With deflate we
always negotiate `server_no_context_takeover`, so a message compressed on its own (a fresh
compressor, no shared window) is valid for every reader: one compression per event.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
_DEFLATE_TAIL = b"\x00\x00\xff\xff"


def encode_frame(opcode: int, payload: bytes, *, rsv1: bool = False) -> bytes:
    """One unmasked, final frame, as a server sends it."""
    first = 0x80 | (0x40 if rsv1 else 0) | opcode
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", first, n)
    elif n < 1 << 16:
        header = struct.pack("!BBH", first, 126, n)
    else:
        header = struct.pack("!BBQ", first, 127, n)
    return header + payload


def deflate_message(payload: bytes) -> bytes:
    """Compress one message with no context, as RFC 7692 7.2.1 describes."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    data = compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return data[:-4] if data.endswith(_DEFLATE_TAIL) else data


def text_frame(text: str, *, deflate: bool = False) -> bytes:
    payload = text.encode()
    if deflate:
        return encode_frame(OP_TEXT, deflate_message(payload), rsv1=True)
    return encode_frame(OP_TEXT, payload)


def close_frame(code: int, reason: str) -> bytes:
    return encode_frame(OP_CLOSE, struct.pack("!H", code) + reason.encode()[:120])


PING_FRAME = encode_frame(OP_PING, b"")


@dataclass(frozen=True, slots=True)
class ClientFrame:
    fin: bool
    rsv1: bool
    opcode: int
    payload: bytes


class FrameError(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def parse_client_frames(buf: bytearray, max_size: int) -> list[ClientFrame]:
    """Take every complete frame off the front of `buf` (a client's bytes; frames are masked)."""
    frames: list[ClientFrame] = []
    while True:
        if len(buf) < 2:
            return frames
        b0, b1 = buf[0], buf[1]
        if b0 & 0x30:
            raise FrameError(1002, "reserved bits set")
        if not b1 & 0x80:
            raise FrameError(1002, "client frames must be masked")
        n = b1 & 0x7F
        pos = 2
        if n == 126:
            if len(buf) < 4:
                return frames
            n = struct.unpack_from("!H", buf, 2)[0]
            pos = 4
        elif n == 127:
            if len(buf) < 10:
                return frames
            n = struct.unpack_from("!Q", buf, 2)[0]
            pos = 10
        if n > max_size:
            raise FrameError(1009, "message too big")
        opcode = b0 & 0x0F
        if opcode >= 0x8 and (n > 125 or not b0 & 0x80):
            raise FrameError(1002, "bad control frame")
        if len(buf) < pos + 4 + n:
            return frames
        mask = bytes(buf[pos : pos + 4])
        data = bytes(buf[pos + 4 : pos + 4 + n])
        del buf[: pos + 4 + n]
        frames.append(ClientFrame(bool(b0 & 0x80), bool(b0 & 0x40), opcode, _unmask(data, mask)))


def _unmask(data: bytes, mask: bytes) -> bytes:
    if not data:
        return data
    # XOR as one big integer: fast enough for the few small messages readers send.
    n = len(data)
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")


@dataclass(frozen=True, slots=True)
class DeflateOffer:
    """What we answer to a client's permessage-deflate offer."""

    accept: bool
    response: str = ""
    client_window_bits: int = 15
    client_no_context: bool = False


def negotiate_deflate(header: str | None) -> DeflateOffer:
    """Accept the first permessage-deflate offer we can serve with one shared compression.

    We compress with a 15-bit window, so an offer that limits `server_max_window_bits` below 15
    is declined (the connection then runs uncompressed, which is always allowed).
    """
    if not header:
        return DeflateOffer(False)
    for offer in header.split(","):
        parts = [p.strip() for p in offer.split(";")]
        if parts[0].lower() != "permessage-deflate":
            continue
        params: dict[str, str | None] = {}
        ok = True
        for p in parts[1:]:
            if not p:
                continue
            name, _, value = p.partition("=")
            name = name.strip().lower()
            value = value.strip().strip('"')
            if name in params:
                ok = False
            params[name] = value or None
        if not ok:
            continue
        if params.get("server_max_window_bits") not in (None, "15"):
            continue
        response = ["permessage-deflate", "server_no_context_takeover"]
        client_bits = 15
        if "client_max_window_bits" in params:
            raw = params["client_max_window_bits"]
            if raw is not None:
                if not raw.isdigit() or not 8 <= int(raw) <= 15:
                    continue
                client_bits = int(raw)
                response.append(f"client_max_window_bits={client_bits}")
        unknown = set(params) - {
            "server_no_context_takeover", "client_no_context_takeover",
            "server_max_window_bits", "client_max_window_bits",
        }  # fmt: skip
        if unknown:
            continue
        no_ctx = "client_no_context_takeover" in params
        if no_ctx:
            response.append("client_no_context_takeover")
        return DeflateOffer(True, "; ".join(response), client_bits, no_ctx)
    return DeflateOffer(False)
