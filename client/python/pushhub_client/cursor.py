"""Where a reader stands in a blog's history, and what to do with the next frame. Pure.

The subscriber feeds every frame it receives through a `Cursor`; the cursor says whether to
deliver it, drop it (already delivered, e.g. replayed after a reconnect) or reconnect (a gap).
This is what makes delivery exactly-once across reconnects.
"""

from __future__ import annotations

import enum

from pushhub_client.models import Event, Frame, Snapshot


class Verdict(enum.Enum):
    DELIVER = "deliver"
    DUPLICATE = "duplicate"
    GAP = "gap"


class Cursor:
    """The last seq delivered and the epoch it belongs to (None before the first frame)."""

    def __init__(self, since: int | None = None, epoch: str | None = None) -> None:
        self.seq = since
        self.epoch = epoch

    def accept(self, frame: Frame) -> Verdict:
        """Judge `frame`, and when it is to be delivered, move the cursor past it."""
        if isinstance(frame, Snapshot):
            # A snapshot states the whole blog at its seq: always the new starting point.
            self.seq, self.epoch = frame.seq, frame.epoch
            return Verdict.DELIVER
        return self._accept_event(frame)

    def _accept_event(self, event: Event) -> Verdict:
        if self.epoch is not None and event.epoch != self.epoch:
            # Another history: only a snapshot (reset) can bring us into it.
            return Verdict.GAP
        if self.seq is None:
            # An event first, with no position of ours: we cannot know what came before it.
            return Verdict.GAP
        if event.seq <= self.seq:
            return Verdict.DUPLICATE
        if event.seq != self.seq + 1:
            return Verdict.GAP
        self.seq, self.epoch = event.seq, event.epoch
        return Verdict.DELIVER

    def query(self) -> dict[str, str]:
        """The query that resumes right after the cursor (none: start with a snapshot)."""
        if self.seq is None:
            return {}
        params = {"since": str(self.seq)}
        if self.epoch is not None:
            params["epoch"] = self.epoch
        return params
