"""The cyclic garbage collector in a serving process.

As readers pile up, the collector's full collections walk every container object in the
process; at 5000 readers about half of them are the ~47,000 that the imported modules and the
app hold. Those live as long as the process, so `gc.freeze()` moves them where no collection
looks. Cyclic garbage made after start-up is collected as before; a start-up object that later
became part of a garbage cycle would stay (none is known to).

Measured with `bench.gcstats` around a `bench.storm` of 5000 readers (docs/performance.md,
third sitting, "The collector"): 190-240 ms of collection per run before, 120-150 ms after,
and the longest pause 47-53 ms before, 21-31 ms after. A larger young generation (5000 instead
of 700) on top changed neither much, and held more garbage per reader between collections.
"""

from __future__ import annotations

import gc


def tune_for_serving() -> None:
    """Call once per serving process, after its app is built and before it takes traffic."""
    gc.collect()  # whatever start-up left as garbage is freed, not frozen for good
    gc.freeze()
