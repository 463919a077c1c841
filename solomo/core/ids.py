"""Ids are ObjectId hex strings at the edge; anything else is simply "not found"."""

from __future__ import annotations

from bson import ObjectId
from bson.errors import InvalidId

from solomo.core.errors import NotFound


def parse_id(value: object, what: str = "resource") -> ObjectId:
    """An ObjectId from a client-supplied string; malformed ids answer 404, never 500."""
    if isinstance(value, str) and len(value) == 24:
        try:
            return ObjectId(value)
        except InvalidId:
            pass
    raise NotFound(f"{what} not found")


def maybe_id(value: object) -> ObjectId | None:
    if isinstance(value, str) and len(value) == 24:
        try:
            return ObjectId(value)
        except InvalidId:
            return None
    return None
