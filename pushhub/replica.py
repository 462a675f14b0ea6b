"""A blog as one node holds it in memory: current state (entries with their Markdown source,
for the API), recent event frames as readers get them, the encoded snapshot. Kept current by
applying the store's events. Pure: no I/O.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from itertools import islice
from typing import cast

import orjson

from pushhub.model import BlogDoc, EntryDoc, EventDoc, ordered
from pushhub.protocol import Frame, Position, parse_event, reader_event, snapshot_frame
from pushhub.recovery import Live, ReplayAfter, classify_live, plan_resume


@dataclass(frozen=True, slots=True)
class Loaded:
    """A blog as read from the store in one consistent read."""

    blog_json: str
    entries_json: list[str]
    seq: int
    epoch: str
    history: list[str]  # event frames, oldest first, the last ones up to the history limit


class BlogReplica:
    def __init__(self, loaded: Loaded, history_limit: int) -> None:
        self.blog: BlogDoc = cast(BlogDoc, orjson.loads(loaded.blog_json))
        self.entries: dict[str, EntryDoc] = {}
        for raw in loaded.entries_json:
            entry = cast(EntryDoc, orjson.loads(raw))
            self.entries[entry["id"]] = entry
        self.head = loaded.seq
        self.epoch = loaded.epoch
        self.recent: deque[Frame] = deque(maxlen=history_limit)
        for text in loaded.history:
            ev = parse_event(text)
            if ev["seq"] <= self.head:
                self.recent.append(Frame(ev["seq"], reader_event(ev, text), text))
        self._snapshots: dict[bool, Frame] = {}

    @property
    def oldest(self) -> int:
        """The smallest seq we can replay from; head + 1 when we hold none."""
        return self.recent[0].seq if self.recent else self.head + 1

    def classify(self, text: str) -> tuple[Live, EventDoc]:
        """Where the event `text` stands against our copy, and the event parsed (for `apply`)."""
        ev = parse_event(text)
        verdict = classify_live(
            head=self.head, epoch=self.epoch, seq=ev["seq"], frame_epoch=ev["epoch"]
        )
        return verdict, ev

    def apply(self, text: str, ev: EventDoc | None = None) -> Frame:
        """Apply the event that follows our head (the caller has classified it as APPLY);
        `ev` is `text` parsed, when the caller has it already."""
        if ev is None:
            ev = parse_event(text)
        if ev["seq"] != self.head + 1 or ev["epoch"] != self.epoch:
            raise ValueError(
                f"event {ev['seq']}@{ev['epoch']} does not follow {self.head}@{self.epoch}"
            )
        op = ev["op"]
        if op == "blog":
            self.blog = ev["blog"]
        elif op == "delete":
            self.entries.pop(ev["entry"]["id"], None)
        else:
            entry = cast(EntryDoc, ev["entry"])
            self.entries[entry["id"]] = entry
        self.head = ev["seq"]
        frame = Frame(self.head, reader_event(ev, text), text)
        self.recent.append(frame)
        self._snapshots.clear()
        return frame

    def ordered_entries(self) -> list[EntryDoc]:
        return ordered(self.entries.values())

    def snapshot(self, *, reset: bool) -> Frame:
        frame = self._snapshots.get(reset)
        if frame is None:
            text = snapshot_frame(
                self.blog, self.ordered_entries(), self.head, self.epoch, reset=reset
            )
            frame = self._snapshots[reset] = Frame(self.head, text)
        return frame

    def frame_at(self, seq: int) -> Frame | None:
        """The event frame with this seq, if we still hold it."""
        i = seq - self.oldest
        return self.recent[i] if 0 <= i < len(self.recent) and seq <= self.head else None

    def events_after(self, since: int) -> list[Frame]:
        count = self.head - since  # the frames after `since` are the newest `count` we hold
        if count <= 0:
            return []
        if count >= len(self.recent):
            return list(self.recent)
        # From the new end: a resume usually wants the last few of up to a thousand frames.
        frames = list(islice(reversed(self.recent), count))
        frames.reverse()
        return frames

    def catch_up(self, pos: Position) -> list[Frame]:
        """The frames a reader at `pos` needs to be level with our head."""
        plan = plan_resume(pos, head=self.head, epoch=self.epoch, oldest=self.oldest)
        if isinstance(plan, ReplayAfter):
            return self.events_after(plan.since)
        return [self.snapshot(reset=plan.reset)]
