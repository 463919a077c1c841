"""The pure pieces: distances, the three rules' arithmetic, the mayor decision."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from bson import ObjectId
from geopy.distance import great_circle

from checkins import rules
from checkins.mayor import decide_mayor
from geo.distance import fast_m, geodesic_m
from solomo.core.errors import ApiError
from tests.checkins.helpers import point_at

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("lat", "lng", "metres", "bearing"), [
    (31.23, 121.47, 150.0, 0.0), (31.23, 121.47, 2000.0, 90.0), (-33.9, 18.4, 12_345.0, 200.0),
    (59.9, 10.7, 300_000.0, 45.0), (0.0, 179.999, 500.0, 90.0),
])
def test_geodesic_and_fast_agree(lat, lng, metres, bearing):
    lat2, lng2 = point_at(lat, lng, metres, bearing)
    assert geodesic_m(lat, lng, lat2, lng2) == pytest.approx(metres, abs=1e-3)
    assert fast_m(lat, lng, lat2, lng2) == pytest.approx(metres, rel=0.006)
    assert fast_m(lat, lng, lat2, lng2) == pytest.approx(great_circle((lat, lng), (lat2, lng2)).meters, rel=2e-3)


def test_distance_zero_and_antipodes():
    assert geodesic_m(10, 20, 10, 20) == 0.0
    assert fast_m(10, 20, 10, 20) == 0.0
    assert fast_m(0, 0, 0, 180) == pytest.approx(20_015_086, rel=1e-3)


@pytest.mark.parametrize(("radius", "accuracy", "inside", "outside"), [
    (100, 20, 119.9, 120.1),   # accuracy widens the radius
    (100, 100, 199.9, 200.1),  # up to the cap
    (100, 4000, 199.9, 200.1),  # capped at 100 m
    (2000, 0.5, 2000.4, 2000.6),
])
def test_range_rule(radius, accuracy, inside, outside):
    rules.check_range(inside, radius, accuracy)
    with pytest.raises(ApiError) as err:
        rules.check_range(outside, radius, accuracy)
    assert err.value.status == 422 and err.value.code == "too_far"


def test_cooldown_rule():
    rules.check_cooldown(None, T0)
    rules.check_cooldown(T0 - timedelta(hours=1), T0)  # exactly an hour: allowed
    rules.check_cooldown(T0 - timedelta(minutes=61), T0)
    with pytest.raises(ApiError) as err:
        rules.check_cooldown(T0 - timedelta(minutes=59), T0)
    assert err.value.status == 429 and err.value.code == "checkin_too_soon"
    assert err.value.headers["Retry-After"] == "60"
    with pytest.raises(ApiError) as err:
        rules.check_cooldown(T0 - timedelta(minutes=59, seconds=59, milliseconds=500), T0)
    assert err.value.headers["Retry-After"] == "1"  # rounded up, never 0


def _fix(at: datetime, accuracy: float = 20.0) -> rules.Fix:
    return rules.Fix(0.0, 0.0, accuracy, at)


def test_travel_rule_speed():
    hour_ago = _fix(T0 - timedelta(hours=1))
    rules.check_travel(None, _fix(T0), 10_000_000)
    rules.check_travel(hour_ago, _fix(T0), 300_000 + 40 - 1)
    with pytest.raises(ApiError) as err:
        rules.check_travel(hour_ago, _fix(T0), 300_000 + 40 + 1)
    assert err.value.status == 422 and err.value.code == "impossible_travel"


def test_travel_rule_zero_gap_and_tiny_hops():
    same_time = _fix(T0)
    rules.check_travel(same_time, _fix(T0), 40)  # within both fixes' accuracy: allowed
    with pytest.raises(ApiError):
        rules.check_travel(same_time, _fix(T0), 41)
    rules.check_travel(_fix(T0, 100), _fix(T0, 5000), 200)  # accuracies capped at 100 each
    with pytest.raises(ApiError):
        rules.check_travel(_fix(T0, 100), _fix(T0, 5000), 201)
    # a previous fix "in the future" (clock skew) counts as no time at all
    with pytest.raises(ApiError):
        rules.check_travel(_fix(T0 + timedelta(minutes=10)), _fix(T0), 1000)


def test_decide_mayor():
    a, b = ObjectId(), ObjectId()
    assert decide_mayor(None, 0, a, 1) == a
    assert decide_mayor(a, 3, b, 3) == a  # ties keep the sitting mayor
    assert decide_mayor(a, 3, b, 4) == b
    assert decide_mayor(a, 0, b, 1) == b  # the sitting mayor's days aged out
    assert decide_mayor(a, 0, None, 0) is None
    assert decide_mayor(a, 2, a, 2) == a
