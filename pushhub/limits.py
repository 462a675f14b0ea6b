"""Abuse limits, as plain objects with no I/O: token buckets and connection counts per key.

Every table here is bounded: when it is full, the oldest idle keys are dropped, so a flood of
new addresses costs a fixed amount of memory, never an ever-growing dict.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """`rate` events per second per key, bursts up to `burst`."""

    def __init__(self, rate: float, burst: float, max_keys: int = 100_000) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take(self, key: str, now: float) -> float:
        """0 when allowed (and counted); otherwise the seconds until it would be."""
        if self.rate <= 0:
            return 0.0
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(self.burst, now)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
            bucket.at = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate


class ConnectionCounter:
    """Open connections per key and in total, with a cap on each."""

    def __init__(self, per_key: int, total: int) -> None:
        self.per_key = per_key
        self.total_cap = total
        self.total = 0
        self._counts: dict[str, int] = {}

    def admit(self, key: str) -> str | None:
        """None when admitted (and counted); otherwise why not."""
        if self.total_cap and self.total >= self.total_cap:
            return "this node has all the readers it can take"
        count = self._counts.get(key, 0)
        if self.per_key and count >= self.per_key:
            return "too many connections from this address"
        self._counts[key] = count + 1
        self.total += 1
        return None

    def release(self, key: str) -> None:
        count = self._counts.get(key, 0)
        if count <= 1:
            self._counts.pop(key, None)
        else:
            self._counts[key] = count - 1
        self.total = max(0, self.total - 1)
