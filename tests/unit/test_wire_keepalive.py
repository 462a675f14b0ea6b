"""The fast path's keepalive (pushhub/wire.py, WirePool): who is pinged or cut, and that a
round is spread over the interval instead of pinging every reader in one go. Transports here
are recorders; tests/integration/test_keepalive.py runs the same against a real server."""

from __future__ import annotations

import asyncio
from collections import Counter
from itertools import pairwise

from pushhub.wire import KEEPALIVE_TICK, WirePool, WireReader
from pushhub.wsframes import PING_FRAME


class Recorder:
    """Enough of an asyncio transport for WireReader: it records what is written, and when."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.writes: list[tuple[float, bytes]] = []
        self.closed = False
        self.aborted = False

    def get_write_buffer_size(self) -> int:
        return 0

    def write(self, data: bytes) -> None:
        self.writes.append((self.loop.time(), data))

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def pings(self) -> list[float]:
        return [t for t, data in self.writes if data == PING_FRAME]


def _reader(pool: WirePool, loop: asyncio.AbstractEventLoop) -> tuple[WireReader, Recorder]:
    transport = Recorder(loop)
    reader = WireReader(
        transport,  # type: ignore[arg-type]
        pool, deflate=False, inflate_bits=15, inflate_reset=False,
    )  # fmt: skip
    pool.adopt(reader)
    return reader, transport


def _pool(interval: float) -> WirePool:
    pool = WirePool(buffer_limit=1 << 20, max_message=4096, ping_interval=interval)
    pool.loop = asyncio.get_running_loop()
    return pool


async def test_readers_are_spread_evenly_over_the_slots_and_leave_their_own() -> None:
    pool = _pool(2.0)
    loop = asyncio.get_running_loop()
    readers = [_reader(pool, loop)[0] for _ in range(1000)]
    slots = len(pool._slots)
    assert slots == round(2.0 / KEEPALIVE_TICK)
    assert Counter(len(s) for s in pool._slots) == {1000 // slots: slots}
    gone = readers[7]
    pool.discard(gone)
    assert gone not in pool.readers
    assert all(gone not in s for s in pool._slots)
    assert sum(len(s) for s in pool._slots) == 999


async def test_a_check_pings_the_quiet_cuts_the_silent_and_leaves_the_rest() -> None:
    pool = _pool(1.0)
    loop = asyncio.get_running_loop()
    now = loop.time()
    fresh, fresh_t = _reader(pool, loop)
    quiet, quiet_t = _reader(pool, loop)
    silent, silent_t = _reader(pool, loop)
    closing, closing_t = _reader(pool, loop)
    fresh.last_seen = now - 0.2  # heard from within half an interval
    quiet.last_seen = now - 0.8
    silent.last_seen = now - 2.5  # more than two intervals
    closing.last_seen = now - 5.0
    closing.closing = True
    pool._check([fresh, quiet, silent, closing], now)
    assert fresh_t.writes == []
    assert [data for _, data in quiet_t.writes] == [PING_FRAME]
    assert silent.closing and silent_t.closed
    last = silent_t.writes[-1][1]
    assert last[0] == 0x88  # a close frame, FIN set
    assert int.from_bytes(last[2:4], "big") == 1011
    assert closing_t.writes == [] and not closing_t.closed


async def test_a_round_pings_every_quiet_reader_once_slot_by_slot() -> None:
    interval = 0.5
    pool = _pool(interval)
    loop = asyncio.get_running_loop()
    readers = [_reader(pool, loop) for _ in range(100)]
    for reader, _ in readers:
        reader.last_seen = loop.time() - 0.3  # quiet, not yet silent for two intervals
    pool.start()
    try:
        async with asyncio.timeout(10):
            while not all(t.pings() for _, t in readers):
                await asyncio.sleep(0.01)
    finally:
        await pool.close(1001, "test over")
    assert all(len(t.pings()) == 1 for _, t in readers), "one ping per reader per round"
    # Slot by slot, a tick apart: each slot's readers were pinged together, after the slot
    # before it, and the round took most of the interval, not one instant.
    by_slot: dict[int, list[float]] = {}
    for reader, t in readers:
        by_slot.setdefault(reader.slot, []).extend(t.pings())
    assert len(by_slot) == len(pool._slots) == round(interval / KEEPALIVE_TICK)
    spans = [(min(ts), max(ts)) for _, ts in sorted(by_slot.items())]
    assert all(a_end < b_start for (_, a_end), (b_start, _) in pairwise(spans))
    assert spans[-1][1] - spans[0][0] >= interval - 2 * KEEPALIVE_TICK
