"""GeoJSON as MongoDB stores and queries it (2dsphere indexes, ``$geoNear``): coordinates are
``[lng, lat]`` — the reverse of how people (and this API) say them."""

from __future__ import annotations

from typing import Any


def geo_point(lat: float, lng: float) -> dict[str, Any]:
    """The GeoJSON Point of ``(lat, lng)``."""
    return {"type": "Point", "coordinates": [lng, lat]}
