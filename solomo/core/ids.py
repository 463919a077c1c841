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


class _Interned:
    """The ObjectIds of the hex texts a process read lately, one object per id: making one from its
    text is ~1 µs of Python, and a page's dictionaries and sets of ids compare the ids they meet by
    ``__eq__`` (Python too) unless they are the very same object. Two generations of at most
    :data:`INTERNED` ids each: an id met again in the older one moves to the recent one, so an id in
    use keeps its object, and at most twice that many are held."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.recent: dict[str, ObjectId] = {}
        self.older: dict[str, ObjectId] = {}

    def get(self, text: str) -> ObjectId:
        oid = self.recent.get(text)
        if oid is None:
            oid = self.older.get(text)
            if oid is None:
                oid = ObjectId(text)  # InvalidId for anything else than 24 hex digits
            if len(self.recent) >= self.size:
                self.older, self.recent = self.recent, {}
            self.recent[text] = oid
        return oid


INTERNED = 50_000
"""Ids a process keeps one object for (:class:`_Interned`): a few MB."""
_INTERNED = _Interned(INTERNED)


def object_id(text: str) -> ObjectId:
    """The ObjectId of a hex text we wrote ourselves (a timeline member, a cached view's field): the
    same object for the same id while it is in use (:class:`_Interned`); ``InvalidId`` otherwise."""
    return _INTERNED.get(text)


def maybe_id(value: object) -> ObjectId | None:
    """The ObjectId of a 24-digit hex text (:func:`object_id`), or None for anything else."""
    if isinstance(value, str) and len(value) == 24:
        try:
            return _INTERNED.get(value)
        except InvalidId:
            return None
    return None
