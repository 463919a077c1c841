"""Store search's first page near a point from the tiers' GEO sets (``search.tiersets``): the same
page as MongoDB's ``$nearSphere`` reads, and never a stale one after a store changes.

Each test works at a random spot of its own: the sets hold every matching store of the database,
and a search near the spot sees only the test's stores. Runs on one Redis and on the Redis Cluster.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import pytest
from bson import ObjectId

from geo.geojson import geo_point
from search import stores as store_search
from search import tiersets
from solomo.core.keys import STORES_SEARCH_GEN
from solomo.core.metrics import STORE_SEARCH_SET_BUILDS, STORE_SEARCH_SET_PAGES
from solomo.core.searchkeys import store_keys
from tests.checkins.helpers import new_store
from tests.search.test_search_api import random_point
from tests.support import offset, record_widenings, register

NAMES = ["人民广场咖啡", "咖啡时光", "老咖啡 Square Coffee", "Kaffee Haus", "Square Books", "渝信川菜",
         "咖啡 Coffee Lab", "静安咖啡馆", "Squash Club", "南京小笼"]
"""No name holds the word ``kafei``: the session's other tests search it without a point, and these
stores would rank before every pinyin match (tests/web/test_search_browser.py)."""
QUERIES = ["咖啡", "kafei", "squ", "coffee", "rmgc", "Square Coffee"]


async def _seed(services: Any, lat: float, lng: float, n: int, rng: random.Random,
                names: list[str] = NAMES) -> list[ObjectId]:
    """``n`` stores within 2 km of the spot, some at one address (ties of distance), inserted whole
    (other tests' searches without a point render them) as the benchmark seeds them; then the change
    every new store announces."""
    docs = []
    shared = offset(lat, lng, north_m=700)
    for i in range(n):
        slat, slng = shared if i % 7 == 0 else offset(lat, lng, north_m=rng.uniform(-2000, 2000),
                                                      east_m=rng.uniform(-2000, 2000))
        name = rng.choice(names)
        docs.append({"_id": ObjectId(), "name": name, "search_keys": store_keys(name), "category": "cafe",
                     "address": f"{i} 号", "owner_id": ObjectId(), "location": geo_point(slat, slng),
                     "checkin_radius_m": 200, "checkins_count": 0, "unique_visitors": 0, "followers_count": 0,
                     "mayor_id": None, "created_at": datetime.now(UTC)})
    await services.db.stores.insert_many(docs)
    await tiersets.stores_changed(services)
    return [d["_id"] for d in docs]


def _page(result: tuple[list[dict[str, Any]], Any]) -> tuple[list[tuple[str, int]], Any]:
    rows, after = result
    return [(str(r["_id"]), round(float(r["distance_m"]) * 1000)) for r in rows], after


async def _both(services: Any, monkeypatch: pytest.MonkeyPatch, q: str, lat: float, lng: float, **kw: Any) -> tuple:
    """(page from the sets, page from MongoDB) of one search."""
    from_sets = _page(await store_search.search_stores(services, q, lat=lat, lng=lng, position=None, **kw))
    with monkeypatch.context() as m:
        m.setattr(tiersets, "MAX_RADIUS_M", -1.0)  # no search is usable: MongoDB answers
        asked = Served()
        from_mongo = _page(await store_search.search_stores(services, q, lat=lat, lng=lng, position=None, **kw))
        assert (asked.answered, asked.declined) == (0, 0), asked  # the sets were not asked
    return from_sets, from_mongo


class Served:
    """First pages asked of the sets since :meth:`mark`, answered by them or left to MongoDB: the
    ``solomo_store_search_set_pages`` counter (this process's, where the searches run)."""

    def __init__(self) -> None:
        self.mark()

    @staticmethod
    def _counts() -> tuple[float, float]:
        return (STORE_SEARCH_SET_PAGES.labels(answered="yes")._value.get(),
                STORE_SEARCH_SET_PAGES.labels(answered="no")._value.get())

    def mark(self) -> None:
        self._base = self._counts()

    @property
    def answered(self) -> int:
        return int(self._counts()[0] - self._base[0])

    @property
    def declined(self) -> int:
        return int(self._counts()[1] - self._base[1])

    def __repr__(self) -> str:
        return f"Served(answered={self.answered}, declined={self.declined})"


@pytest.fixture
def served() -> Served:
    return Served()


def builds() -> int:
    """Tier sets built so far in this process (``solomo_store_search_set_builds``)."""
    return int(STORE_SEARCH_SET_BUILDS._value.get())


async def test_first_pages_equal_mongodbs(services: Any, monkeypatch: pytest.MonkeyPatch, served: Served) -> None:
    circles = record_widenings(monkeypatch)  # per widening: whether the circle grew (else the count)
    rng = random.Random(7)
    lat, lng = random_point()
    await _seed(services, lat, lng, 160, rng)
    for i in range(24):
        plat, plng = offset(lat, lng, north_m=rng.uniform(-1500, 1500), east_m=rng.uniform(-1500, 1500))
        q = QUERIES[i % len(QUERIES)]
        for limit, radius in ((20, 3000.0), (5, 3000.0), (1, 800.0), (20, 400.0)):
            from_sets, from_mongo = await _both(services, monkeypatch, q, plat, plng, radius_m=radius, limit=limit)
            assert from_sets == from_mongo, (q, limit, radius)
    # the sets answered (ties at a page's end do not)
    assert served.answered >= (served.answered + served.declined) * 0.8, served
    assert any(circles), circles  # a first circle from the last reach (geo.reach) was too small, and widened
    # the next page from MongoDB goes on where the sets' page ended
    first = await store_search.search_stores(services, "咖啡", lat=lat, lng=lng, radius_m=3000, position=None, limit=7)
    second = await store_search.search_stores(services, "咖啡", lat=lat, lng=lng, radius_m=3000,
                                              position=first[1], limit=7)
    with monkeypatch.context() as m:
        m.setattr(tiersets, "MAX_RADIUS_M", -1.0)  # no search is usable: MongoDB answers
        whole = await store_search.search_stores(services, "咖啡", lat=lat, lng=lng, radius_m=3000, position=None,
                                                 limit=14)
    assert _page((first[0] + second[0], None))[0] == _page((whole[0], None))[0]


async def test_every_store_change_is_seen_at_once(client: Any, services: Any, served: Served) -> None:
    merchant = await register(client, "merchant")
    user = await register(client)
    lat, lng = random_point()
    near = {"lat": lat, "lng": lng, "radius_m": 2000}

    async def found(q: str) -> list[str]:
        resp = await client.get("/v1/search/stores", params={"q": q, **near}, headers=user.headers)
        assert resp.status_code == 200, resp.text
        return [s["name"] for s in resp.json()["items"]]

    far = await new_store(client, merchant, *offset(lat, lng, north_m=900), name="咖啡时光", category="cafe")
    assert await found("咖啡") == ["咖啡时光"]
    made = await new_store(client, merchant, *offset(lat, lng, north_m=100), name="老咖啡")  # a new store
    assert await found("咖啡") == ["咖啡时光", "老咖啡"]  # the name prefix first, then by distance

    async def patch(store: dict[str, Any], **change: Any) -> None:
        resp = await client.patch(f"/v1/stores/{store['id']}", json=change, headers=merchant.headers)
        assert resp.status_code == 200, resp.text

    await patch(made, name="渝信川菜")  # renamed: gone from one query, found by another
    assert await found("咖啡") == ["咖啡时光"]
    assert await found("chuancai") == ["渝信川菜"]
    await patch(far, lat=lat + 0.5)  # moved 55 km away: out of the circle
    assert await found("咖啡") == []
    await patch(far, lat=lat, lng=lng)  # and back, onto the point itself
    assert await found("kafei") == ["咖啡时光"]
    resp = await client.get("/v1/search/stores", params={"q": "咖啡", "category": "cafe", **near},
                            headers=user.headers)
    assert [s["name"] for s in resp.json()["items"]] == ["咖啡时光"]
    await patch(far, category="bar")  # out of the category's results
    resp = await client.get("/v1/search/stores", params={"q": "咖啡", "category": "cafe", **near},
                            headers=user.headers)
    assert resp.json()["items"] == []
    assert served.answered and not served.declined, served


async def test_a_set_of_an_older_generation_is_built_again(services: Any) -> None:
    lat, lng = random_point()
    [store_id] = await _seed(services, lat, lng, 1, random.Random(1), names=["老咖啡"])
    q = "咖啡"

    async def ids() -> list[str]:
        rows, _ = await store_search.search_stores(services, q, lat=lat, lng=lng, radius_m=3000, position=None,
                                                   limit=5)
        return [str(r["_id"]) for r in rows]

    assert await ids() == [str(store_id)]
    # moved behind the sets' back: a set built before it still holds the old place ...
    await services.db.stores.update_one({"_id": store_id}, {"$set": {"location": geo_point(lat + 1, lng)}})
    assert await ids() == [str(store_id)]
    await tiersets.stores_changed(services)  # ... until the change is announced: then built again
    assert await ids() == []


async def test_a_tier_over_the_cap_and_a_refused_build_are_read_from_mongodb(
        services: Any, monkeypatch: pytest.MonkeyPatch, served: Served) -> None:
    rng = random.Random(3)
    lat, lng = random_point()
    await _seed(services, lat, lng, 40, rng)
    monkeypatch.setattr(tiersets, "MAX_MEMBERS", 3)
    await tiersets.stores_changed(services)
    from_sets, from_mongo = await _both(services, monkeypatch, "咖啡", lat, lng, radius_m=3000, limit=20)
    assert from_sets == from_mongo and from_sets[0]
    assert (served.answered, served.declined) == (0, 1), served
    filters, _ = await store_search.plan(services, "咖啡")
    key = tiersets.set_key(next(f for f in filters if f is not None))
    assert await services.redis.zscore(key, tiersets.TOO_MANY) == 0  # the cap is remembered: no rebuild
    monkeypatch.setattr(tiersets, "MAX_MEMBERS", 8000)

    # one build allowed a minute: a query needing more is answered by MongoDB, until the limit is lifted
    monkeypatch.setitem(services.settings.rate_limits, "search_set_build", "1/minute")
    who = ObjectId()
    await tiersets.stores_changed(services)
    served.mark()
    for q in ("squ", "kafei"):
        rows = _page(await store_search.search_stores(services, q, lat=lat, lng=lng, radius_m=3000, position=None,
                                                      limit=20, principal=who))
        with monkeypatch.context() as m:
            m.setattr(tiersets, "MAX_RADIUS_M", -1.0)  # no search is usable: MongoDB answers
            assert rows == _page(await store_search.search_stores(services, q, lat=lat, lng=lng, radius_m=3000,
                                                                  position=None, limit=20))
    assert (served.answered, served.declined) == (0, 2), served
    monkeypatch.setitem(services.settings.rate_limits, "search_set_build", "")
    served.mark()
    await store_search.search_stores(services, "squ", lat=lat, lng=lng, radius_m=3000, position=None, limit=20,
                                     principal=who)
    assert (served.answered, served.declined) == (1, 0), served


async def test_concurrent_searches_share_one_build(services: Any, monkeypatch: pytest.MonkeyPatch,
                                                   served: Served) -> None:
    import asyncio

    lat, lng = random_point()
    await _seed(services, lat, lng, 30, random.Random(5))
    before = builds()
    pages = await asyncio.gather(*(store_search.search_stores(services, "咖啡", lat=lat, lng=lng, radius_m=3000,
                                                              position=None, limit=20, principal=ObjectId())
                                   for _ in range(24)))
    assert all(_page(p) == _page(pages[0]) for p in pages) and pages[0][0]
    # the sets built now are those labelled with the current generation: each was built once
    filters, _ = await store_search.plan(services, "咖啡")
    generation = int(await services.redis.get(STORES_SEARCH_GEN))
    labels = [await services.redis.zscore(tiersets.set_key(f), tiersets.LABEL) for f in filters if f is not None]
    built = sum(label == generation for label in labels)
    assert built and builds() - before == built, (labels, generation, builds() - before)
    assert (served.answered, served.declined) == (24, 0), served
