"""Geohash cells: the keys of the local (geo-cell) feeds and the cells that cover a circle.

A located post is written into one cell at each of :data:`LEVELS` (coarse to fine). A reader
picks the finest level whose cells covering the circle's bounding box number at most
:data:`MAX_COVER`, so a 500 m query reads a handful of small cells and a 50 km query a handful
of large ones. Covering is conservative (bounding box, not the circle): the caller filters by
exact distance afterwards.
"""

from __future__ import annotations

import math

_BASE32 = "0123456789bcdefghjkmnpqrstuvwxyz"
LEVELS: tuple[int, ...] = (4, 5, 6)
"""Geohash precisions written for every located post: ~39x20 km, ~4.9x4.9 km, ~1.2x0.6 km."""
MAX_COVER = 16
EARTH_M_PER_DEG = 111_320.0


def _bits(precision: int) -> tuple[int, int]:
    """(longitude bits, latitude bits) of a geohash of this length."""
    total = 5 * precision
    return (total + 1) // 2, total // 2


def cell_size_deg(precision: int) -> tuple[float, float]:
    """(width in degrees of longitude, height in degrees of latitude)."""
    lng_bits, lat_bits = _bits(precision)
    return 360.0 / (1 << lng_bits), 180.0 / (1 << lat_bits)


def _encode_indices(ix: int, iy: int, precision: int) -> str:
    """Geohash of the cell at column ``ix`` (longitude) and row ``iy`` (latitude).

    A geohash interleaves longitude and latitude bits, longitude first, most significant first.
    """
    lng_bits, lat_bits = _bits(precision)
    chars = []
    value = 0
    nbits = 0
    li, la = lng_bits - 1, lat_bits - 1
    for i in range(5 * precision):
        if i % 2 == 0:
            bit = (ix >> li) & 1
            li -= 1
        else:
            bit = (iy >> la) & 1
            la -= 1
        value = (value << 1) | bit
        nbits += 1
        if nbits == 5:
            chars.append(_BASE32[value])
            value = nbits = 0
    return "".join(chars)


def _indices(lat: float, lng: float, precision: int) -> tuple[int, int]:
    lng_bits, lat_bits = _bits(precision)
    ix = int((lng + 180.0) / 360.0 * (1 << lng_bits))
    iy = int((lat + 90.0) / 180.0 * (1 << lat_bits))
    return min(ix, (1 << lng_bits) - 1), min(iy, (1 << lat_bits) - 1)


def encode(lat: float, lng: float, precision: int) -> str:
    """The geohash of the cell holding (lat, lng)."""
    ix, iy = _indices(lat, lng, precision)
    return _encode_indices(ix, iy, precision)


def cells_for_point(lat: float, lng: float) -> list[str]:
    """The cells (one per level) a post located here is written to."""
    return [encode(lat, lng, p) for p in LEVELS]


def _cover_at(lat: float, lng: float, radius_m: float, precision: int, limit: int) -> list[str] | None:
    lng_bits = _bits(precision)[0]
    dlat = radius_m / EARTH_M_PER_DEG
    south, north = max(-90.0, lat - dlat), min(90.0, lat + dlat)
    coslat = min(math.cos(math.radians(south)), math.cos(math.radians(north)))
    if coslat < 1e-6 or radius_m / (EARTH_M_PER_DEG * coslat) >= 180.0:
        dlng = 180.0  # the circle reaches a pole or wraps the globe: every longitude
    else:
        dlng = radius_m / (EARTH_M_PER_DEG * coslat)
    _, iy0 = _indices(south, 0.0, precision)
    _, iy1 = _indices(north, 0.0, precision)
    ncols = 1 << lng_bits
    if dlng >= 180.0:
        cols = list(range(ncols))
    else:
        ix0 = math.floor((lng - dlng + 180.0) / 360.0 * ncols)
        ix1 = math.floor((lng + dlng + 180.0) / 360.0 * ncols)
        cols = sorted({ix % ncols for ix in range(ix0, ix1 + 1)})
    if len(cols) * (iy1 - iy0 + 1) > limit:
        return None
    return [_encode_indices(ix, iy, precision) for iy in range(iy0, iy1 + 1) for ix in cols]


def covering_cells(lat: float, lng: float, radius_m: float, max_cells: int = MAX_COVER) -> list[str]:
    """Cells of one level that together cover the circle: the finest level with at most
    ``max_cells`` cells, else the coarsest level (however many cells it takes)."""
    for precision in sorted(LEVELS, reverse=True):
        cells = _cover_at(lat, lng, radius_m, precision, max_cells)
        if cells is not None:
            return cells
    coarsest = min(LEVELS)
    cells = _cover_at(lat, lng, radius_m, coarsest, 1 << 30)
    assert cells is not None
    return cells


def decode_indices(cell: str) -> tuple[int, int]:
    """(column, row) of a geohash at its own precision."""
    ix = iy = 0
    for i, bit in enumerate(b for ch in cell for b in _char_bits(ch)):
        if i % 2 == 0:
            ix = (ix << 1) | bit
        else:
            iy = (iy << 1) | bit
    return ix, iy


def _char_bits(ch: str) -> list[int]:
    value = _BASE32.index(ch)
    return [(value >> s) & 1 for s in (4, 3, 2, 1, 0)]


def bounds(cell: str) -> tuple[float, float, float, float]:
    """(south, west, north, east) of a cell, in degrees."""
    width, height = cell_size_deg(len(cell))
    ix, iy = decode_indices(cell)
    west, south = -180.0 + ix * width, -90.0 + iy * height
    return south, west, south + height, west + width
