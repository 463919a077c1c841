"""Geohash cells (live offers) and the grid levels of the local feed.

Geohashes (:func:`encode`, :func:`bounds`) serve the live-offer cache. The local feed uses a
quadtree of *grid levels* instead (:class:`GridCell`): at level ``k`` the globe is cut into
``2**(k+1)`` columns by ``2**k`` rows, cells square in degrees, each level halving the side of the
one before (a geohash step multiplies the area by 32, too coarse to fit a radius). A located post
is written into its cell at every level of :data:`GRID_LEVELS`; a reader picks the finest level
whose cells are at least ``radius`` tall and ``2/3 radius`` wide around the circle, so its bounding
box (``2r``) spans at most 3 rows and 4 columns of cells, and drops the cells the circle does not
reach (:func:`covering_grid`).
"""

from __future__ import annotations

import math
from typing import NamedTuple

from geo.distance import fast_m

_BASE32 = "0123456789bcdefghjkmnpqrstuvwxyz"
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


# --- grid levels of the local feed ---------------------------------------------------------------

GRID_LEVELS: tuple[int, ...] = tuple(range(7, 18))
"""Levels written for every located post: cells from 1.4° (156 km tall) down to 0.0014° (153 m),
so any radius of the contract (up to 50 km) finds a level whose cells are at least as wide as it
up to latitude ±60°, and the finest matches the public grid (about 100 m)."""
MAX_GRID_COVER = 16
"""A covering of more cells (a wide circle near a pole) is not served from cells."""
PRUNE_SLACK = 1.02
"""The nearest point of a cell is found on a lat/lng rectangle, not along great circles; this slack
(plus 10 m) keeps every cell the circle may touch."""


class GridCell(NamedTuple):
    level: int
    col: int
    row: int

    @property
    def name(self) -> str:
        """``<level>:<col>:<row>``: the cell's text form (in its Redis key and in rebuild tasks)."""
        return f"{self.level}:{self.col}:{self.row}"


def grid_side_deg(level: int) -> float:
    """A cell's side, in degrees of latitude and of longitude alike."""
    return 180.0 / (1 << level)


def grid_cell(lat: float, lng: float, level: int) -> GridCell:
    """The cell of ``level`` holding (lat, lng) (the north and east edges belong to the last cell)."""
    side = grid_side_deg(level)
    cols, rows = 1 << (level + 1), 1 << level
    col = min(int((lng + 180.0) / side), cols - 1)
    row = min(int((lat + 90.0) / side), rows - 1)
    return GridCell(level, col, row)


def grid_cells_for_point(lat: float, lng: float) -> list[GridCell]:
    """The cells (one per level) a post located at its public position (lat, lng) is written to."""
    return [grid_cell(lat, lng, level) for level in GRID_LEVELS]


def parse_grid_cell(name: str) -> GridCell | None:
    """The cell named ``<level>:<col>:<row>``; None for anything else (an old task's geohash)."""
    parts = name.split(":")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    level, col, row = (int(p) for p in parts)
    if level not in GRID_LEVELS or col >= 1 << (level + 1) or row >= 1 << level:
        return None
    return GridCell(level, col, row)


def grid_bounds(cell: GridCell) -> tuple[float, float, float, float]:
    """(south, west, north, east) of a cell, in degrees."""
    side = grid_side_deg(cell.level)
    south, west = -90.0 + cell.row * side, -180.0 + cell.col * side
    return south, west, south + side, west + side


def _half_width_deg(lat: float, radius_m: float) -> tuple[float, float]:
    """(dlat, dlng) of the circle's bounding box, dlng measured at its poleward edge; dlng is 180
    when the circle reaches a pole or wraps the globe."""
    dlat = radius_m / EARTH_M_PER_DEG
    south, north = max(-90.0, lat - dlat), min(90.0, lat + dlat)
    coslat = min(math.cos(math.radians(south)), math.cos(math.radians(north)))
    if coslat < 1e-6 or radius_m / (EARTH_M_PER_DEG * coslat) >= 180.0:
        return dlat, 180.0
    return dlat, radius_m / (EARTH_M_PER_DEG * coslat)


def grid_level_for(lat: float, radius_m: float) -> int:
    """The finest level whose cells are at least ``radius_m`` tall and ``2/3 radius_m`` wide (at the
    circle's poleward edge): the 2r bounding box then spans at most 3 rows and 4 columns. The
    coarsest level when none is (a wide circle near a pole).

    Cells are square in degrees, so narrower in metres away from the equator. When they had to be
    ``radius_m`` wide too, a 2 km circle from ~37° on (Beijing, Seoul, New York, Europe) took a level
    twice as coarse: cells 4.9 km tall, and a page read ~5 times the circle's area (~3 times at the
    equator); a fourth column keeps it at ~3 up to ~57° (tests/feed/test_text_and_cells.py;
    docs/benchmarks.md)."""
    dlat, dlng = _half_width_deg(lat, radius_m)
    need_deg = max(dlat, dlng * 2 / 3)
    for level in sorted(GRID_LEVELS, reverse=True):
        if grid_side_deg(level) >= need_deg:
            return level
    return min(GRID_LEVELS)


def _cell_distance_m(lat: float, lng: float, cell: GridCell) -> float:
    """Distance from the point to the nearest point of the cell's lat/lng rectangle (approximate:
    the caller allows :data:`PRUNE_SLACK`)."""
    south, west, north, east = grid_bounds(cell)
    near_lat = min(max(lat, south), north)
    if west <= lng <= east:
        near_lng = lng
    else:  # the nearer edge, across the antimeridian if that is shorter
        to_west, to_east = (west - lng) % 360.0, (lng - east) % 360.0
        near_lng = west if to_west <= to_east else east
    return fast_m(lat, lng, near_lat, near_lng)


def covering_grid(lat: float, lng: float, radius_m: float) -> list[GridCell] | None:
    """The cells of one level holding every point within ``radius_m``: those of the circle's
    bounding box that the circle reaches. None when more than :data:`MAX_GRID_COVER` would be
    needed. Conservative: the caller filters by exact distance."""
    return cells_within(lat, lng, radius_m, grid_level_for(lat, radius_m), MAX_GRID_COVER)


def cells_within(lat: float, lng: float, radius_m: float, level: int, max_cells: int) -> list[GridCell] | None:
    """The cells of ``level`` that the circle reaches (a superset: the nearest point of each cell is
    found with :data:`PRUNE_SLACK`); None when more than ``max_cells`` would be needed."""
    side = grid_side_deg(level)
    dlat, dlng = _half_width_deg(lat, radius_m)
    cols, rows = 1 << (level + 1), 1 << level
    row0 = max(0, int((max(-90.0, lat - dlat) + 90.0) / side))
    row1 = min(rows - 1, int((min(90.0, lat + dlat) + 90.0) / side))
    if dlng >= 180.0:
        return None  # every longitude: far more cells than a page should read
    col0 = math.floor((lng - dlng + 180.0) / side)
    col1 = math.floor((lng + dlng + 180.0) / side)
    col_range = sorted({c % cols for c in range(col0, col1 + 1)})
    if len(col_range) * (row1 - row0 + 1) > 4 * max_cells:
        return None
    reach = radius_m * PRUNE_SLACK + 10.0
    cells = [GridCell(level, c, r) for r in range(row0, row1 + 1) for c in col_range
             if _cell_distance_m(lat, lng, GridCell(level, c, r)) <= reach]
    return cells if len(cells) <= max_cells else None
