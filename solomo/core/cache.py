"""A small per-process cache of author and store summaries (see :mod:`feed.hydrate`)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from bson import ObjectId

SUMMARY_TTL_S = 300.0
SUMMARY_MAX = 20_000


class SummaryCache:
    """Bounded, expiring (LRU) cache of author and store summaries, keyed by kind then id."""

    def __init__(self, ttl_s: float = SUMMARY_TTL_S, max_entries: int = SUMMARY_MAX) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        # one table per kind: a page looks up ~40 ids, and a (kind, id) key was a tuple made and
        # hashed twice for each (the id's hash is a Python call)
        self._items: dict[str, OrderedDict[ObjectId, tuple[float, dict[str, Any] | None]]] = {}
        self._size = 0
        self.generation: str | None = None

    def sync(self, generation: str | None) -> None:
        """Drops every entry when the shared generation (``keys.SUMMARIES_GEN``) moved: a name changed
        somewhere, and every process must read names afresh."""
        if generation != self.generation:
            self._items.clear()
            self._size = 0
            self.generation = generation

    def get(self, kind: str, oid: ObjectId) -> tuple[bool, dict[str, Any] | None]:
        """(found, summary)."""
        found, _ = self.get_many(kind, (oid,))
        return (True, found[oid]) if found else (False, None)

    def get_many(self, kind: str, ids: Iterable[ObjectId]) -> tuple[dict[ObjectId, dict[str, Any] | None],
                                                                     list[ObjectId]]:
        """(the summaries held of ``ids``, the ids not held or expired)."""
        table = self._items.get(kind)
        if table is None:
            return {}, list(ids)
        now = time.monotonic()
        found: dict[ObjectId, dict[str, Any] | None] = {}
        missing: list[ObjectId] = []
        for oid in ids:
            item = table.get(oid)
            if item is None:
                missing.append(oid)
            elif item[0] < now:
                del table[oid]
                self._size -= 1
                missing.append(oid)
            else:
                table.move_to_end(oid)
                found[oid] = item[1]
        return found, missing

    def put(self, kind: str, oid: ObjectId, summary: dict[str, Any] | None) -> None:
        table = self._items.setdefault(kind, OrderedDict())
        if oid not in table:
            self._size += 1
        table[oid] = (time.monotonic() + self.ttl_s, summary)
        table.move_to_end(oid)
        while self._size > self.max_entries:  # the least recently used of the largest table
            largest = max(self._items.values(), key=len)
            largest.popitem(last=False)
            self._size -= 1

    def forget(self, kind: str, oid: ObjectId) -> None:
        table = self._items.get(kind)
        if table is not None and table.pop(oid, None) is not None:
            self._size -= 1
