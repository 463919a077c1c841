"""The fast paths of search (docs/benchmarks-history.md, "Search, made fast"): exact tier filters decide
a store's tier by its keys alone, and post search intersects index windows of the query's keys.
Each is checked against the slow, obviously right answer on the real MongoDB."""

from __future__ import annotations

import uuid
from typing import Any

from search import posts as post_search
from search.posts import intersect_pipeline
from search.stores import _tier_filters, keys_decide, tier_of_name
from search.tiers import near_find
from solomo.core.searchkeys import fold, runs, store_keys
from tests.feed.helpers import post
from tests.search.test_search_api import get, walk
from tests.search.test_search_plans import explain
from tests.support import register

NAMES = ["人民广场咖啡", "Square Coffee", "咖啡 Square", "卡飞 Bar", "开发区 kafei Books", "Kafeine Lab",
         "人民 SQUARE", "RMGC Club", "乐活 KF", "咖啡馆 kafei", "Ｋａｆｅｉ 全角", "renmin 人民", "书店",
         "SQU-3 咖", "老西门 Kafé"]
EXACT = ["咖啡", "kafei", "squ", "rmgc", "rm", "ka", "人民 squ", "kf", "咖", "k", "renmin", "kafe",
         "square coffee", "squ 咖啡", "kaf é", "3", "-", "lxm", "renminguan"]
CHECKED = ["人民广场", "人民广场咖啡", "renminguangchang", "kafeirenminguang", "咖啡馆 kafei squarecoffee"]


async def test_exact_tier_filters_hold_exactly_their_tier(services: Any) -> None:
    """For a query the keys decide, tier t's filter finds exactly the stores whose name is of
    tier t (decided on the name, pinyin and all): no store is missing or in two tiers."""
    coll = services.db[f"tiers_{uuid.uuid4().hex[:8]}"]
    ids = (await coll.insert_many([{"name": n, "search_keys": store_keys(n)} for n in NAMES])).inserted_ids
    try:
        for q in EXACT:
            folded = fold(q)
            q_runs = runs(folded)
            assert keys_decide(folded, q_runs), q
            for t, filt in enumerate(_tier_filters(folded, q_runs)):
                want = {i for i, n in zip(ids, NAMES, strict=True) if tier_of_name(n, folded, q_runs) == t}
                got = set() if filt is None else {d["_id"] async for d in coll.find(filt, {"_id": 1})}
                assert got == want, (q, t, [NAMES[ids.index(i)] for i in got ^ want])
        for q in CHECKED:  # a long CJK run or word: the keys are necessary only, the names are checked
            assert not keys_decide(fold(q), runs(fold(q))), q
    finally:
        await coll.drop()


async def test_post_search_pages_across_windows_and_rounds(client: Any, monkeypatch: Any) -> None:
    """Posts holding both words are rare among those holding one: tiny windows make every page
    take several rounds, double its windows and end cut short; the walk still gives exactly the
    posts holding both, newest first, each once."""
    t = "zq" + uuid.uuid4().hex[:8]
    author = await register(client)
    texts = [f"{t}a", f"{t}b", f"{t}a {t}b", f"{t}b", f"{t}a", f"{t}a", f"{t}b {t}a", f"{t}b", f"{t}a",
             f"{t}a {t}b", f"{t}ab", f"{t}b", f"{t}a {t}b"]
    made = [await post(client, author, text) for text in texts]
    both = [p["id"] for p, text in reversed(list(zip(made, texts, strict=True))) if len(text.split()) == 2]
    q = f"{t}a {t}b"
    assert [p["id"] for p in (await get(client, author, "/v1/search/posts", q=q))["items"]] == both
    monkeypatch.setattr(post_search, "WINDOW", 1)
    for limit in (1, 2, 3):
        assert [p["id"] for p in await walk(client, author, "/v1/search/posts", limit, q=q)] == both
    monkeypatch.setattr(post_search, "MAX_ROUNDS", 1)  # pages cut short by the bound go on from there
    assert [p["id"] for p in await walk(client, author, "/v1/search/posts", 2, q=q)] == both
    # a prefix matching posts the other word's window also holds (ab starts with a): text decides
    assert [p["id"] for p in await walk(client, author, "/v1/search/posts", 2, q=f"{t}ab")] == [made[10]["id"]]


async def test_fast_paths_read_indexes_only(services: Any) -> None:
    """explain(): the post windows are covered index scans (no post fetched), and every tier of the
    first store page walks the ``(search_keys, location)`` index."""
    pipeline = intersect_pipeline(["b:咖啡", "b:拿铁", "w:lat"], None, 21, 400)
    plan = await explain(services, {"aggregate": "posts", "pipeline": pipeline, "cursor": {}})
    assert not any(stage in ("FETCH", "COLLSCAN") for stage, _ in plan), plan
    assert sum(name == "search_keys_newest" for _, name in plan) == 3, plan
    folded = fold("kafei")
    tiers = _tier_filters(folded, runs(folded))
    assert sum(t is not None for t in tiers) == 4
    for filt in tiers:
        assert filt is not None
        near = near_find(filt, 31.23, 121.47, max_m=5000.0, projection={"search_keys": 0})
        plan = await explain(services, {"find": "stores", **near, "limit": 22})
        assert not any(stage == "COLLSCAN" for stage, _ in plan), plan
        assert ("GEO_NEAR_2DSPHERE", "search_keys_location") in plan, plan
