"""The queries search sends use their indexes (explain()): no collection scan, whatever the data."""

from __future__ import annotations

from typing import Any

from search.stores import _tier_filters
from search.tiers import near_find
from solomo.core.searchkeys import fold, runs


def stages(plan: Any) -> list[tuple[str, str | None]]:
    """Every (stage, index name) in an explain document."""
    found: list[tuple[str, str | None]] = []
    if isinstance(plan, dict):
        if "stage" in plan:
            found.append((plan["stage"], plan.get("indexName")))
        for value in plan.values():
            found += stages(value)
    elif isinstance(plan, list):
        for value in plan:
            found += stages(value)
    return found


async def explain(services: Any, command: dict[str, Any]) -> list[tuple[str, str | None]]:
    plan = await services.db.command("explain", command, verbosity="queryPlanner")
    return stages(plan)


def assert_index(plan: list[tuple[str, str | None]], index: str) -> None:
    assert not any(stage == "COLLSCAN" for stage, _ in plan), plan
    assert any(name == index for _, name in plan), plan


async def test_store_queries_walk_the_key_indexes(services: Any) -> None:
    q = fold("renmin 广场")
    for filt in _tier_filters(q, runs(q)):
        assert filt is not None
        plan = await explain(services, {"find": "stores", "filter": filt, "sort": {"_id": 1}, "limit": 100})
        assert_index(plan, "search_keys_id")
        near = near_find(filt, 31.23, 121.47, min_m=10.0, max_m=5000.0, projection={"search_keys": 0})
        plan = await explain(services, {"find": "stores", **near, "limit": 100})
        assert_index(plan, "search_keys_location")


async def test_user_and_topic_queries_walk_their_indexes(services: Any) -> None:
    plan = await explain(services, {"find": "users", "filter": {"search_keys": {"$all": ["s:小明", "s:明 "]},
                                                                "status": {"$ne": "deleted"}},
                                    "sort": {"_id": 1}, "limit": 100})
    assert_index(plan, "search_keys_id")
    # posts: the intersection pipeline's plan is checked where it is built and measured
    # (tests/search/test_search_speed.py: covered index scans, no post opened)
    plan = await explain(services, {"find": "topic_counts", "filter": {"prefixes": "咖", "post_count": {"$gt": 0}},
                                    "sort": {"post_count": -1, "_id": -1}, "limit": 21})
    assert_index(plan, "prefix_most_used")
    assert not any(stage == "SORT" for stage, _ in plan), plan


async def test_nearby_stores_keep_their_own_index(services: Any) -> None:
    """The key index is a second 2dsphere index on ``location``: the nearby list (no key in its
    query) must still walk ``location_2dsphere_category``, not every key of every store."""
    for query in ({}, {"category": "cafe"}):
        stage = {"near": {"type": "Point", "coordinates": [121.47, 31.23]}, "distanceField": "d",
                 "key": "location", "spherical": True, "maxDistance": 1000}
        near = {"$geoNear": {**stage, "query": query} if query else stage}
        plan = await explain(services, {"aggregate": "stores", "pipeline": [near, {"$limit": 21}], "cursor": {}})
        assert_index(plan, "location_2dsphere_category")
        assert not any(name == "search_keys_location" for _, name in plan), plan
