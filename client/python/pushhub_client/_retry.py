"""When to try again, and how long to wait first: exponential backoff with jitter, capped.

Pure: no clock and no I/O, so the clients and the subscriber share it and tests can check it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from pushhub_client.errors import Conflict, PushHubError, RateLimited, Unavailable


@dataclass(frozen=True)
class Backoff:
    """Delay before retry number `attempt` (0-based): `initial * factor**attempt`, at most `cap`,
    of which the last `jitter` fraction is random.

    The random part spreads out clients that all lost the same server at the same moment (a
    restart), so they do not all come back in the same millisecond; the fixed part keeps every
    client from retrying at once in a tight loop.
    """

    initial: float = 0.2
    factor: float = 2.0
    cap: float = 5.0
    jitter: float = 0.5
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def delay(self, attempt: int) -> float:
        base = min(self.cap, self.initial * self.factor ** max(0, attempt))
        return base * (1.0 - self.jitter) + self.rng.uniform(0.0, base * self.jitter)


@dataclass(frozen=True)
class RetryPolicy:
    """How a request is retried. Every write carries an idempotency key, so a retried write that
    had in fact reached the server returns the first answer and writes nothing twice.

    `attempts` counts every try, the first included. A `Retry-After` from the server is honoured
    when it is no longer than `max_delay`; a longer one ends the retries with the error.
    """

    attempts: int = 5
    backoff: Backoff = field(default_factory=Backoff)
    max_delay: float = 30.0

    def next_delay(self, attempt: int, error: PushHubError) -> float | None:
        """Seconds to wait before trying again after `error` on try `attempt` (0-based), or None
        to give up and raise it."""
        if attempt + 1 >= self.attempts or not is_transient(error):
            return None
        delay = self.backoff.delay(attempt)
        if isinstance(error, RateLimited) and error.retry_after is not None:
            if error.retry_after > self.max_delay:
                return None
            delay = max(delay, error.retry_after)
        return delay


NO_RETRY = RetryPolicy(attempts=1)


def is_transient(error: PushHubError) -> bool:
    """Errors that may go away by themselves: the network, an overloaded or restarting server or
    store (502/503/504), a busy entry (409) and rate limits (429)."""
    return isinstance(error, Unavailable | Conflict | RateLimited)
