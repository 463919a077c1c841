"""A small per-process cache of author and store summaries (see :mod:`feed.hydrate`)."""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any

from bson import ObjectId

SUMMARY_TTL_S = 300.0
SUMMARY_MAX = 20_000


class SummaryCache:
    """Bounded, expiring (LRU) cache of author and store summaries, keyed by ``(kind, id)``."""

    def __init__(self, ttl_s: float = SUMMARY_TTL_S, max_entries: int = SUMMARY_MAX) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._items: OrderedDict[tuple[str, ObjectId], tuple[float, dict[str, Any] | None]] = OrderedDict()
        self.generation: str | None = None

    def sync(self, generation: str | None) -> None:
        """Drops every entry when the shared generation (``keys.SUMMARIES_GEN``) moved: a name changed
        somewhere, and every process must read names afresh."""
        if generation != self.generation:
            self._items.clear()
            self.generation = generation

    def get(self, kind: str, oid: ObjectId) -> tuple[bool, dict[str, Any] | None]:
        """(found, summary)."""
        item = self._items.get((kind, oid))
        if item is None:
            return False, None
        if item[0] < time.monotonic():
            del self._items[(kind, oid)]
            return False, None
        self._items.move_to_end((kind, oid))
        return True, item[1]

    def put(self, kind: str, oid: ObjectId, summary: dict[str, Any] | None) -> None:
        self._items[(kind, oid)] = (time.monotonic() + self.ttl_s, summary)
        self._items.move_to_end((kind, oid))
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)

    def forget(self, kind: str, oid: ObjectId) -> None:
        self._items.pop((kind, oid), None)
