"""Pure functions: topics, mentions, empty topics, geohash cells and their covering."""

from __future__ import annotations

import math

import pytest
from geopy.distance import great_circle

from feed.text import extract_mentions, extract_topics, has_empty_topic, normalize_topic, parse_topic_param
from geo.cells import LEVELS, bounds, cells_for_point, covering_cells, encode
from tests.support import offset, random_point


def test_topics_both_forms_normalized_and_deduplicated():
    topics = extract_topics("今天 #美食# 和 #Coffee 还有 #ＣＯＦＦＥＥ 以及 #coffee# #hello_world!")
    assert [(t.key, t.display) for t in topics] == [
        ("美食", "美食"), ("coffee", "Coffee"), ("hello_world", "hello_world")]


def test_topic_limits():
    assert extract_topics("#" + "a" * 33) == []
    assert [t.key for t in extract_topics("#" + "a" * 32)] == ["a" * 32]
    assert [t.key for t in extract_topics("#两行\n话题# #ok")] == ["两行", "ok"]
    assert normalize_topic("ＳｏＬｏＭｏ") == "solomo"
    assert parse_topic_param("#SoLoMo#") == parse_topic_param("ｓｏｌｏｍｏ") == "solomo"


@pytest.mark.parametrize(("text", "empty"), [
    ("#", True), ("hello #", True), ("## x", True), ("a # b", True), ("#  # x", True),
    ("C# rocks", False), ("#1 fan", False), ("x#", False), ("#话题# ok", False), ("no tags", False),
])
def test_empty_topic(text, empty):
    assert has_empty_topic(text) is empty


def test_mentions():
    assert extract_mentions("hi @Alice_1 and @alice_1, mail a@b.com, @ab too short, @bob!") == ["Alice_1", "bob"]


def test_geohash_known_value_and_bounds():
    assert encode(57.64911, 10.40744, 11) == "u4pruydqqvj"
    for _ in range(50):
        lat, lng = random_point()
        for p in LEVELS:
            south, west, north, east = bounds(encode(lat, lng, p))
            assert south <= lat < north and west <= lng < east
    assert len(cells_for_point(10, 10)) == len(LEVELS)


def test_covering_contains_every_point_of_the_circle():
    for radius in (300, 2000, 12000, 50000):
        lat, lng = random_point()
        cells = covering_cells(lat, lng, radius)
        precision = len(cells[0])
        assert len(cells) <= 16 or precision == min(LEVELS)
        for k in range(36):
            bearing = math.radians(k * 10)
            plat, plng = offset(lat, lng, north_m=radius * 0.999 * math.cos(bearing),
                                east_m=radius * 0.999 * math.sin(bearing))
            if great_circle((lat, lng), (plat, plng)).meters <= radius:
                assert encode(plat, plng, precision) in cells


def test_covering_across_the_antimeridian():
    cells = covering_cells(0.0, 179.999, 3000)
    assert encode(0.0, -179.999, len(cells[0])) in cells
    assert encode(0.0, 179.999, len(cells[0])) in cells
