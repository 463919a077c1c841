"""Pure functions: topics, mentions, empty topics, geohash cells, grid levels and their covering."""

from __future__ import annotations

import math

import pytest
from geopy.distance import great_circle

from feed.text import extract_mentions, extract_topics, has_empty_topic, normalize_topic, parse_topic_param
from geo.cells import GRID_LEVELS, bounds, covering_grid, encode, grid_bounds, grid_cell, grid_cells_for_point
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
        for p in (4, 5, 6):
            south, west, north, east = bounds(encode(lat, lng, p))
            assert south <= lat < north and west <= lng < east


def test_grid_cells_hold_their_point_at_every_level():
    for _ in range(50):
        lat, lng = random_point()
        cells = grid_cells_for_point(lat, lng)
        assert [c.level for c in cells] == list(GRID_LEVELS)
        for cell in cells:
            south, west, north, east = grid_bounds(cell)
            assert south <= lat < north and west <= lng < east
    assert grid_cell(90.0, 180.0, 10) == grid_cell(89.9999, 179.9999, 10)  # the edges belong to the last cell


@pytest.mark.parametrize("radius", [1, 50, 300, 1000, 2000, 2500, 12000, 50000])
def test_covering_is_at_most_twelve_cells_of_one_level_and_holds_the_circle(radius):
    for _ in range(20):
        lat, lng = random_point()
        cells = covering_grid(lat, lng, radius)
        assert cells is not None and 1 <= len(cells) <= 12, (lat, lng, radius, cells)  # 3 rows, 4 columns
        level = cells[0].level
        assert {c.level for c in cells} == {level}
        for k in range(72):
            bearing = math.radians(k * 5)
            plat, plng = offset(lat, lng, north_m=radius * 0.999 * math.cos(bearing),
                                east_m=radius * 0.999 * math.sin(bearing))
            if great_circle((lat, lng), (plat, plng)).meters <= radius:
                assert grid_cell(plat, plng, level) in cells


@pytest.mark.parametrize("lat", [0.0, 22.5, 31.2, 39.9, 45.0, 51.5, 55.0])
def test_a_coverings_cells_stay_near_the_circles_area_at_a_citys_latitude(lat):
    # cells are square in degrees, so narrower in metres away from the equator: from ~37° on, cells
    # as wide as the radius were twice as coarse a level, and a page read ~5 times the circle's area
    radius = 2000
    ratios = []
    for i in range(50):
        cells = covering_grid(lat + i * 0.0007, 100.0 + i * 0.0013, radius)
        assert cells is not None
        area = 0.0
        for cell in cells:
            south, west, north, east = grid_bounds(cell)
            area += (north - south) * 111_320 * (east - west) * 111_320 * math.cos(math.radians((south + north) / 2))
        ratios.append(area / (math.pi * radius**2))
    assert sum(ratios) / len(ratios) < 3.5, (lat, sum(ratios) / len(ratios))


def test_covering_across_the_antimeridian_and_near_a_pole():
    cells = covering_grid(0.0, 179.999, 3000)
    assert cells is not None
    level = cells[0].level
    assert grid_cell(0.0, -179.999, level) in cells and grid_cell(0.0, 179.999, level) in cells
    assert covering_grid(89.99, 0.0, 50000) is None  # every longitude: served from MongoDB instead
