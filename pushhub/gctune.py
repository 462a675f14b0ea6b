"""Settings of Python's cyclic garbage collector for a serving process.

Each reader's handshake allocates a few hundred container objects (uvicorn's protocol and
parser, the ASGI scope, Starlette's WebSocket) that die young, and a handful that live as long
as the reader. With the default thresholds the collector runs every 700 net allocations and, as
readers pile up, keeps rescanning everything the process imported at start. In a reconnect
storm of 5000 readers that came to ~15% of the server's CPU, with single pauses of 40-80 ms
(docs/performance.md, "Garbage collection").

What is done about it:
- `gc.freeze()` once the app is built: the ~50,000 objects of the imported modules and the
  app live for the whole process, so no full collection needs to walk them again;
- a young generation of 5000 objects instead of 700: fewer, not much longer, young
  collections, and fewer of the older ones they trigger.
Cyclic garbage is still collected; it waits a little longer.
"""

from __future__ import annotations

import gc

YOUNG_GENERATION = 5000


def tune_for_serving() -> None:
    """Call once per serving process, after its app is built and before it takes traffic."""
    gc.collect()  # whatever start-up left as garbage is freed, not frozen for good
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION, older, oldest)
