"""Distances on the Earth, in metres.

Two distances on purpose, and a bound (see ``docs/design.md``):

* :func:`geodesic_m` — the ellipsoidal (WGS-84) geodesic, accurate to millimetres but about
  20 µs a call. Use it wherever a *decision* depends on the number: the check-in radius, the
  travel-speed rule. It is geopy's ``geodesic`` without geopy's wrapping: geographiclib's
  ``Inverse`` (what geopy calls) asked for the distance only — the same metres to the nanometre on
  100,000 random pairs, 21 µs against geopy's 48.
* :func:`fast_m` — the haversine formula on a sphere of the mean Earth radius, a few µs a call and
  within about 0.5 % of the geodesic. Use it to sort or pre-filter many candidates.
  :func:`spherical_m` is the same formula on MongoDB's sphere: a page read from a Redis GEO set
  measures its members with it, so its metres are those MongoDB's ``$nearSphere`` gives
  (:mod:`geo.reach`).
* :func:`geodesic_bound_m` — a distance the geodesic never exceeds, a few float operations. A
  decision that the geodesic could only confirm is taken on it (the travel rule: a check-in a day
  after the last one, 11 m from it, against 300 km/h), and the geodesic computed only when the
  bound could change the decision. A check-in so computes one geodesic (its radius), not two.
"""

from __future__ import annotations

import math

from geographiclib.geodesic import Geodesic

_WGS84 = Geodesic.WGS84

EARTH_MEAN_RADIUS_M = 6_371_008.8
"""IUGG mean radius R1 of the WGS-84 ellipsoid."""
MONGO_EARTH_RADIUS_M = 6_378_100.0
"""MongoDB's sphere for ``$nearSphere`` and ``$centerSphere`` distances (so both read paths agree)."""
_GREATEST_CURVATURE_RADIUS_M: float = float(_WGS84.a) / (1 - float(_WGS84.f))
"""a²/b = a / (1 - f) (6,399,594 m): no radius of curvature of the WGS-84 ellipsoid, along a
meridian or a parallel, is greater (both reach it at the poles)."""


def geodesic_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Ellipsoidal distance between two points (decimal degrees) in metres."""
    return float(_WGS84.Inverse(lat1, lng1, lat2, lng2, Geodesic.DISTANCE)["s12"])


def fast_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Haversine distance in metres on a sphere; cheap, for ordering and coarse filters only."""
    return _haversine_m(lat1, lng1, lat2, lng2, EARTH_MEAN_RADIUS_M)


def spherical_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance on MongoDB's sphere (haversine), as its spherical queries measure."""
    return _haversine_m(lat1, lng1, lat2, lng2, MONGO_EARTH_RADIUS_M)


def _haversine_m(lat1: float, lng1: float, lat2: float, lng2: float, radius_m: float) -> float:
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlmb = math.radians(lng2 - lng1)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * radius_m * math.asin(min(1.0, math.sqrt(h)))


def geodesic_bound_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """A distance in metres that the geodesic between the points never exceeds (a few float operations).

    It is the length bound of one path between them: along the meridian to the other latitude, then
    along the parallel of whichever latitude is nearer a pole. A meridian's arc is ∫ M dφ and a
    parallel's N cos φ · Δλ, where M and N never exceed a²/b; the geodesic is no longer than any
    path. The slack covers rounding (geographiclib's own error is ~15 nm)."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dlmb = abs(math.radians(lng2 - lng1)) % math.tau
    dlmb = min(dlmb, math.tau - dlmb)  # the shorter way round
    path = abs(phi2 - phi1) + min(math.cos(phi1), math.cos(phi2)) * dlmb
    return _GREATEST_CURVATURE_RADIUS_M * path * (1 + 1e-9) + 0.001
