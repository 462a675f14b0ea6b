"""The parked readers of `bench.scale`: their frame reader, and what `collect` counts from the
sockets' queues (real loopback TCP connections, no server)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from bench._parked import SO_TIMESTAMPNS, FrameError, Reader, collect, server_frames
from bench.scale import collected_problems
from pushhub.wsframes import OP_TEXT, encode_frame
from tests.support.bench import frame


def test_server_frames_takes_whole_frames_and_keeps_a_partial_one() -> None:
    big = b"x" * 300  # a 16-bit length
    whole = encode_frame(OP_TEXT, b"one") + encode_frame(OP_TEXT, big)
    cut = encode_frame(OP_TEXT, b"three")
    buf = bytearray(whole + cut[:4])

    assert list(server_frames(buf)) == [(OP_TEXT, b"one"), (OP_TEXT, big)]
    assert buf == cut[:4]
    buf += cut[4:]
    assert list(server_frames(buf)) == [(OP_TEXT, b"three")]
    assert buf == b""


def test_server_frames_refuses_a_masked_frame() -> None:
    with pytest.raises(FrameError):
        list(server_frames(bytearray(b"\x81\x83abcd123")))


def _stamped(reader: socket.socket, writer: socket.socket) -> bool:
    writer.sendall(b"?")
    _data, ancillary, _flags, _addr = reader.recvmsg(16, 64)
    return any(kind == SO_TIMESTAMPNS for _level, kind, _value in ancillary)


@pytest.fixture
def pairs() -> Iterator[list[tuple[socket.socket, socket.socket]]]:
    """Two loopback connections: (the reader's end, stamped and non-blocking; the writer's).

    Linux turns receive time stamps on for the whole stack a moment after the first socket
    asks (deferred work), so segments sent right away may come unstamped: the first pair is
    probed with a byte until one comes stamped."""
    made: list[tuple[socket.socket, socket.socket]] = []
    with socket.create_server(("127.0.0.1", 0)) as listener:
        for _ in range(2):
            reader = socket.socket()
            reader.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            reader.connect(listener.getsockname())
            writer, _ = listener.accept()
            made.append((reader, writer))
    deadline = time.monotonic() + 5
    while not _stamped(*made[0]):
        assert time.monotonic() < deadline, "the kernel gave no receive time stamps in 5 s"
        time.sleep(0.01)
    for reader, _ in made:
        reader.setblocking(False)
    yield made
    for a, b in made:
        a.close()
        b.close()


def test_collect_counts_by_seq_and_stamps_the_last_arrival(
    pairs: list[tuple[socket.socket, socket.socket]],
) -> None:
    (ok_sock, ok_writer), (bad_sock, bad_writer) = pairs
    ok, bad = Reader(ok_sock, base=10), Reader(bad_sock, base=10)
    since = time.time_ns()
    ok_writer.sendall(b"".join(encode_frame(OP_TEXT, frame(s)) for s in (11, 12, 13, 14)))
    # 12 twice, 14 before 13, and 11 never comes.
    bad_writer.sendall(b"".join(encode_frame(OP_TEXT, frame(s)) for s in (12, 12, 14, 13)))
    time.sleep(0.05)

    result = collect([ok, bad], messages=4, timeout=0.5, since_ns=since)

    assert result["delivered"] == 7
    assert result["lost"] == 1
    assert result["dup"] == 1
    assert result["out_of_order"] == 1
    assert result["expected_deliveries"] == 8
    assert result["stamped"] == 2
    assert 0 <= result["reader_done_ms"]["max"] < 5000
    assert not result["closed"]


def test_collect_waits_for_frames_still_to_come_and_notes_a_close(
    pairs: list[tuple[socket.socket, socket.socket]],
) -> None:
    (late_sock, late_writer), (gone_sock, gone_writer) = pairs
    late, gone = Reader(late_sock, base=0), Reader(gone_sock, base=0)
    since = time.time_ns()
    late_writer.sendall(encode_frame(OP_TEXT, frame(1)))
    gone_writer.sendall(encode_frame(0x8, (1008).to_bytes(2, "big") + b"slow"))
    gone_writer.close()

    def later() -> None:
        time.sleep(0.2)
        late_writer.sendall(encode_frame(OP_TEXT, frame(2)))

    threading.Thread(target=later).start()
    result = collect([late, gone], messages=2, timeout=5.0, since_ns=since)

    assert late.seqs == [1, 2]
    assert result["closed"] == {"close 1008": 1}
    assert result["lost"] == 2  # both of the closed reader's
    assert not result["timed_out"]
    assert result["reader_done_ms"]["max"] >= 150  # the late frame's arrival, not the read's


def collected(**changes: object) -> dict[str, object]:
    res: dict[str, object] = {
        "lost": 0, "dup": 0, "out_of_order": 0, "unexpected_frames": 0, "closed": {},
        "timed_out": False, "delivered": 8, "expected_deliveries": 8,
        "last_arrival_ns": 1_000, "stamped": 2, "readers": 2,
    }  # fmt: skip
    return {**res, **changes}


def test_scale_accepts_a_clean_collect_and_names_each_fault() -> None:
    assert collected_problems(collected(), quiet_ns=2_000) == []
    faults = collected_problems(
        collected(lost=1, delivered=7, closed={"close 1013": 1}, stamped=1), quiet_ns=2_000
    )
    assert faults == [
        "lost = 1", "readers closed: {'close 1013': 1}", "delivered 7 of 8",
        "1 readers without a receive time",
    ]  # fmt: skip


def test_scale_refuses_arrivals_stamped_after_the_server_went_quiet() -> None:
    # They waited at the server for room in a receive queue: the time would be the collect's.
    (problem,) = collected_problems(collected(last_arrival_ns=3_000), quiet_ns=2_000)
    assert "after the server went quiet" in problem
