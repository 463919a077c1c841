"""Times as the service stores them: aware UTC datetimes, and milliseconds since the epoch (the
``*_ms`` fields that order feeds, lists and cursors, and the scores of Redis sorted sets)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def aware(value: datetime) -> datetime:
    """``value`` with a time zone; a naive one (an old document, a driver without ``tz_aware``) is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def ms_of(at: datetime) -> int:
    """Whole milliseconds since the epoch, rounded down (a naive datetime is UTC)."""
    return (aware(at) - EPOCH) // _MS


def from_ms(ms: float) -> datetime:
    """The aware UTC datetime of :func:`ms_of`'s value."""
    return EPOCH + timedelta(milliseconds=int(ms))


def now_ms() -> int:
    """The current time in milliseconds since the epoch."""
    return time.time_ns() // 1_000_000
