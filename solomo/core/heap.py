"""The start-up heap, taken out of the garbage collector's full collections.

An API process holds ~300,000 objects the collector tracks before it serves anything: imported
modules, and above all ``pypinyin``'s phrase dictionary (a list per phrase and per syllable,
~250,000 lists, for the search keys of :mod:`solomo.core.searchkeys`). They live as long as the
process, yet every full (generation 2) collection walked them again: in the soak (2,000 sockets)
a census of the API's heap found 700,000 tracked objects, and each full collection held the
event loop for 0.4–0.5 s. ``gc.freeze()`` moves everything alive at the end of start-up into the
permanent generation, which no collection visits (Instagram's use of it, for forked workers, is
the same idea).

Once per process: a second app started in the same process (the tests) must not freeze what
earlier ones left behind.
"""

from __future__ import annotations

import gc

_frozen = False


def freeze_startup_heap() -> int:
    """Collects what start-up left as garbage, then freezes the rest; returns how many objects
    were frozen (0 after the first call)."""
    global _frozen
    if _frozen:
        return 0
    _frozen = True
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
