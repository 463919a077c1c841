"""How far a nearest-first search of a Redis GEO set should look first.

``GEOSEARCH … BYRADIUS r ASC COUNT n`` costs Redis time for every member within ``r`` (it gathers
them all, then sorts), not for the ``n`` it returns: on a set of 5,000 stores over a 20 km disc,
126 µs a call within 5 km against 42 µs within 2.5 km (docs/benchmarks.md, tenth round) — and a page
of 20 needs only the nearest ~30. So a search asks first for a circle a little wider than the last
search of the same set needed (:meth:`Reach.first`), and widens it only when that comes back short:
a reply not cut by ``COUNT`` holds every member within the circle it searched, so its rows are
complete up to that circle's radius (:func:`complete_below`).

Also what every such search shares: Redis measures on its own sphere, MongoDB on another, and a
member's geohash is rounded; so a search asks Redis for a circle a little wider (:func:`redis_m`)
and measures each member again, exactly, on MongoDB's sphere (:func:`geo.distance.spherical_m`),
from the position the member carries.
"""

from __future__ import annotations

import math

from geo.distance import MONGO_EARTH_RADIUS_M

REDIS_EARTH_RADIUS_M = 6_372_797.560856  # Redis GEO's haversine
K = REDIS_EARTH_RADIUS_M / MONGO_EARTH_RADIUS_M
SLACK_M = 2.0
"""Bound on Redis's rounding: a 52-bit geohash puts a point at most 0.34 m from its true place
(the query point too), so 2 m is generous."""

MARGIN = 1.5
"""The first circle is this many times the last reach."""
FLOOR_M = 100.0
MAX_KEYS = 4096
"""Sets remembered per process (the memory is cleared when full: it is only a first guess)."""


class Reach:
    """Per set, the exact distance the last first page reached (one process's memory)."""

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}

    def first(self, key: str, radius_m: float, beyond_m: float = 0.0) -> float:
        """The radius to search first: the caller's ``radius_m`` until a search of ``key`` was learnt;
        ``beyond_m``, a page's cursor distance, is added (the rows lie past it; a client's cursor can
        carry any distance, a negative one counts as none)."""
        seen = self._seen.get(key)
        if seen is None:
            return radius_m
        return min(radius_m, max(0.0, beyond_m) + max(FLOOR_M, seen * MARGIN))

    def learn(self, key: str, reach_m: float) -> None:
        if len(self._seen) >= MAX_KEYS:
            self._seen.clear()
        self._seen[key] = reach_m


def redis_m(radius_m: float) -> float:
    """Redis's radius that holds every member within ``radius_m`` exactly."""
    return radius_m * K + SLACK_M


def complete_below(replied: int, count: int, last_m: float | None, searched_m: float, radius_m: float) -> float:
    """The exact distance below which a nearest-first reply holds every member: below the last hit
    less Redis's rounding when ``COUNT`` cut it (``last_m`` is Redis's distance); up to the searched
    circle otherwise (everything, when that was the caller's whole ``radius_m``)."""
    if replied >= count and last_m is not None:
        return (last_m - SLACK_M) / K
    return math.inf if searched_m >= radius_m else math.nextafter(searched_m, math.inf)


def widen(replied: int, count: int, searched_m: float, radius_m: float, max_count: int) -> tuple[int, float] | None:
    """The next ``(COUNT, radius)`` when a reply was complete too short a way: twice the count if it
    was cut, else twice the circle (up to ``radius_m``); None when the count is at ``max_count``."""
    if replied >= count:
        return (count * 2, searched_m) if count < max_count else None
    return count, min(radius_m, searched_m * 2)
