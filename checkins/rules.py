"""The three check-in rules, as pure functions of plain values (no I/O).

1. **Range** — the reported position must be within ``checkin_radius_m + min(accuracy_m, 100)``
   metres (geodesic) of the store: a fuzzy fix may stretch the radius, but by 100 m at most, so a
   client cannot claim "accuracy 5 km" to check in from home.
2. **Cooldown** — one check-in per user and store per hour: a check-in *less than* an hour after
   the previous one at the same store is refused with 429 and ``Retry-After``; exactly one hour
   later is allowed.
3. **Travel** — reaching this position from the user's previous check-in (any store) must not need
   more than 300 km/h. Both fixes are fuzzy, so each one's capped accuracy (``min(accuracy, 100)``)
   is granted for free before speed is measured::

       allowed_m = 300 km/h × Δt + min(acc_prev, 100) + min(acc_now, 100)

   This one inequality also settles the edge cases without dividing by zero: with Δt = 0 (two
   check-ins in the same millisecond) only moves within the two fixes' slack pass, and tiny hops
   (next door in the same mall) always pass. A previous check-in stamped in the future (clock skew
   between API processes) counts as Δt = 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from geo.distance import geodesic_bound_m, geodesic_m
from solomo.core.errors import Invalid, RateLimited

ACCURACY_CAP_M = 100.0
ACCURACY_DEFAULT_M = 20.0
ACCURACY_MAX_M = 5000.0
COOLDOWN = timedelta(hours=1)
MAX_SPEED_KMH = 300.0
MAX_SPEED_MPS = MAX_SPEED_KMH / 3.6


def capped_accuracy(accuracy_m: float) -> float:
    return min(max(accuracy_m, 0.0), ACCURACY_CAP_M)


def allowed_range_m(radius_m: float, accuracy_m: float) -> float:
    return radius_m + capped_accuracy(accuracy_m)


def check_range(distance_m: float, radius_m: float, accuracy_m: float) -> None:
    """422 ``too_far`` when the position is outside the store's (accuracy-stretched) radius."""
    allowed = allowed_range_m(radius_m, accuracy_m)
    if distance_m > allowed:
        raise Invalid(
            f"you are {distance_m:.0f} m from the store; check-ins are accepted within {allowed:.0f} m",
            code="too_far",
            details=[{"distance_m": round(distance_m, 1), "allowed_m": round(allowed, 1)}],
        )


def check_cooldown(previous_at: datetime | None, now: datetime) -> None:
    """429 ``checkin_too_soon`` (Retry-After in whole seconds, rounded up) within an hour."""
    if previous_at is None:
        return
    wait = (previous_at + COOLDOWN - now).total_seconds()
    if wait > 0:
        raise RateLimited("you checked in here less than an hour ago", retry_after=math.ceil(wait),
                          code="checkin_too_soon")


@dataclass(frozen=True)
class Fix:
    """A reported position at a time, with its reported accuracy."""

    lat: float
    lng: float
    accuracy_m: float
    at: datetime


def travel_allowance_m(previous: Fix, current: Fix) -> float:
    elapsed = max(0.0, (current.at - previous.at).total_seconds())
    return MAX_SPEED_MPS * elapsed + capped_accuracy(previous.accuracy_m) + capped_accuracy(current.accuracy_m)


def check_travel(previous: Fix | None, current: Fix, distance_m: float) -> None:
    """422 ``impossible_travel`` when ``distance_m`` (geodesic, previous → current) is too far for the time."""
    if previous is None:
        return
    allowed = travel_allowance_m(previous, current)
    if distance_m > allowed:
        raise Invalid(
            f"getting here from your previous check-in would need more than {MAX_SPEED_KMH:.0f} km/h",
            code="impossible_travel",
            details=[{"distance_m": round(distance_m, 1), "allowed_m": round(allowed, 1)}],
        )


def check_travel_between(previous: Fix, current: Fix) -> None:
    """:func:`check_travel` on the geodesic between the two fixes, computed only when a cheap bound
    of it (:func:`geo.distance.geodesic_bound_m`) exceeds the allowance: below it, the geodesic
    cannot refuse the move (most check-ins: the last one was hours away in time, minutes on foot)."""
    if geodesic_bound_m(previous.lat, previous.lng, current.lat, current.lng) <= travel_allowance_m(previous, current):
        return
    check_travel(previous, current, geodesic_m(previous.lat, previous.lng, current.lat, current.lng))
