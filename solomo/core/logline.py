"""The JSON log line's hot parts: its time stamp, and the access line made from a request's fields.

Compiled with the hot modules (:mod:`solomo.core.compiled`): the event loop makes one access line
per request, which costs ~1.6 µs compiled against ~2.2 in the interpreter (the two timed in turns in
one process; docs/benchmarks.md, thirty-third round). :class:`solomo.observability.JsonFormatter`
formats every record's stamp with :class:`Stamps` and every access line with :func:`access_line`,
so an access line is the same text whichever way it is made.
"""

from __future__ import annotations

import time

import orjson

ACCESS_LOGGER = "solomo.access"
"""The logger the access lines are written as (``solomo.observability.log``'s name)."""


class Stamps:
    """``2026-12-02T15:04:05.123Z`` (UTC, to the millisecond) for a record's ``created`` time.

    The date and time of the second are formatted once per second and the whole stamp once per
    millisecond: a busy process logs many lines in one. Each cache is one tuple, replaced whole, so
    a thread reading it (records are formatted on the threads that log them) never pairs the second
    or millisecond of one stamp with the text of another."""

    def __init__(self) -> None:
        self._second: tuple[int, str] = (-1, "")
        self._last: tuple[int, str] = (-1, "")

    def stamp(self, created: float) -> str:
        milli = int(created * 1000)
        last = self._last
        if last[0] == milli:
            return last[1]
        second, fraction = divmod(milli, 1000)
        cached = self._second
        if cached[0] == second:
            prefix = cached[1]
        else:
            prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = (second, prefix)
        stamp = f"{prefix}.{fraction:03d}Z"
        self._last = (milli, stamp)
        return stamp


def access_line(stamps: Stamps, created: float, method: str, path: str, status: int, route: str,
                duration_ms: float, complete: bool, request_id: str | None) -> str:
    """The line ``JsonFormatter.format`` makes of an access record (``solomo.access``, INFO, the
    message ``"<method> <path> <status>"``, these extras, the request's id), in its keys' order,
    without a record. Raises what ``orjson`` raises for text it refuses (a lone surrogate).

    The same text compiled or not for the types annotated, which the middleware passes (a float
    duration, an int status); compiled, an int duration would be written ``3.0`` and a wrong type
    raises ``TypeError``."""
    entry = {"ts": stamps.stamp(created), "level": "info", "logger": ACCESS_LOGGER,
             "msg": f"{method} {path} {status}", "request_id": request_id, "complete": complete,
             "duration_ms": duration_ms, "method": method, "path": path, "route": route, "status": status}
    if request_id is None:  # outside a request (the middleware always sets one)
        del entry["request_id"]
    return orjson.dumps(entry).decode()
