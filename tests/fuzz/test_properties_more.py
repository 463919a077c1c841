"""Property-based tests (hypothesis): the sensitive-word normalizer and matcher, the distance
functions and the check-in rules (range, cooldown, travel speed).

Each test states a rule the code must keep for *every* input hypothesis can find, not just the
examples in the unit tests; a counter-example is shrunk and printed by hypothesis.
"""

from __future__ import annotations

import math
import string
import unicodedata
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from checkins.rules import (
    ACCURACY_CAP_M,
    COOLDOWN,
    MAX_SPEED_MPS,
    Fix,
    allowed_range_m,
    check_cooldown,
    check_range,
    check_travel,
    travel_allowance_m,
)
from geo.distance import fast_m, geodesic_m
from moderation.matcher import CompiledWords
from moderation.normalize import normalize, word_key
from moderation.words import WordLists
from solomo.core.errors import Invalid, RateLimited
from tests.support import offset

PROPS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- the sensitive-word normalizer -------------------------------------------------------------

LATIN = string.ascii_lowercase + string.digits
CJK = "敏感词违禁广告赌博色情测试话题"
SEPARATORS = [" ", ".", "-", "_", "*", "\u200b", "\u3000", "·", "、", "。", "！", "~", "|", "\t", "/", "😀"]

latin_words = st.text(alphabet=LATIN, min_size=2, max_size=12).filter(lambda w: any(c.isalpha() for c in w))
cjk_words = st.text(alphabet=CJK, min_size=2, max_size=6)
any_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=300)


