"""The WebSocket opening handshake, without a socket: what is accepted, and how each bad
request is answered (the same statuses as the websockets library, plus 414/431)."""

from __future__ import annotations

import pytest

from pushhub.handshake import (
    Refusal,
    Upgrade,
    accept_key,
    http_response,
    parse_upgrade,
    refusal_response,
    switching_protocols,
)

KEY = b"dGhlIHNhbXBsZSBub25jZQ=="


def request(
    target: bytes = b"/ws/blogs/live?since=3&epoch=e1",
    *,
    method: bytes = b"GET",
    version: bytes = b"HTTP/1.1",
    headers: list[bytes] | None = None,
) -> bytes:
    lines = [method + b" " + target + b" " + version]
    if headers is None:
        headers = [
            b"host: 127.0.0.1",
            b"upgrade: websocket",
            b"connection: Upgrade",
            b"sec-websocket-key: " + KEY,
            b"sec-websocket-version: 13",
        ]
    return b"\r\n".join([*lines, *headers]) + b"\r\n\r\n"


def base_headers(**replace: bytes | None) -> list[bytes]:
    values: dict[str, bytes | None] = {
        "host": b"127.0.0.1",
        "upgrade": b"websocket",
        "connection": b"keep-alive, Upgrade",
        "sec-websocket-key": KEY,
        "sec-websocket-version": b"13",
    }
    values.update(replace)
    return [name.encode() + b": " + v for name, v in values.items() if v is not None]


def test_rfc_6455_example_key() -> None:
    assert accept_key(KEY) == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_a_valid_request_becomes_the_scope_parts() -> None:
    got = parse_upgrade(
        request(
            b"/ws/blogs/caf%C3%A9?since=3",
            headers=[*base_headers(), b"Sec-WebSocket-Protocol: a, b", b"X-Odd:  spaced  "],
        )
    )

    assert isinstance(got, Upgrade)
    assert got.path == "/ws/blogs/café"
    assert got.raw_path == b"/ws/blogs/caf%C3%A9"
    assert got.query_string == b"since=3"
    assert got.key == KEY
    assert got.subprotocols == ["a", "b"]
    assert (b"x-odd", b"spaced") in got.headers  # names lower-cased, values trimmed
    assert (b"connection", b"keep-alive, Upgrade") in got.headers


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (request(method=b"POST"), 405),
        (request(version=b"HTTP/1.0"), 505),
        (request(headers=base_headers(upgrade=None)), 426),
        (request(headers=base_headers(upgrade=b"h2c")), 426),
        (request(headers=base_headers(connection=b"keep-alive")), 426),
        (request(headers=base_headers(**{"sec-websocket-key": None})), 400),
        (request(headers=base_headers(**{"sec-websocket-key": b"short"})), 400),
        (request(headers=base_headers(**{"sec-websocket-key": b"not base64 at all!!!!!!="})), 400),
        (request(headers=[*base_headers(), b"sec-websocket-key: " + KEY]), 400),
        (request(headers=base_headers(**{"sec-websocket-version": b"8"})), 400),
        (request(headers=base_headers(**{"sec-websocket-version": None})), 400),
        (request(headers=[*base_headers(), b"content-length: 10"]), 400),
        (request(headers=[*base_headers(), b"transfer-encoding: chunked"]), 400),
        (request(headers=[*base_headers(), b"no colon here"]), 400),
        (request(headers=[*base_headers(), b" folded: value"]), 400),
        (b"GET /only-two-parts\r\n\r\n", 400),
        (b"\r\n\r\n", 400),
        (request(b"/ws/blogs/live?pad=" + b"p" * 9000), 414),
        (request(headers=[*base_headers(), b"x-long: " + b"v" * 9000]), 431),
        (request(headers=[*base_headers(), *(b"x-h%d: v" % i for i in range(130))]), 431),
    ],
    ids=[
        "post", "http-1.0", "no-upgrade", "other-upgrade", "no-connection-upgrade", "no-key",
        "short-key", "bad-base64-key", "two-keys", "version-8", "no-version", "body",
        "chunked", "no-colon", "obs-fold", "two-part-line", "empty", "long-line",
        "long-header", "too-many-headers",
    ],
)  # fmt: skip
def test_bad_requests_are_refused_with_a_status(raw: bytes, status: int) -> None:
    got = parse_upgrade(raw)

    assert isinstance(got, Refusal)
    assert got.status == status, got.reason


def test_refusals_carry_the_headers_clients_need() -> None:
    wrong_method = parse_upgrade(request(method=b"PUT"))
    no_upgrade = parse_upgrade(request(headers=base_headers(upgrade=None)))
    assert isinstance(wrong_method, Refusal) and isinstance(no_upgrade, Refusal)

    assert (b"allow", b"GET") in wrong_method.headers
    assert (b"upgrade", b"websocket") in no_upgrade.headers


def test_refusal_response_is_a_complete_closing_http_answer() -> None:
    refusal = Refusal(426, "invalid upgrade", [(b"upgrade", b"websocket")])

    raw = refusal_response(refusal, [(b"server", b"uvicorn")])

    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 426 Upgrade Required"
    assert b"server: uvicorn" in lines and b"upgrade: websocket" in lines
    assert b"connection: close" in lines
    assert b"content-length: %d" % len(body) in lines
    assert body == b"Failed to open a WebSocket connection: invalid upgrade.\n"


def test_http_response_keeps_the_apps_content_type_and_sets_its_own_length() -> None:
    raw = http_response(
        503,
        [(b"content-type", b"application/json"), (b"content-length", b"999")],
        b'{"error":"overloaded"}',
    )

    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert b"content-length: 999" not in head
    assert b"content-length: 22" in head
    assert head.count(b"content-type") == 1
    assert body == b'{"error":"overloaded"}'


def test_switching_protocols_answers_the_key_with_the_extra_headers() -> None:
    raw = switching_protocols(KEY, [(b"sec-websocket-extensions", b"permessage-deflate")])

    assert raw.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in raw
    assert b"sec-websocket-extensions: permessage-deflate\r\n" in raw
    assert raw.endswith(b"\r\n\r\n")
