"""A store's local time: the day and hour its owner and its customers live by.

A store carries an IANA ``timezone`` (contract: Store insights; default ``Asia/Shanghai``, where
the demo city and most stores are). Everything counted "per day" at a store — the first check-in
of the day that earns loyalty points, the insights' days and hours, the settlement ledger, the
check-in days of the regulars audience — uses the store's local calendar, so a check-in at 01:00
in Shanghai belongs to that Shanghai day, not to the previous UTC day.
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
    """The UTC instant at which ``day`` begins at the store (DST-safe: midnight local, folded); 422
    ``invalid`` when that instant is outside Python's years 1..9999 (0001-01-01 east of Greenwich)."""
    try:
        return datetime.combine(day, time(0), tzinfo=store_zone(store)).astimezone(UTC)
    except OverflowError:
        raise _off_calendar(day) from None


def day_range_utc(store: dict[str, Any], first: date, last: date) -> tuple[datetime, datetime]:
    """``[start, end)`` in UTC covering the store-local days ``first`` .. ``last`` inclusive; 422
    ``invalid`` when either end cannot be a datetime (so client dates such as the ledger's are safe)."""
    if last == date.max:  # the range ends where the next day begins, and there is none
        raise _off_calendar(last)
    return day_start_utc(store, first), day_start_utc(store, last + timedelta(days=1))


def _off_calendar(day: date) -> Invalid:
    return Invalid(f"{day.isoformat()} is too close to the ends of the calendar: at this store, its day does "
                   "not begin and end within the years 1 to 9999 in UTC")


def today(store: dict[str, Any], now: datetime | None = None) -> date:
    return (now or datetime.now(UTC)).astimezone(store_zone(store)).date()


def _offset_s(tz: ZoneInfo, t: int) -> int:
    offset = datetime.fromtimestamp(t, tz).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def offsets(store: dict[str, Any], start: datetime, end: datetime) -> list[tuple[datetime, int]]:
    """The store's UTC offsets (seconds) over ``[start, end]``: ``[(start, o0), (t1, o1), ...]``, each in
    force from its instant on. Probed a day apart (no zone changes its offset twice in a day), each
    change then found to the second by bisection: about 100 probes for a 90-day window."""
    tz = store_zone(store)
    first, last = int(start.timestamp()), int(end.timestamp()) + 1
    spans = [(first, _offset_s(tz, first))]
    t = first
    while t < last:
        step = min(t + 86_400, last)
        if _offset_s(tz, step) != spans[-1][1]:
            lo, hi = t, step  # the offset at lo is the current one, at hi it is not: the change is in (lo, hi]
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (mid, hi) if _offset_s(tz, mid) == spans[-1][1] else (lo, mid)
            spans.append((hi, _offset_s(tz, hi)))
        t = step
    return [(datetime.fromtimestamp(at, UTC), offset) for at, offset in spans]


def local_day_expr(store: dict[str, Any], field: str, start: datetime, end: datetime) -> dict[str, Any]:
    """A MongoDB expression of :func:`local_day` of the date ``field`` for instants in ``[start, end]``:
    the date shifted by the offset in force (from :func:`offsets`), then formatted as a UTC date.

    The offsets come from Python's zone database, the one :func:`local_day` (and so the rollups and
    the loyalty ledger) uses, not from mongod's own, which may know fewer zones or older rules."""
    spans = offsets(store, start, end)
    shift: Any = spans[0][1] * 1000
    if len(spans) > 1:
        # branches are tried in order: before the first change the first offset, and so on
        shift = {"$switch": {"branches": [{"case": {"$lt": [f"${field}", at]}, "then": before * 1000}
                                          for (at, _), (_, before) in zip(spans[1:], spans, strict=False)],
                             "default": spans[-1][1] * 1000}}
    return {"$dateToString": {"format": "%Y-%m-%d", "date": {"$add": [f"${field}", shift]}}}
