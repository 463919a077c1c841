"""Keyset paging, one way for every list: signed cursors, the page query, the page shape.

A list is ordered by ``(score, _id)`` — a creation time in milliseconds, a distance, a queue time —
and a page ends at a :class:`Position`, the ``(score, id)`` of its last item. The next page starts
strictly after that position, so it stays valid while new items arrive at the head.

* :class:`CursorCodec` turns a position into an opaque, HMAC-signed cursor and back. Decoding
  validates everything; any cursor it did not issue for a position (garbage, tampered, too long,
  signed but the wrong shape, a forged huge number) is a 400 ``invalid_cursor`` — never a 500,
  never a silent default.
* :func:`keyset_page` pages a MongoDB query; :func:`keyset_rows` and :func:`cut_page` are its two
  halves for lists that merge several sources (feeds, the moderation queue) or read through an
  aggregation (``$geoNear``), with :func:`after_filter` for the "after this position" condition.
* :class:`PageQuery` is the query every list takes (``limit``, ``cursor``); :class:`Page` is the
  contract's answer ``{"items", "next_cursor"}``, built by :meth:`CursorCodec.page`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Generic, NamedTuple, TypeVar

import orjson
from bson import ObjectId
from bson.errors import InvalidId
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema
from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.collection import AsyncCollection

from solomo.core.errors import BadRequest

MAX_CURSOR_CHARS = 512
MAX_SCORE = 2**53
"""Scores are integers up to this (epoch milliseconds, ids' counters) or plain floats (distances):
anything larger was not issued here, and would not survive a float or a datetime."""

T = TypeVar("T")
Collection = AsyncCollection[dict[str, Any]]
Row = TypeVar("Row")


class Position(NamedTuple):
    """Where a page ended: the last item's score and id (ties on the score are broken by the id)."""

    score: float
    id: ObjectId


def _invalid_cursor() -> BadRequest:
    return BadRequest("cursor is not valid", code="invalid_cursor")


# --- the query and the answer ---------------------------------------------------------------------

CursorParam = Annotated[str, WithJsonSchema({"type": "string", "maxLength": MAX_CURSOR_CHARS})]
"""Documented as at most 512 characters; a longer one is refused by :meth:`CursorCodec.decode_position`
(400 ``invalid_cursor`` like any other cursor that is not ours) rather than by validation (422)."""


class PageQuery(BaseModel):
    # The query of every list; a list with more parameters extends it. Query strings are text, so
    # numbers are parsed from it; unknown parameters are refused. (A comment, not a docstring: the
    # docstring would become the schema's description in the OpenAPI document.)
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    limit: int = Field(20, ge=1, le=100, description="Items per page (1..100)")
    cursor: CursorParam | None = Field(None, description="Opaque cursor from next_cursor")


class Page(BaseModel, Generic[T]):
    """The contract's page. Name each use with a subclass (``class PostPage(Page[PostOut])``) so
    the OpenAPI document gets a readable component name."""

    items: list[T]
    next_cursor: str | None


# --- cursors --------------------------------------------------------------------------------------

class CursorCodec:
    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(("cursor:" + secret).encode()).digest()

    def _sig(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:12]

    def encode(self, value: Any) -> str:
        return self.sign(orjson.dumps(value))

    def sign(self, payload: bytes) -> str:
        """A token carrying these JSON bytes, signed (what :meth:`encode` sends; tests forge with it)."""
        raw = payload + self._sig(payload)
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def decode(self, token: str) -> Any:
        """The signed JSON value; 400 ``invalid_cursor`` when it is not one signed with our key."""
        if len(token) > MAX_CURSOR_CHARS:
            raise _invalid_cursor()
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (ValueError, TypeError):
            raise _invalid_cursor() from None
        payload, sig = raw[:-12], raw[-12:]
        if len(raw) <= 12 or not hmac.compare_digest(sig, self._sig(payload)):
            raise _invalid_cursor()
        try:
            return orjson.loads(payload)
        except orjson.JSONDecodeError:
            raise _invalid_cursor() from None

    def encode_position(self, position: Position) -> str:
        return self.encode([position.score, str(position.id)])

    def decode_position(self, token: str | None) -> Position | None:
        """The position a cursor names, or None for the first page (no cursor)."""
        if token is None:
            return None
        value = self.decode(token)
        if not isinstance(value, list) or len(value) != 2:
            raise _invalid_cursor()
        score, item_id = value
        if isinstance(score, bool) or not isinstance(score, int | float):
            raise _invalid_cursor()
        if not math.isfinite(score) or abs(score) > MAX_SCORE or not isinstance(item_id, str):
            raise _invalid_cursor()
        try:
            return Position(float(score), ObjectId(item_id))
        except InvalidId:
            raise _invalid_cursor() from None

    def page(self, items: list[Any], next_position: Position | None) -> dict[str, Any]:
        """The contract's page: the items and the cursor for the next page (None on the last one)."""
        cursor = self.encode_position(next_position) if next_position is not None else None
        return {"items": items, "next_cursor": cursor}


# --- keyset queries -------------------------------------------------------------------------------

def lookahead(limit: int) -> int:
    """Rows to read for a page of ``limit``: one more tells whether a next page exists."""
    return limit + 1


def cut_page(rows: list[Row], limit: int, position_of: Callable[[Row], Position]) -> tuple[list[Row], Position | None]:
    """``rows`` in list order, up to :func:`lookahead` of them: the page and the position to go on from
    (None when nothing follows)."""
    page = rows[:limit]
    if len(rows) <= limit or not page:
        return page, None
    return page, position_of(page[-1])


def after_filter(score_field: str | None, position: Position | None, *, descending: bool,
                 to_stored: Callable[[float], Any] = float) -> dict[str, Any]:
    """The MongoDB condition "after ``position``" in the order ``(score_field, _id)`` (``_id`` alone
    when ``score_field`` is None); empty for the first page."""
    if position is None:
        return {}
    beyond = "$lt" if descending else "$gt"
    if score_field is None:
        return {"_id": {beyond: position.id}}
    value = to_stored(position.score)
    return {"$or": [{score_field: {beyond: value}}, {score_field: value, "_id": {beyond: position.id}}]}


def _keyset_sort(score_field: str | None, *, descending: bool) -> list[tuple[str, int]]:
    direction = DESCENDING if descending else ASCENDING
    return ([] if score_field is None else [(score_field, direction)]) + [("_id", direction)]


async def keyset_rows(collection: Collection, query: dict[str, Any], *, score_field: str | None, descending: bool,
                      position: Position | None, count: int, projection: dict[str, Any] | None = None,
                      to_stored: Callable[[float], Any] = float) -> list[dict[str, Any]]:
    """Up to ``count`` documents matching ``query`` after ``position``, in ``(score_field, _id)`` order."""
    after = after_filter(score_field, position, descending=descending, to_stored=to_stored)
    filt = {"$and": [query, after]} if after else query
    cursor = collection.find(filt, projection).sort(_keyset_sort(score_field, descending=descending)).limit(count)
    return await cursor.to_list(None)


async def keyset_page(collection: Collection, query: dict[str, Any], *, score_field: str | None, descending: bool,
                      position: Position | None, limit: int, projection: dict[str, Any] | None = None,
                      to_stored: Callable[[float], Any] = float, to_score: Callable[[Any], float] = float,
                      ) -> tuple[list[dict[str, Any]], Position | None]:
    """One page of a MongoDB list ordered by ``(score_field, _id)`` and the position after it.

    ``score_field`` None orders by ``_id`` alone (the position's score is then 0). ``to_stored`` maps a
    position's score to the stored value and ``to_score`` back (see :func:`ms_datetime`).
    """
    rows = await keyset_rows(collection, query, score_field=score_field, descending=descending, position=position,
                             count=lookahead(limit), projection=projection, to_stored=to_stored)
    if score_field is None:
        return cut_page(rows, limit, lambda d: Position(0.0, d["_id"]))
    return cut_page(rows, limit, lambda d: Position(to_score(d[score_field]), d["_id"]))


# --- datetime scores (lists ordered by a stored datetime, paged by its milliseconds) --------------

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def datetime_ms(at: datetime) -> float:
    return float((at.astimezone(UTC) - _EPOCH) // timedelta(milliseconds=1))


def ms_datetime(ms: float) -> datetime:
    """A position's milliseconds as a datetime; 400 ``invalid_cursor`` beyond the datetime range
    (years 1..9999), which no stored item has."""
    try:
        return _EPOCH + timedelta(milliseconds=int(ms))
    except OverflowError:
        raise _invalid_cursor() from None
