"""Catch-up rules: what a resuming reader gets, how a node refills after missing live frames."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pushhub.protocol import Position
from pushhub.recovery import (
    Live,
    Refill,
    ReplayAfter,
    SendSnapshot,
    Watch,
    classify_live,
    judge_head,
    plan_refill,
    plan_resume,
)

EPOCH = "k3j9x0a1"

# -- plan_resume --------------------------------------------------------------------------------


def resume(
    since: int | None, *, head: int = 10, oldest: int = 6, epoch: str | None = EPOCH
) -> SendSnapshot | ReplayAfter:
    return plan_resume(Position(since, epoch), head=head, epoch=EPOCH, oldest=oldest)


def test_no_since_gets_a_plain_snapshot() -> None:
    assert resume(None) == SendSnapshot(reset=False)
    assert resume(None, epoch=None) == SendSnapshot(reset=False)


def test_no_since_with_other_epoch_is_still_a_plain_snapshot() -> None:
    # Without a position there is nothing to reset: the reader has no copy yet.
    assert resume(None, epoch="other") == SendSnapshot(reset=False)


def test_epoch_mismatch_resets() -> None:
    assert resume(8, epoch="other") == SendSnapshot(reset=True)
    # Even at the head: same seq in another history is another state.
    assert resume(10, epoch="other") == SendSnapshot(reset=True)


def test_since_beyond_head_resets() -> None:
    assert resume(11) == SendSnapshot(reset=True)
    assert resume(10_000) == SendSnapshot(reset=True)


def test_since_older_than_retained_history_resets() -> None:
    # oldest retained is 6: a reader at 4 needs 5, which is gone.
    assert resume(4) == SendSnapshot(reset=True)
    assert resume(0) == SendSnapshot(reset=True)


def test_since_at_head_replays_nothing() -> None:
    assert resume(10) == ReplayAfter(10)


def test_boundary_since_plus_one_is_oldest() -> None:
    assert resume(5) == ReplayAfter(5)  # needs 6..10, all retained
    assert resume(4) == SendSnapshot(reset=True)  # needs 5, not retained


def test_since_within_history_replays_after_since() -> None:
    assert resume(7) == ReplayAfter(7)


def test_without_epoch_the_seq_alone_decides() -> None:
    assert resume(7, epoch=None) == ReplayAfter(7)
    assert resume(11, epoch=None) == SendSnapshot(reset=True)


def test_empty_history_at_head_replays_nothing() -> None:
    # Nothing retained: oldest is head + 1; only a reader at the head can continue.
    assert resume(10, oldest=11) == ReplayAfter(10)
    assert resume(9, oldest=11) == SendSnapshot(reset=True)


def test_new_blog_at_seq_zero() -> None:
    assert resume(0, head=0, oldest=1) == ReplayAfter(0)
    assert resume(1, head=0, oldest=1) == SendSnapshot(reset=True)


@given(
    head=st.integers(min_value=0, max_value=5000),
    retained=st.integers(min_value=0, max_value=5000),
    since=st.integers(min_value=0, max_value=6000),
)
def test_replay_iff_history_covers_the_gap(head: int, retained: int, since: int) -> None:
    retained = min(retained, head)
    oldest = head + 1 - retained  # the `retained` newest events are kept
    plan = plan_resume(Position(since, EPOCH), head=head, epoch=EPOCH, oldest=oldest)
    needed = set(range(since + 1, head + 1))
    held = set(range(oldest, head + 1))
    covers = since <= head and needed <= held
    assert isinstance(plan, ReplayAfter) == covers
    if covers:
        assert plan == ReplayAfter(since)
    else:
        assert plan == SendSnapshot(reset=True)


@given(
    head=st.integers(min_value=0, max_value=100),
    since=st.integers(min_value=0, max_value=200),
    epoch=st.text(alphabet="abc", min_size=1, max_size=3),
)
def test_other_epoch_never_replays(head: int, since: int, epoch: str) -> None:
    plan = plan_resume(Position(since, epoch), head=head, epoch="zzz", oldest=1)
    assert plan == SendSnapshot(reset=True)


# -- classify_live ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seq", "expected"),
    [(11, Live.APPLY), (10, Live.DUPLICATE), (3, Live.DUPLICATE), (12, Live.GAP), (99, Live.GAP)],
)
def test_classify_live(seq: int, expected: Live) -> None:
    assert classify_live(head=10, epoch=EPOCH, seq=seq, frame_epoch=EPOCH) is expected


@pytest.mark.parametrize("seq", [1, 10, 11, 12])
def test_classify_live_other_epoch_is_foreign(seq: int) -> None:
    assert classify_live(head=10, epoch=EPOCH, seq=seq, frame_epoch="other") is Live.FOREIGN


def test_classify_live_first_event_of_new_blog() -> None:
    assert classify_live(head=0, epoch=EPOCH, seq=1, frame_epoch=EPOCH) is Live.APPLY


# -- plan_refill --------------------------------------------------------------------------------


def refill(head: int, store_head: int, store_oldest: int, store_epoch: str = EPOCH) -> Refill:
    return plan_refill(
        head=head, epoch=EPOCH, store_head=store_head, store_epoch=store_epoch,
        store_oldest=store_oldest,
    )  # fmt: skip


def test_refill_patches_when_history_reaches_back() -> None:
    assert refill(10, store_head=15, store_oldest=6) == Refill(replace=False, after=10)
    assert refill(10, store_head=15, store_oldest=11) == Refill(replace=False, after=10)


def test_refill_level_with_store_applies_nothing() -> None:
    assert refill(10, store_head=10, store_oldest=11) == Refill(replace=False, after=10)


def test_refill_replaces_when_history_was_trimmed_past_us() -> None:
    assert refill(10, store_head=20, store_oldest=12).replace is True


def test_refill_replaces_on_other_epoch() -> None:
    assert refill(10, store_head=15, store_oldest=1, store_epoch="other").replace is True


def test_refill_replaces_when_store_went_backwards() -> None:
    # The store lost writes (restored from an older file): our copy is ahead of it.
    assert refill(10, store_head=7, store_oldest=1).replace is True


@given(
    head=st.integers(min_value=0, max_value=1000),
    store_head=st.integers(min_value=0, max_value=1000),
    retained=st.integers(min_value=0, max_value=1000),
)
def test_refill_patch_iff_store_history_covers_us(
    head: int, store_head: int, retained: int
) -> None:
    retained = min(retained, store_head)
    store_oldest = store_head + 1 - retained
    plan = refill(head, store_head=store_head, store_oldest=store_oldest)
    covers = head <= store_head and head + 1 >= store_oldest
    assert plan.replace is not covers
    if covers:
        assert plan.after == head


# -- judge_head (the watchdog) -------------------------------------------------------------------


def judge(
    store_head: int, *, asked_at: int = 10, head: int = 10, store_epoch: str = EPOCH,
    behind: int | None = None,
) -> Watch:  # fmt: skip
    return judge_head(
        asked_at=asked_at, head=head, epoch=EPOCH, store_head=store_head,
        store_epoch=store_epoch, behind=behind,
    )  # fmt: skip


def test_watch_level_with_the_store_is_in_step() -> None:
    assert judge(10) is Watch.IN_STEP
    assert judge(10, behind=12) is Watch.IN_STEP


def test_watch_a_reading_older_than_events_applied_meanwhile_is_in_step() -> None:
    # Asked at 10; seqs 11..14 came over the subscription before the reply (of 12) did.
    assert judge(12, asked_at=10, head=14) is Watch.IN_STEP
    assert judge(10, asked_at=10, head=14) is Watch.IN_STEP


def test_watch_a_store_behind_what_we_held_when_asking_diverged() -> None:
    assert judge(9, asked_at=10, head=10) is Watch.DIVERGED
    assert judge(9, asked_at=10, head=14) is Watch.DIVERGED


def test_watch_ahead_once_then_stalled_if_still_short() -> None:
    assert judge(15) is Watch.AHEAD
    assert judge(16, behind=15) is Watch.STALLED
    # Past the head of the last check: the subscription is moving, only behind the writes.
    assert judge(20, asked_at=15, head=15, behind=15) is Watch.AHEAD


def test_watch_another_epoch_is_never_divergence() -> None:
    assert judge(3, store_epoch="other") is Watch.AHEAD
    assert judge(3, store_epoch="other", behind=3) is Watch.STALLED


@given(
    asked_at=st.integers(min_value=0, max_value=100),
    applied=st.integers(min_value=0, max_value=100),
    store_head=st.integers(min_value=0, max_value=300),
)
def test_watch_diverged_iff_the_store_is_behind_what_we_asked_with(
    asked_at: int, applied: int, store_head: int
) -> None:
    verdict = judge(store_head, asked_at=asked_at, head=asked_at + applied)
    assert (verdict is Watch.DIVERGED) is (store_head < asked_at)
