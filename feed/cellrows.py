"""The local feed's cell rows, kept per process under each cell's generation.

A first local page reads the newest entries of the dozen cells around the reader (:mod:`feed.local`);
readers in one area ask for the same cells again and again, and a cell changes only when a post is
written into it or taken out of it. Measured (docs/benchmarks.md, eighteenth round): the rows'
commands were the largest part of a page's Redis work, ~5.7 µs of the client's CPU for a cell's
21 rows against ~1.4 for a short ``GET``.

So each process keeps the rows it read of a cell, with the cell's *generation*
(:func:`~solomo.core.keys.local_cell_gen`: a random value that every change of the cell sets anew,
after the change, in the same script or pipeline: :mod:`feed.localcells`). A page asks for the
generation of every cell (and for the rows of the cells it does not hold), and uses held rows only
while their generation is still the cell's. The rules that make it exact:

* the generation is read *before* the rows in the same pipeline, and a writer sets it *after* the
  change: rows read across a change are kept under the generation before it, which the next read
  refuses;
* a cell without a generation (lost with Redis's data, or expired: it lives a day after the last
  write or read) is never held, and every generation is new (random), so one from a cell's earlier
  life never matches;
* only rows of a ready cell (COMPLETE or TRIMMED) read for a first page (no cursor) are kept, and
  an entry lives at most :data:`MAX_AGE_S`; the posts themselves are still loaded and checked
  (status, position, the viewer's blocks) on every page, as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from solomo.core.viewcache import LocalViews

SIZE = 4096
"""Cells a process holds (a cell's first page is ~21 entries: a few MB at most)."""
MAX_AGE_S = 60.0
"""An entry is read again from Redis after this long whatever its generation says."""


@dataclass(slots=True)
class HeldRows:
    generation: str
    count: int
    """How many entries the rows were asked for (a page of another size reads its own)."""
    rows: list[Any]
    """The cell's ``ZREVRANGEBYSCORE … WITHSCORES`` reply, as :func:`feed.local._rows` reads it."""
    born: float


CELL_ROWS: LocalViews[str, HeldRows] = LocalViews(SIZE, MAX_AGE_S)
"""The process's one memo of cell rows, by cell key."""
