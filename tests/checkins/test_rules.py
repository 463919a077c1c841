"""The pure pieces: distances, the three rules' arithmetic, the mayor decision."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from bson import ObjectId
from geopy.distance import great_circle

from checkins import rules
from checkins.mayor import decide_mayor
from geo.distance import fast_m, geodesic_bound_m, geodesic_m
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


BOUND_EDGE_PAIRS = [
    ((10.0, 20.0), (10.0, 20.0)),  # the same point
    ((89.9, 0.0), (90.0, 0.0)), ((-89.99, 10.0), (-89.9, 10.0)),  # meridians near a pole (longest radius)
    ((89.9999, 0.0), (89.9999, 180.0)), ((-89.99, -90.0), (-89.99, 90.0)),  # across a pole
    ((0.0, 179.9999), (0.0, -179.9999)), ((52.5, -179.99), (52.6, 179.98)),  # across the antimeridian
    ((0.0, 0.0), (0.0, 180.0)), ((0.0, 0.0), (0.5, 179.5)), ((30.0, 0.0), (-30.0, 180.0)),  # (near-)antipodes
    ((0.0, 0.0), (0.0, 0.0001)), ((31.23, 121.47), (31.2301, 121.47)),  # ~11 m
]


def test_the_geodesic_never_exceeds_its_bound():
    rng = random.Random(14)
    pairs = [*BOUND_EDGE_PAIRS, *(((rng.uniform(-90, 90), rng.uniform(-180, 180)),
                                   (rng.uniform(-90, 90), rng.uniform(-180, 180))) for _ in range(5000))]
    for a, _ in pairs[len(BOUND_EDGE_PAIRS):len(BOUND_EDGE_PAIRS) + 2500]:  # and as many near pairs
        pairs.append((a, (max(-90.0, min(90.0, a[0] + rng.uniform(-0.01, 0.01))), a[1] + rng.uniform(-0.01, 0.01))))
    for (lat1, lng1), (lat2, lng2) in pairs:
        exact = geodesic_m(lat1, lng1, lat2, lng2)
        bound = geodesic_bound_m(lat1, lng1, lat2, lng2)
        assert bound >= exact, ((lat1, lng1), (lat2, lng2), bound, exact)
    # near the fixes a check-in compares, the bound is close enough to spare the geodesic
    assert geodesic_bound_m(31.23, 121.47, 31.2301, 121.47) < 1.01 * geodesic_m(31.23, 121.47, 31.2301, 121.47) + 0.01
    # a sphere of the mean radius would not do: along a meridian near a pole it is shorter
    assert fast_m(89.9, 0.0, 90.0, 0.0) < geodesic_m(89.9, 0.0, 90.0, 0.0)


def _outcome(check, *args):
    try:
        check(*args)
    except ApiError as exc:
        return exc.code, exc.details
    return None


def test_travel_between_decides_as_the_geodesic_does():
    """Allowances on both sides of each move's geodesic, within a millimetre of it too: the bound
    takes no decision the geodesic would take otherwise, and a refusal reports the geodesic."""
    rng = random.Random(15)
    refused = allowed = 0
    for _ in range(2000):
        lat, lng = rng.uniform(-89, 89), rng.uniform(-180, 180)
        lat2, lng2 = point_at(lat, lng, rng.choice([5.0, 300.0, 40_000.0, 3_000_000.0]), rng.uniform(0, 360))
        metres = geodesic_m(lat, lng, lat2, lng2)
        slack = rng.choice([-1.0, -0.001, 0.0, 0.001, 1.0, 0.1 * metres])
        seconds = max(0.0, (metres + slack - 40) / rules.MAX_SPEED_MPS)  # 40: both fixes' accuracy
        before = rules.Fix(lat, lng, 20.0, T0)
        here = rules.Fix(lat2, lng2, 20.0, T0 + timedelta(seconds=seconds))
        expected = _outcome(rules.check_travel, before, here, metres)
        assert _outcome(rules.check_travel_between, before, here) == expected
        refused, allowed = refused + (expected is not None), allowed + (expected is None)
    assert refused > 300 and allowed > 300
