"""The `Broker` contract: durable history and state per blog, plus fan-out between nodes.

Contract every implementation keeps (the suite in tests/contract checks each one):
- `commit` is atomic per blog: compare the stored value with `expect`, take the next seq, store
  the new value, append the event frame to the bounded history, record the idempotency key and
  publish the frame. Either all of it happens or none of it does.
- Frames reach the listener in seq order per blog for as long as the subscription lives; after
  the subscription was lost and re-established the broker calls `on_resync`, because frames
  published meanwhile are gone and the listener must refill from `load`.
- Every call is bounded in time; a store that cannot answer raises `errors.Unavailable`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from pushhub.replica import Loaded


@dataclass(frozen=True, slots=True)
class Change:
    """One compare-and-set write, with the event it produces.

    `expect` is the stored JSON the writer based the change on (None: must not exist yet);
    `new` the JSON to store (None: delete); `result` the answer to remember under the
    idempotency key, so a retried request gets the first answer back.
    """

    blog: str
    kind: Literal["meta", "entry"]
    entry_id: str
    expect: str | None
    new: str | None
    event_body: str
    result: str
    idempotency_key: str
    new_epoch: str


@dataclass(frozen=True, slots=True)
class Committed:
    seq: int
    epoch: str
    result: str
    replayed: bool  # True: the idempotency key was seen before; nothing was written now


class BrokerListener(Protocol):
    def on_message(self, blog: str, frame: str) -> None: ...

    def on_resync(self) -> None: ...


class Broker(Protocol):
    name: str

    async def start(self, listener: BrokerListener) -> None: ...

    async def close(self) -> None: ...

    async def commit(self, change: Change) -> Committed:
        """Raises WriteConflict (expect mismatch), BlogMissing (entry change, no blog),
        Unavailable."""
        ...

    async def recall(self, blog: str, idempotency_key: str) -> Committed | None:
        """The answer remembered under an idempotency key, if it has not expired."""
        ...

    async def load(self, blog: str) -> Loaded | None: ...

    async def read_meta(self, blog: str) -> str | None: ...

    async def read_entry(self, blog: str, entry_id: str) -> str | None: ...

    async def list_blogs(self) -> list[str]: ...

    async def head(self, blog: str) -> tuple[int, str] | None:
        """The blog's last seq and epoch in the store, or None if it does not exist."""
        ...

    async def subscribe(self, blog: str) -> None:
        """Returns once frames published from now on will reach the listener."""
        ...

    async def unsubscribe(self, blog: str) -> None: ...

    async def ping(self) -> None: ...

    async def rotate_epoch(self, blog: str, expected: str, new: str) -> bool:
        """Start a new epoch (history dropped, a "blog" event published in it) if the blog's
        epoch is still `expected`: for a store found to have lost acknowledged events."""
        ...

    async def revoke(self, token_id: str, until: float) -> None:
        """Deny the token with this `jti` until the Unix time `until` (its expiry)."""
        ...

    async def is_revoked(self, token_id: str) -> bool: ...
