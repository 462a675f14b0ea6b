"""Backoff and the retry decision, without any clock."""

from __future__ import annotations

import random

import pytest
from pushhub_client import (
    AuthError,
    Backoff,
    Conflict,
    NotFound,
    RateLimited,
    RetryPolicy,
    ServerError,
    Unavailable,
    ValidationError,
)


def test_backoff_grows_exponentially_with_jitter_and_is_capped() -> None:
    backoff = Backoff(initial=0.1, factor=2.0, cap=1.0, jitter=0.5, rng=random.Random(7))
    for attempt, base in enumerate([0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0]):
        delays = {backoff.delay(attempt) for _ in range(50)}
        assert all(base * 0.5 <= d <= base for d in delays), (attempt, delays)
        assert len(delays) > 1, "jitter must vary the delay"


def test_only_transient_errors_are_retried_and_only_so_often() -> None:
    policy = RetryPolicy(attempts=3, backoff=Backoff(initial=0.1, jitter=0.0))
    for error in (Unavailable("down", status=503), Conflict("busy"), Unavailable("refused")):
        assert policy.next_delay(0, error) == pytest.approx(0.1)
        assert policy.next_delay(1, error) == pytest.approx(0.2)
        assert policy.next_delay(2, error) is None
    for fatal in (AuthError("no"), NotFound("no"), ValidationError("no"), ServerError("500")):
        assert policy.next_delay(0, fatal) is None


def test_retry_after_is_honoured_unless_it_is_too_long() -> None:
    policy = RetryPolicy(attempts=5, backoff=Backoff(initial=0.1, jitter=0.0), max_delay=10.0)
    assert policy.next_delay(0, RateLimited("slow down", retry_after=2.0)) == 2.0
    assert policy.next_delay(0, RateLimited("slow down", retry_after=0.0)) == pytest.approx(0.1)
    assert policy.next_delay(0, RateLimited("go away", retry_after=60.0)) is None