def fullwidth(text: str) -> str:
    """ASCII → full-width forms (what a Chinese IME produces)."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


@st.composite
def disguised(draw: st.DrawFn, word: str) -> str:
    """``word`` with separators between its characters, random case and random full-width letters."""
    out = []
    for i, ch in enumerate(word):
        if i:
            out.append("".join(draw(st.lists(st.sampled_from(SEPARATORS), max_size=3))))
        if draw(st.booleans()):
            ch = ch.upper()
        if draw(st.booleans()):
            ch = fullwidth(ch)
        out.append(ch)
    return "".join(out)


def matcher(block: list[str], review: list[str] | None = None) -> CompiledWords:
    return CompiledWords(WordLists(block=block, review=review or []))


@PROPS
@given(any_text)
def test_normalize_never_crashes_and_keeps_only_letters_digits_marks(text):
    norm = normalize(text)
    assert len(norm.joined) == len(norm.text)
    assert all(unicodedata.category(ch)[0] in "LNM" for ch in norm.text)
    if norm.text:
        assert norm.joined[0] is False  # nothing precedes the first kept character
    for i in range(len(norm.text) + 1):
        norm.is_boundary(i)  # defined everywhere, never raises


@PROPS
@given(any_text)
def test_normalizing_is_idempotent(text):
    once = normalize(text).text
    assert normalize(once).text == once
    assert word_key(once) == once


@PROPS
@given(any_text)
def test_matcher_never_crashes_on_any_text(text):
    compiled = matcher(["spam", "敏感"], ["review"])
    found = compiled.find(text)
    assert len({m.word for m in found}) == len(found)
    assert [m.kind for m in found] == sorted((m.kind for m in found), key=lambda k: k != "block")


@PROPS
@given(st.one_of(latin_words, cjk_words).flatmap(lambda w: st.tuples(st.just(w), disguised(w))))
def test_disguised_block_word_still_matches(pair):
    word, text = pair
    compiled = matcher([word])
    for context in (f"{text}", f"look: {text} !", f"{text}。后面"):
        found = compiled.find(context)
        assert [(m.kind, m.word) for m in found] == [("block", word)], (word, context)


@PROPS
@given(cjk_words, st.text(alphabet=CJK + LATIN, max_size=10), st.text(alphabet=CJK + LATIN, max_size=10))
def test_cjk_words_match_inside_any_text(word, before, after):
    assert [m.word for m in matcher([word]).find(before + word + after)] == [word]


@PROPS
@given(latin_words, st.text(alphabet=string.ascii_lowercase, min_size=1, max_size=5))
def test_latin_words_match_whole_words_only(word, glued):
    compiled = matcher([word])
    # glued to other letters it is part of a longer word (``ass`` must not fire inside ``class``) …
    assert compiled.find(f"x{glued}{word}{glued}x") == []
    assert compiled.find(f"{glued}{word}") == [] and compiled.find(f"{word}{glued}") == []
    # … but standing alone, between any separators, it is found
    assert [m.word for m in compiled.find(f"{glued} {word}, {glued}")] == [word]


@PROPS
@given(st.one_of(latin_words, cjk_words))
def test_block_beats_review_and_key_is_spelling_free(word):
    compiled = matcher([word.upper()], [word])
    assert [(m.kind, m.word) for m in compiled.find(f" {word} ")] == [("block", word.upper())]
    assert word_key(fullwidth(word.upper())) == word_key(word)


# --- distances ---------------------------------------------------------------------------------

lats = st.floats(min_value=-85, max_value=85, allow_nan=False)
lngs = st.floats(min_value=-180, max_value=180, allow_nan=False)
points = st.tuples(lats, lngs)
short_m = st.floats(min_value=0, max_value=5000, allow_nan=False)


@PROPS
@given(points, points)
def test_distances_are_symmetric_and_non_negative(a, b):
    g_ab, g_ba = geodesic_m(*a, *b), geodesic_m(*b, *a)
    f_ab, f_ba = fast_m(*a, *b), fast_m(*b, *a)
    assert g_ab >= 0 and f_ab >= 0
    assert g_ab == pytest.approx(g_ba, rel=1e-9, abs=1e-6)
    assert f_ab == pytest.approx(f_ba, rel=1e-9, abs=1e-6)
    assert f_ab <= math.pi * 6_371_008.8 + 1  # never more than half the circumference


@PROPS
@given(points)
def test_distance_to_itself_is_zero(a):
    assert geodesic_m(*a, *a) == pytest.approx(0, abs=1e-6)
    assert fast_m(*a, *a) == 0


@PROPS
@given(points, short_m, short_m)
def test_fast_is_close_to_geodesic_over_short_distances(a, north, east):
    b = offset(*a, north_m=north, east_m=east)
    assume(-90 <= b[0] <= 90)
    g, f = geodesic_m(*a, *b), fast_m(*a, *b)
    # the sphere vs the ellipsoid: about 0.5 % apart at most (0.56 % north-south at the equator,
    # where a degree of latitude is shortest), plus float noise at millimetres
    assert abs(g - f) <= 0.006 * g + 1e-3, (a, b, g, f)


@PROPS
@given(points, points, points)
def test_geodesic_triangle_inequality(a, b, c):
    assert geodesic_m(*a, *c) <= geodesic_m(*a, *b) + geodesic_m(*b, *c) + 1e-3


# --- check-in rules ----------------------------------------------------------------------------

radii = st.integers(min_value=20, max_value=2000)
accuracies = st.floats(min_value=0, max_value=5000, allow_nan=False)
distances = st.floats(min_value=0, max_value=3000, allow_nan=False)


def passes_range(distance: float, radius: float, accuracy: float) -> bool:
    try:
        check_range(distance, radius, accuracy)
    except Invalid as exc:
        assert exc.code == "too_far" and exc.status == 422
        return False
    return True


@PROPS
@given(distances, radii, accuracies, accuracies)
def test_too_far_is_monotonic_in_accuracy(distance, radius, acc1, acc2):
    low, high = sorted((acc1, acc2))
    assert allowed_range_m(radius, low) <= allowed_range_m(radius, high) <= radius + ACCURACY_CAP_M
    if passes_range(distance, radius, low):
        assert passes_range(distance, radius, high)  # a fuzzier fix never turns a yes into a no
    if not passes_range(distance, radius, high):
        assert not passes_range(distance, radius, low)


@PROPS
@given(radii, accuracies)
def test_too_far_boundary_is_exact(radius, accuracy):
    allowed = radius + min(accuracy, ACCURACY_CAP_M)
    assert allowed_range_m(radius, accuracy) == allowed
    assert passes_range(allowed, radius, accuracy)
    assert not passes_range(math.nextafter(allowed, math.inf), radius, accuracy)
    assert not passes_range(allowed + 0.01, radius, accuracy)


@FEW
@given(points, st.floats(min_value=0, max_value=1.0, allow_nan=False), radii, accuracies)
def test_too_far_with_real_geodesic_distances(store, fraction, radius, accuracy):
    """A point the geodesic puts inside the stretched radius passes; one beyond it fails."""
    allowed = allowed_range_m(radius, accuracy)
    inside = offset(*store, north_m=allowed * fraction * 0.99)
    outside = offset(*store, east_m=allowed * 1.02 + 1)
    assert passes_range(geodesic_m(*store, *inside), radius, accuracy)
    assert not passes_range(geodesic_m(*store, *outside), radius, accuracy)


T0 = datetime(2026, 1, 1, tzinfo=UTC)
seconds = st.floats(min_value=0, max_value=86_400, allow_nan=False)


def fix(lat: float, lng: float, acc: float, after_s: float) -> Fix:
    return Fix(lat, lng, acc, T0 + timedelta(seconds=after_s))


def passes_travel(previous: Fix, current: Fix, distance: float) -> bool:
    try:
        check_travel(previous, current, distance)
    except Invalid as exc:
        assert exc.code == "impossible_travel" and exc.status == 422
        return False
    return True


@PROPS
@given(seconds, seconds, accuracies, accuracies, st.floats(min_value=0, max_value=1e7, allow_nan=False))
def test_travel_allowance_grows_with_time(t1, t2, acc_prev, acc_now, distance):
    early, late = sorted((t1, t2))
    prev, now_early, now_late = fix(0, 0, acc_prev, 0), fix(0, 0, acc_now, early), fix(0, 0, acc_now, late)
    a_early = travel_allowance_m(prev, now_early)
    a_late = travel_allowance_m(prev, now_late)
    assert a_early <= a_late
    gained = (now_late.at - now_early.at).total_seconds()  # datetimes keep microseconds only
    assert a_late - a_early == pytest.approx(MAX_SPEED_MPS * gained, rel=1e-9, abs=1e-6)
    if passes_travel(prev, fix(0, 0, acc_now, early), distance):
        assert passes_travel(prev, fix(0, 0, acc_now, late), distance)


@PROPS
@given(st.floats(min_value=1, max_value=86_400, allow_nan=False), st.floats(min_value=0, max_value=1, allow_nan=False),
       accuracies, accuracies)
def test_travel_speed_rule(elapsed, fraction, acc_prev, acc_now):
    """At most 300 km/h (plus both fixes' capped accuracy) passes; anything faster fails."""
    prev, now = fix(0, 0, acc_prev, 0), fix(0, 0, acc_now, elapsed)
    elapsed = (now.at - prev.at).total_seconds()  # as the rule sees it (whole microseconds)
    slack = min(acc_prev, ACCURACY_CAP_M) + min(acc_now, ACCURACY_CAP_M)
    legal = MAX_SPEED_MPS * elapsed * fraction + slack - 1e-6  # (float rounding at fraction = 1)
    assert passes_travel(prev, now, legal)
    assert not passes_travel(prev, now, MAX_SPEED_MPS * elapsed * 1.001 + slack + 0.01)
    assert passes_travel(None, now, 1e9)  # the first check-in has nothing to compare with


@PROPS
@given(st.floats(min_value=0, max_value=3600 * 24, allow_nan=False), accuracies, accuracies)
def test_clock_skew_counts_as_no_time(skew, acc_prev, acc_now):
    """A previous check-in stamped in the future grants no travel time (never a negative allowance)."""
    prev, now = fix(0, 0, acc_prev, skew), fix(0, 0, acc_now, 0)
    slack = min(acc_prev, ACCURACY_CAP_M) + min(acc_now, ACCURACY_CAP_M)
    assert travel_allowance_m(prev, now) == pytest.approx(slack)
    assert passes_travel(prev, now, slack)
    assert not passes_travel(prev, now, slack + 0.01)


@PROPS
@given(st.floats(min_value=-7200, max_value=7200, allow_nan=False))
def test_cooldown_boundary(since_s):
    previous = T0
    now = T0 + timedelta(seconds=since_s)
    remaining = (COOLDOWN - timedelta(seconds=since_s)).total_seconds()
    if remaining <= 0:
        check_cooldown(previous, now)  # an hour or more later: allowed
        return
    with pytest.raises(RateLimited) as info:
        check_cooldown(previous, now)
    assert info.value.code == "checkin_too_soon" and info.value.status == 429
    assert info.value.retry_after == max(1, math.ceil(remaining))
    assert 1 <= int(info.value.headers["Retry-After"]) <= 3600 + 7200


@pytest.mark.parametrize("text", ["cafe\u200b\u0301 au lait", "CAFE.\u0301", "c a f e \u0301", "ｃａｆｅ\u3000\u0301"])
def test_separator_before_a_combining_mark_does_not_hide_a_word(text):
    """Found by test_normalizing_is_idempotent: a separator between a letter and its accent used to
    keep them apart (``e`` U+0301 instead of ``é``), so the block word ``café`` did not match."""
    assert [m.word for m in matcher(["café"]).find(text)] == ["café"]
    assert normalize(text).text.startswith("café")
