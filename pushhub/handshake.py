"""The WebSocket opening handshake (RFC 6455 section 4.2), server side. Pure: bytes in, a
verdict and bytes out, so every refusal is tested without a socket.

It answers exactly as the `websockets` library does for the same request (405, 426, 400, 505
and their headers), plus 414/431 for a request head over the limits, which uvicorn's own
WebSocket protocol builds but never sends.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import unquote

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_LINE = 8192
MAX_HEADERS = 128

Headers = list[tuple[bytes, bytes]]


@dataclass(frozen=True, slots=True)
class Upgrade:
    """A valid upgrade request: what an ASGI scope needs, and the key to answer."""

    path: str
    raw_path: bytes
    query_string: bytes
    headers: Headers  # names lower-cased, in the order received
    subprotocols: list[str]
    key: bytes


@dataclass(frozen=True, slots=True)
class Refusal:
    status: int
    reason: str
    headers: Headers


def parse_upgrade(head: bytes) -> Upgrade | Refusal:
    """The request head (request line to the blank line, inclusive or not) as an upgrade."""
    lines = head.split(b"\r\n")
    while lines and not lines[-1]:
        lines.pop()
    if not lines:
        return Refusal(400, "empty request", [])
    if len(lines) - 1 > MAX_HEADERS:
        return Refusal(431, f"more than {MAX_HEADERS} headers", [])
    if len(lines[0]) > MAX_LINE:
        return Refusal(414, "request line too long", [])
    parts = lines[0].split(b" ")
    if len(parts) != 3:
        return Refusal(400, "malformed request line", [])
    method, target, version = parts
    headers: Headers = []
    # One pass collects what the checks below need (this runs once per reader connection).
    connection: list[bytes] = []
    upgrades: list[bytes] = []
    keys: list[bytes] = []
    versions: list[bytes] = []
    protocols: list[str] = []
    body = False
    for line in lines[1:]:
        if len(line) > MAX_LINE:
            return Refusal(431, "header line too long", [])
        name, sep, value = line.partition(b":")
        if not sep or not name or name != name.strip():
            return Refusal(400, "malformed header line", [])
        name, value = name.lower(), value.strip(b" \t")
        headers.append((name, value))
        if name == b"connection":
            connection += [token.strip().lower() for token in value.split(b",")]
        elif name == b"upgrade":
            upgrades.append(value.lower())
        elif name == b"sec-websocket-key":
            keys.append(value)
        elif name == b"sec-websocket-version":
            versions.append(value)
        elif name == b"sec-websocket-protocol":
            protocols += [t.strip() for t in value.decode("latin-1").split(",") if t.strip()]
        elif name == b"transfer-encoding" or (name == b"content-length" and value != b"0"):
            body = True
    if version != b"HTTP/1.1":
        return Refusal(505, "unsupported protocol; expected HTTP/1.1", [])
    if method != b"GET":
        return Refusal(405, "invalid HTTP method; expected GET", [(b"allow", b"GET")])
    # A handshake has no body; one announced anyway would be read as WebSocket frames.
    if body:
        return Refusal(400, "unsupported request body", [])
    if b"upgrade" not in connection or upgrades != [b"websocket"]:
        return Refusal(426, "invalid upgrade; expected WebSocket", [(b"upgrade", b"websocket")])
    if len(keys) != 1 or not _valid_key(keys[0]):
        return Refusal(400, "missing or invalid Sec-WebSocket-Key header", [])
    if versions != [b"13"]:
        return Refusal(400, "missing or invalid Sec-WebSocket-Version header", [])
    raw_path, _, query = target.partition(b"?")
    try:
        path = unquote(raw_path.decode("ascii"))
    except UnicodeDecodeError:
        return Refusal(400, "request target is not ASCII", [])
    return Upgrade(path, raw_path, query, headers, protocols, keys[0])


def _valid_key(key: bytes) -> bool:
    try:
        return len(base64.b64decode(key, validate=True)) == 16
    except binascii.Error:
        return False


def accept_key(key: bytes) -> bytes:
    return base64.b64encode(hashlib.sha1(key + GUID).digest())


def switching_protocols(key: bytes, headers: Headers) -> bytes:
    """The 101 answer, with the server's default headers and the app's (extensions...)."""
    out = [
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n",
        b"Sec-WebSocket-Accept: ", accept_key(key), b"\r\n",
    ]  # fmt: skip
    for name, value in headers:
        out += [name, b": ", value, b"\r\n"]
    out.append(b"\r\n")
    return b"".join(out)


def http_response(status: int, headers: Headers, body: bytes) -> bytes:
    """A complete HTTP/1.1 answer that closes the connection (refusals, denials)."""
    try:
        phrase = HTTPStatus(status).phrase.encode()
    except ValueError:
        phrase = b""
    names = {name.lower() for name, _ in headers}
    out = [b"HTTP/1.1 %d %s\r\n" % (status, phrase)]
    for name, value in headers:
        if name.lower() not in (b"content-length", b"connection"):
            out += [name, b": ", value, b"\r\n"]
    if b"content-type" not in names and body:
        out.append(b"content-type: text/plain; charset=utf-8\r\n")
    out += [b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body), body]
    return b"".join(out)


def refusal_response(refusal: Refusal, default_headers: Headers) -> bytes:
    body = f"Failed to open a WebSocket connection: {refusal.reason}.\n".encode()
    return http_response(refusal.status, [*default_headers, *refusal.headers], body)
