"""Opaque, signed cursors and the contract's page shape ``{"items", "next_cursor"}``.

A cursor names the last item a client saw as ``(score, id)`` — for time-ordered lists the
creation time in milliseconds and the id — so it stays valid while new items arrive at the
head. It is HMAC-signed: a tampered cursor is a 400 ``invalid_cursor``, never a query.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import orjson
from bson import ObjectId
from bson.errors import InvalidId
from pydantic import BaseModel, ConfigDict, Field

from solomo.core.errors import BadRequest


class PageQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(20, ge=1, le=100, description="Items per page (1..100)")
    cursor: str | None = Field(None, max_length=512, description="Opaque cursor from next_cursor")


class CursorCodec:
    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(("cursor:" + secret).encode()).digest()

    def _sig(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:12]

    def encode(self, value: Any) -> str:
        payload = orjson.dumps(value)
        raw = payload + self._sig(payload)
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def decode(self, token: str) -> Any:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (ValueError, TypeError):
            raise BadRequest("cursor is not valid", code="invalid_cursor") from None
        payload, sig = raw[:-12], raw[-12:]
        if len(raw) <= 12 or not hmac.compare_digest(sig, self._sig(payload)):
            raise BadRequest("cursor is not valid", code="invalid_cursor")
        try:
            return orjson.loads(payload)
        except orjson.JSONDecodeError:
            raise BadRequest("cursor is not valid", code="invalid_cursor") from None

    def decode_position(self, token: str | None) -> tuple[float, str] | None:
        """A ``(score, id)`` position, or None for the first page."""
        if token is None:
            return None
        value = self.decode(token)
        if (
            not isinstance(value, list) or len(value) != 2
            or not isinstance(value[0], int | float) or not isinstance(value[1], str)
        ):
            raise BadRequest("cursor is not valid", code="invalid_cursor")
        return float(value[0]), value[1]

    def decode_id_position(self, token: str | None) -> tuple[float, ObjectId] | None:
        """A ``(score, ObjectId)`` position, or None for the first page; 400 when the id is not one."""
        position = self.decode_position(token)
        return None if position is None else id_position(position)

    def encode_position(self, score: float, item_id: str) -> str:
        return self.encode([score, item_id])


def id_position(position: tuple[float, str]) -> tuple[float, ObjectId]:
    """A decoded ``(score, id)`` position with the id as an ObjectId; 400 ``invalid_cursor`` when it is not one
    (a signed cursor from another list, say), so keyset queries never see a malformed id."""
    score, item_id = position
    try:
        return score, ObjectId(item_id)
    except (InvalidId, TypeError):
        raise BadRequest("cursor is not valid", code="invalid_cursor") from None


def page(items: list[Any], next_cursor: str | None) -> dict[str, Any]:
    return {"items": items, "next_cursor": next_cursor}
