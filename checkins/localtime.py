"""A store's local time: the day and hour its owner and its customers live by.

A store carries an IANA ``timezone`` (contract: Store insights; default ``Asia/Shanghai``, where
the demo city and most stores are). Everything counted "per day" at a store — the first check-in
of the day that earns loyalty points, the insights' days and hours, the settlement ledger — uses
the store's local calendar, so a check-in at 01:00 in Shanghai belongs to that Shanghai day, not
to the previous UTC day.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from solomo.core.errors import Invalid

DEFAULT_TIMEZONE = "Asia/Shanghai"


@lru_cache(maxsize=1)
def _known() -> frozenset[str]:
    return frozenset(available_timezones())


def parse_timezone(name: Any) -> str:
    """A client's time zone name, checked against the IANA database (422 ``invalid`` otherwise)."""
    if not isinstance(name, str) or name not in _known():
        raise Invalid("timezone must be an IANA time zone name such as Asia/Shanghai")
    return name


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_TIMEZONE)


def store_zone(store: dict[str, Any]) -> ZoneInfo:
    return zone(str(store.get("timezone") or DEFAULT_TIMEZONE))


def local_day(store: dict[str, Any], at: datetime) -> str:
    """``YYYY-MM-DD`` of ``at`` (aware) on the store's calendar."""
    return at.astimezone(store_zone(store)).strftime("%Y-%m-%d")


def local_hour(store: dict[str, Any], at: datetime) -> int:
    return at.astimezone(store_zone(store)).hour


def day_start_utc(store: dict[str, Any], day: date) -> datetime:
    """The UTC instant at which ``day`` begins at the store (DST-safe: midnight local, folded)."""
    return datetime.combine(day, time(0), tzinfo=store_zone(store)).astimezone(UTC)


def day_range_utc(store: dict[str, Any], first: date, last: date) -> tuple[datetime, datetime]:
    """``[start, end)`` in UTC covering the store-local days ``first`` .. ``last`` inclusive."""
    return day_start_utc(store, first), day_start_utc(store, last + timedelta(days=1))


def today(store: dict[str, Any], now: datetime | None = None) -> date:
    return (now or datetime.now(UTC)).astimezone(store_zone(store)).date()
