"""Fast JSON in and out (orjson), with datetimes as RFC 3339 UTC strings."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from bson import ObjectId
from starlette.responses import JSONResponse as _StarletteJSONResponse

from solomo.core.timeutil import aware


def _default(value: Any) -> Any:
    if isinstance(value, ObjectId):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def rfc3339(value: datetime, timespec: Literal["milliseconds", "seconds"] = "milliseconds") -> str:
    """UTC, millisecond precision (or whole seconds, truncated), with a trailing Z."""
    return aware(value).astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, default=_default, option=orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC)


def loads(data: bytes | str) -> Any:
    return orjson.loads(data)


class JSONResponse(_StarletteJSONResponse):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content)
