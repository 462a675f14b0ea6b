"""What the service tells the hub after a commit (Service._commit), with stand-ins for the
store and the hub: the hub gets the store's own frame, once, and a failure there does not
turn an accepted write into an error."""

from __future__ import annotations

import logging

import orjson
import pytest

from pushhub.brokers.base import Change, Committed
from pushhub.protocol import event_frame
from pushhub.service import Service


class Store:
    """Answers every commit with seq 7 of epoch e1 (or as a replay of an earlier one)."""

    def __init__(self, *, replayed: bool = False) -> None:
        self.replayed = replayed
        self.changes: list[Change] = []

    async def commit(self, change: Change) -> Committed:
        self.changes.append(change)
        return Committed(7, "e1", change.result, replayed=self.replayed)


class Hub:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.commits: list[tuple[str, int, str, str]] = []

    def on_commit(self, blog: str, seq: int, epoch: str, frame: str) -> None:
        self.commits.append((blog, seq, epoch, frame))
        if self.error is not None:
            raise self.error


def _service(store: Store, hub: Hub) -> Service:
    return Service(store, hub)  # type: ignore[arg-type]  # stand-ins with what it uses


async def test_the_hub_gets_the_frame_the_store_publishes() -> None:
    store, hub = Store(), Hub()
    result = await _service(store, hub).create_entry("b", {"body": "Hello"}, editor="Ed")
    (change,) = store.changes
    assert hub.commits == [("b", 7, "e1", event_frame(7, "e1", change.event_body))]
    frame = orjson.loads(hub.commits[0][3])
    assert frame["seq"] == result.seq == 7 and frame["entry"]["id"] == result.entry["id"]  # type: ignore[index]


async def test_a_replayed_write_is_not_fanned_out_again() -> None:
    hub = Hub()
    result = await _service(Store(replayed=True), hub).create_entry("b", {"body": "x"}, editor="E")
    assert result.seq == 7 and hub.commits == []


async def test_a_failure_in_the_hub_still_answers_the_write(
    caplog: pytest.LogCaptureFixture,
) -> None:
    hub = Hub(RuntimeError("a reader's transport broke"))
    service = _service(Store(), hub)
    with caplog.at_level(logging.ERROR, logger="pushhub.service"):
        result = await service.create_entry("b", {"body": "x"}, editor="E")
    assert result.seq == 7 and service.writes == 1 and len(hub.commits) == 1
    assert "fanning out b seq 7" in caplog.text
