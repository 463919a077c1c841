"""Keeping a read key alive: its time to live refreshed by reads, at most once a while per process.

The feeds kept in Redis live while they are read: a home timeline for the reader's inactive days, a
local cell, a topic listing and a viewer's liked set for a day or more after the last read. Every
page used to send an ``EXPIRE`` for each such key it read — on a local page one per covering cell,
a third of its commands — though moving a TTL of a day by a few seconds tells Redis nothing new.

:func:`queue_expire` queues the ``EXPIRE`` only when this process has not queued one for that key in
the last :data:`EVERY_S`; so a key read all the time gets one refresh per process every
:data:`EVERY_S`, and a key read once still gets its refresh at once. A key's TTL therefore lags the
last read by at most :data:`EVERY_S`, far below every TTL it refreshes (the shortest, an empty
cell's or listing's, is two minutes). A key deleted and rebuilt meanwhile gets its TTL from the
rebuild; ``EXPIRE`` on a missing key does nothing, as before.

The ``EXPIRE`` may or may not be queued, so it goes where no reply a caller reads by position moves:
last in the home, topic and local reads (their replies are read from the front), right after the
liked set's lookup (whose callers count the replies after it from the end of their pipeline).
"""

from __future__ import annotations

import time
from typing import Any

EVERY_S = 30.0
"""A key's TTL is refreshed by this process at most once in this time."""
MAX_KEYS = 50_000
"""Keys remembered (the oldest forgotten first): bounded memory however many keys are read."""


class Refreshes:
    """When this process last queued an ``EXPIRE`` per key (see the module)."""

    def __init__(self, every_s: float = EVERY_S, max_keys: int = MAX_KEYS) -> None:
        self.every_s = every_s
        self.max_keys = max_keys
        self._at: dict[str, float] = {}

    def due(self, key: str, now: float | None = None) -> bool:
        """True (and remembered as done now) when ``key`` has not been refreshed in :attr:`every_s`."""
        now = time.monotonic() if now is None else now
        last = self._at.get(key)
        if last is not None and now - last < self.every_s:
            return False
        self._at.pop(key, None)  # re-inserted at the end: the dict's order is the refresh order
        self._at[key] = now
        if len(self._at) > self.max_keys:
            del self._at[next(iter(self._at))]
        return True

    def forget(self) -> None:
        """Every key due again (tests that shorten a TTL by hand and read it back)."""
        self._at.clear()


REFRESHES = Refreshes()
"""The process's one record (the API's and each worker's)."""


def queue_expire(pipe: Any, key: str, ttl_s: int) -> None:
    """Queues ``EXPIRE key ttl_s`` on ``pipe`` if :data:`REFRESHES` says it is due (where: see the module)."""
    if REFRESHES.due(key):
        pipe.expire(key, ttl_s)
