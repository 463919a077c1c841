"""The one home of stored times: aware UTC datetimes and milliseconds since the epoch."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone

from solomo.core.timeutil import aware, from_ms, ms_of, now_ms


def test_naive_is_utc_and_aware_is_kept():
    naive = datetime(2024, 5, 1, 12, 0, 0)
    assert aware(naive) == datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    shanghai = datetime(2024, 5, 1, 20, 0, 0, tzinfo=timezone(timedelta(hours=8)))
    assert aware(shanghai) is shanghai
    assert ms_of(naive) == ms_of(shanghai)


def test_milliseconds_round_down_and_round_trip():
    at = datetime(2023, 11, 14, 22, 13, 20, 123_999, tzinfo=UTC)
    assert ms_of(at) == 1_700_000_000_123
    assert from_ms(ms_of(at)) == at.replace(microsecond=123_000)
    assert from_ms(1_700_000_000_123.9) == at.replace(microsecond=123_000)


def test_now_ms_is_the_clock():
    before = int(time.time() * 1000)
    assert before - 1 <= now_ms() <= int(time.time() * 1000) + 1
    first = now_ms()
    between = ms_of(datetime.now(UTC))
    assert first - 1 <= between <= now_ms() + 1  # the same clock: bracketed, no wall-time bound


def test_rfc3339_is_the_utc_instant_truncated_with_a_z():
    from bson.tz_util import utc as driver_utc

    from solomo.core.jsonio import rfc3339

    instant = datetime(2024, 2, 29, 23, 59, 59, 999_999, tzinfo=UTC)
    for zone in (UTC, driver_utc, timezone(timedelta(hours=8)), timezone(-timedelta(hours=5, minutes=30))):
        shown = instant.astimezone(zone)
        assert rfc3339(shown) == "2024-02-29T23:59:59.999Z"
        assert rfc3339(shown, timespec="seconds") == "2024-02-29T23:59:59Z"
    assert rfc3339(datetime(987, 3, 4, 5, 6, 7, 8_000)) == "0987-03-04T05:06:07.008Z"  # naive: UTC
    assert rfc3339(datetime(2025, 1, 1, tzinfo=timezone(timedelta(hours=8)))) == "2024-12-31T16:00:00.000Z"
