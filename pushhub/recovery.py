"""Catch-up rules, as pure functions: what a resuming reader gets, and how a node that missed
live messages gets back in step with the store. No I/O, so every case is a unit test.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from pushhub.protocol import Position


@dataclass(frozen=True, slots=True)
class SendSnapshot:
    reset: bool


@dataclass(frozen=True, slots=True)
class ReplayAfter:
    """Send every retained event with seq > since (possibly none), then live events."""

    since: int


def plan_resume(pos: Position, *, head: int, epoch: str, oldest: int) -> SendSnapshot | ReplayAfter:
    """Decide a reader's catch-up.

    `oldest` is the smallest seq still retained (head + 1 when nothing is). A position we cannot
    continue from exactly (other epoch, beyond the head, or older than what is retained) gets a
    snapshot marked `reset`, so the reader replaces its copy instead of patching it.
    """
    if pos.since is None:
        return SendSnapshot(reset=False)
    if pos.epoch is not None and pos.epoch != epoch:
        return SendSnapshot(reset=True)
    if pos.since > head or pos.since + 1 < oldest:
        return SendSnapshot(reset=True)
    return ReplayAfter(pos.since)


class Live(Enum):
    APPLY = "apply"
    DUPLICATE = "duplicate"
    GAP = "gap"
    FOREIGN = "foreign"  # another epoch: the store's history was replaced


def classify_live(*, head: int, epoch: str, seq: int, frame_epoch: str) -> Live:
    """Where a live message from the subscription stands relative to what we hold."""
    if frame_epoch != epoch:
        return Live.FOREIGN
    if seq <= head:
        return Live.DUPLICATE
    if seq == head + 1:
        return Live.APPLY
    return Live.GAP


@dataclass(frozen=True, slots=True)
class Refill:
    """How to get from our state to the store's: patch with retained events, or replace."""

    replace: bool
    after: int  # with replace=False: apply retained events with seq > after


def plan_refill(
    *, head: int, epoch: str, store_head: int, store_epoch: str, store_oldest: int
) -> Refill:
    if store_epoch != epoch or store_head < head:
        return Refill(replace=True, after=0)
    if head + 1 < store_oldest:
        return Refill(replace=True, after=0)
    return Refill(replace=False, after=head)


class Watch(Enum):
    IN_STEP = "in step"  # we hold the store's head
    AHEAD = "ahead"  # the store has events we have not got (yet)
    STALLED = "stalled"  # ahead at the last check too, and we are still short of that head
    DIVERGED = "diverged"  # the store lost events we held before we asked


def judge_head(
    *, asked_at: int, head: int, epoch: str, store_head: int, store_epoch: str, behind: int | None
) -> Watch:
    """The watchdog's verdict on one reading of the store's head.

    `asked_at` is our head when the reading was asked for, `head` ours when it came back, and
    `behind` the store's head at the last check that found us short of it. The reading comes
    over another connection than the live messages, so it can arrive after events that were
    written after it was taken: being ahead of a reading is not divergence. Every event we held
    when we asked was in the store before we got it, so a store behind `asked_at` lost it.
    """
    if store_epoch == epoch:
        if store_head < asked_at:
            return Watch.DIVERGED
        if store_head <= head:
            return Watch.IN_STEP
    if behind is not None and (store_epoch != epoch or head < behind):
        return Watch.STALLED
    return Watch.AHEAD
