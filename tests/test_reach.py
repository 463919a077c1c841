"""``geo.reach``: the first circle of a nearest-first GEO search, and what a reply proves complete."""

from __future__ import annotations

import math

from geo.reach import FLOOR_M, MARGIN, MAX_KEYS, SLACK_M, K, Reach, complete_below, redis_m, widen


def test_the_first_circle_follows_the_last_reach_within_the_radius():
    reach = Reach()
    assert reach.first("s", 5000) == 5000  # nothing learnt: the whole radius
    reach.learn("s", 1200)
    assert reach.first("s", 5000) == 1200 * MARGIN
    assert reach.first("s", 1000) == 1000  # never past the caller's radius
    assert reach.first("s", 5000, beyond_m=3000) == 3000 + 1200 * MARGIN  # a later page starts further out
    assert reach.first("s", 5000, beyond_m=-1e15) == 1200 * MARGIN  # a cursor's distance is the client's
    assert reach.first("s", 5000, beyond_m=1e15) == 5000
    reach.learn("s", 1)
    assert reach.first("s", 5000) == FLOOR_M
    assert reach.first("other", 800) == 800


def test_the_memory_is_bounded():
    reach = Reach()
    for i in range(MAX_KEYS + 1):
        reach.learn(str(i), 10.0)
    assert len(reach._seen) <= MAX_KEYS


def test_a_reply_is_complete_below_its_last_hit_or_its_circle():
    # cut by COUNT: below the last hit's distance less the rounding, in exact metres
    assert complete_below(30, 30, 902.0, 1000.0, 5000.0) == (902.0 - SLACK_M) / K
    # not cut: everything within the searched circle, the circle's own radius included
    below = complete_below(12, 30, 900.0, 1000.0, 5000.0)
    assert below > 1000.0 and math.nextafter(below, 0) == 1000.0
    assert complete_below(12, 30, 900.0, 5000.0, 5000.0) == math.inf  # the whole radius searched
    assert complete_below(0, 30, None, 5000.0, 5000.0) == math.inf


def test_redis_is_asked_for_a_circle_holding_every_member_within_the_radius():
    assert redis_m(1000.0) == 1000.0 * K + SLACK_M and K < 1  # Redis's sphere is the smaller


def test_widening_doubles_the_count_of_a_cut_reply_else_the_circle():
    assert widen(30, 30, 1000.0, 5000.0, 512) == (60, 1000.0)
    assert widen(12, 30, 1000.0, 5000.0, 512) == (30, 2000.0)
    assert widen(12, 30, 3000.0, 5000.0, 512) == (30, 5000.0)
    assert widen(512, 512, 1000.0, 5000.0, 512) is None
