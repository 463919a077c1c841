"""Public positions: what others may learn of where a person was (the contract's Privacy section).

A raw device fix is seen only by its own user. Everyone else sees a *public position*: the store's
location when there is a store, else the fix snapped to a grid of :data:`GRID_DECIMALS` decimal
places (0.001° ≈ 111 m of latitude, less of longitude away from the equator). Snapping is a
deterministic rounding, not random noise: noise could be averaged away over many posts, a grid
point cannot be refined by asking again. Snapping a grid point again gives the same point, so
applying :func:`coarsen` twice (a migrated document, a read-path fallback) is harmless.
"""

from __future__ import annotations

import functools
from typing import Any

GRID_DECIMALS = 3
"""Decimal places kept of a coarsened position (a grid of about 100 m)."""


def coarsen(lat: float, lng: float) -> tuple[float, float]:
    """(lat, lng) snapped to the public grid (a valid position stays valid: ±90 and ±180 are grid points)."""
    return round(lat, GRID_DECIMALS), round(lng, GRID_DECIMALS)


def public_point(fix: tuple[float, float], store_point: tuple[float, float] | None) -> tuple[float, float]:
    """The position others may see for a fix (lat, lng) taken at ``store_point`` (lat, lng), if any."""
    return store_point if store_point is not None else coarsen(*fix)


@functools.lru_cache(maxsize=65536)
def _snapped(lat: float, lng: float) -> tuple[float, float]:
    """:func:`coarsen` for the read path, memoised (two ``round`` to decimals are ~0.5 µs, paid for
    every Post of every page). Only stored positions come here, and those are public already."""
    return coarsen(lat, lng)


def shown_point(location: dict[str, Any] | None,
                store_point: tuple[float, float] | None) -> tuple[float, float] | tuple[None, None]:
    """The (lat, lng) to show others for a stored GeoJSON ``location``, whatever it holds.

    Stored positions are public already; this is the read path's safety net for documents written
    before they were (snapping is idempotent, and a store's position wins)."""
    if location is None:
        return None, None
    if store_point is not None:
        return store_point
    lng, lat = location["coordinates"]
    return _snapped(lat, lng)
