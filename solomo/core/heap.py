"""The start-up heap, taken out of the garbage collector's full collections.

An API process holds ~300,000 objects the collector tracks before it serves anything: imported
modules, and above all ``pypinyin``'s phrase dictionary (a list per phrase and per syllable,
~250,000 lists, for the search keys of :mod:`solomo.core.searchkeys`). They live as long as the
process, yet every full (generation 2) collection walked them again: in the soak (2,000 sockets)
a census of the API's heap found 700,000 tracked objects, and each full collection held the
event loop for 0.4–0.5 s. ``gc.freeze()`` moves everything alive at the end of start-up into the
permanent generation, which no collection visits (Instagram's use of it, for forked workers, is
the same idea).

The young generation's threshold is raised too (:data:`YOUNG_THRESHOLD` allocations net of
deallocations, against CPython's 700). An asyncio server's objects mostly die by reference
counting within a request or a message; collecting every 700 net allocations promoted the
objects of requests still in flight into the older generations, which is what made full
collections come back. Two soaks on a quiet machine, one after the other (2,000 sockets, 60 s;
docs/benchmarks.md): 700 → 362 young, 33 middle and 3 full collections (1.0 s of CPU, the
longest event-loop stall 355 ms); 10,000 → 3 young, 1 middle, no full collection (longest stall
133 ms), and the same memory (RSS 239.5 MiB at the end of both).

Once per process: a second app started in the same process (the tests) must not freeze what
earlier ones left behind.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000
"""Net allocations between two collections of the youngest generation (CPython's default: 700)."""

_frozen = False


def freeze_startup_heap() -> int:
    """Collects what start-up left as garbage, freezes the rest and raises the young generation's
    threshold; returns how many objects were frozen (0 after the first call)."""
    global _frozen
    if _frozen:
        return 0
    _frozen = True
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
    return gc.get_freeze_count()
