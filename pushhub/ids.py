"""Identifiers and times: entry ids that sort by creation time, epochs, ISO timestamps."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def _base36(n: int, width: int) -> str:
    out = []
    for _ in range(width):
        n, r = divmod(n, 36)
        out.append(_ALPHABET[r])
    return "".join(reversed(out))


def new_entry_id() -> str:
    """14 URL-safe characters: 9 of milliseconds (sortable until 2059), 5 random."""
    return _base36(int(time.time() * 1000), 9) + _base36(secrets.randbelow(36**5), 5)


def new_epoch() -> str:
    return _base36(secrets.randbits(48), 10)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
