"""Nearby stores from the Redis GEO index: the same pages as MongoDB's ``$geoNear``, in the same
``(distance, id)`` order, with ties, small pages (the ``COUNT`` doubling), categories, radii, a
member whose store does not exist, and a wiped index (reads fall back to MongoDB, then rebuild)."""

from __future__ import annotations

import random

from bson import ObjectId

from checkins import geoindex
from checkins.nearby import _from_index, _from_mongo, nearby_stores
from checkins.stores import create_store
from solomo.core.keys import STORES_GEO_READY, stores_geo
from solomo.core.pagination import Position
from tests.checkins.helpers import point_at
from tests.support import make_account, random_point, record_widenings


async def _walk(fn, services, lat, lng, *, limit, **kw) -> list[tuple[float, str]]:
    """Every page of ``fn`` (a read path), concatenated: [(distance, id)]."""
    seen: list[tuple[float, str]] = []
    after: Position | None = None
    for _ in range(200):
        docs, after, _ = await fn(services, lat, lng, limit=limit, after=after, **kw)
        assert len(docs) <= limit
        seen += [(d["distance_m"], str(d["_id"])) for d in docs]
        if after is None:
            return seen
    raise AssertionError("paging did not end")


async def _stores_around(services, lat, lng, n: int, rng: random.Random) -> list[dict]:
    merchants = [await make_account(services, "merchant") for _ in range(-(-n // 20))]
    spots = [point_at(lat, lng, rng.uniform(0, 1500), rng.uniform(0, 360)) for _ in range(n // 3)]
    made = []
    for i in range(n):
        # a third share a spot with another store (equal distances straddle page boundaries)
        slat, slng = spots[i % len(spots)] if i % 3 == 0 else point_at(lat, lng, rng.uniform(0, 1500),
                                                                          rng.uniform(0, 360))
        made.append(await create_store(services, ObjectId(merchants[i // 20].id), name=f"n{i}", lat=slat, lng=slng,
                                       category=("cafe", "bar")[i % 2]))
    return made


async def test_index_pages_equal_mongo_pages(services, monkeypatch):
    circles = record_widenings(monkeypatch)  # per widening: whether the circle grew (else the count)
    rng = random.Random(7)
    lat, lng = random_point()
    await _stores_around(services, lat, lng, 60, rng)
    await geoindex.rebuild(services)
    assert await geoindex.search_if_usable(services, None, lat, lng, 10.0, 1) is not None
    for limit in (1, 3, 7, 20, 100):
        for radius, category in ((1000.0, None), (1500.0, "cafe"), (300.0, "bar"), (2000.0, None)):
            mongo = await _walk(_from_mongo, services, lat, lng, limit=limit, radius_m=radius, category=category)
            index = await _walk(_from_index, services, lat, lng, limit=limit, radius_m=radius, category=category)
            assert [i for _, i in index] == [i for _, i in mongo], (limit, radius, category)
            assert [d for d, _ in index] == sorted(d for d, _ in index)
            for (di, _), (dm, _) in zip(index, mongo, strict=True):
                assert abs(di - dm) < 1e-6  # the same sphere as MongoDB's
            assert all(d <= radius for d, _ in index)
    # the first circle follows the last page's reach (geo.reach): some pages had to widen it
    assert any(circles) and not all(circles), circles


async def test_index_drops_members_without_a_store(services):
    merchant = await make_account(services, "merchant")
    lat, lng = random_point()
    real = [await create_store(services, ObjectId(merchant.id), name=f"r{i}", lat=a, lng=b)
            for i, (a, b) in enumerate(point_at(lat, lng, 100 * (i + 1), 45) for i in range(5))]
    ghost_lat, ghost_lng = point_at(lat, lng, 150, 45)
    ghost = {"_id": ObjectId(), "category": "other",
             "location": {"type": "Point", "coordinates": [ghost_lng, ghost_lat]}}
    await geoindex.add(services, ghost)  # a create that crashed between the index and the insert
    await geoindex.rebuild(services)
    for limit in (1, 2, 5):
        got = await _walk(_from_index, services, lat, lng, limit=limit, radius_m=1000.0, category=None)
        assert [i for _, i in got] == [str(s["_id"]) for s in real]
    await geoindex.discard(services, ghost)


async def test_refused_create_leaves_no_member(services):
    merchant = await make_account(services, "merchant")
    lat, lng = random_point()
    cap = services.settings.max_stores_per_merchant
    for i in range(cap):
        await create_store(services, ObjectId(merchant.id), name=f"c{i}", lat=lat, lng=lng)
    try:
        await create_store(services, ObjectId(merchant.id), name="one too many", lat=lat, lng=lng)
    except Exception as exc:  # the cap: 429 rate_limited
        assert getattr(exc, "code", None) == "rate_limited"
    members = await services.redis.execute_command("GEOSEARCH", stores_geo(None), "FROMLONLAT", lng, lat,
                                                   "BYRADIUS", 1, "m", "ASC")
    assert len(members) == cap


async def test_wiped_index_falls_back_then_rebuilds(services):
    from tests.support import wait_until

    merchant = await make_account(services, "merchant")
    lat, lng = random_point()
    made = [await create_store(services, ObjectId(merchant.id), name=f"w{i}", lat=a, lng=b)
            for i, (a, b) in enumerate(point_at(lat, lng, 50 * (i + 1), 90) for i in range(4))]
    await services.redis.delete(STORES_GEO_READY, stores_geo(None), stores_geo("other"))  # Redis lost the index
    docs = (await nearby_stores(services, lat, lng, radius_m=1000.0, limit=10)).docs  # served by MongoDB meanwhile
    assert [d["_id"] for d in docs] == [str(s["_id"]) for s in made]  # views: ids as text

    async def rebuilt() -> bool:
        return await services.redis.exists(STORES_GEO_READY) == 1

    assert await wait_until(rebuilt, timeout=30)
    docs, _, _ = await _from_index(services, lat, lng, radius_m=1000.0, category=None, limit=10, after=None)
    assert [d["_id"] for d in docs] == [str(s["_id"]) for s in made]  # views: ids as text


async def test_index_page_brings_mayors_and_hides_deleted_ones(client, services):
    from checkins.checkin import check_in
    from tests.checkins.helpers import principal

    merchant = await make_account(services, "merchant")
    kept, gone = await make_account(services, "user"), await make_account(services, "user")
    lat, lng = random_point()
    stores = [await create_store(services, ObjectId(merchant.id), name=f"m{i}", lat=a, lng=b)
              for i, (a, b) in enumerate(point_at(lat, lng, 100 * (i + 1), 0) for i in range(3))]
    await check_in(services, principal(kept), stores[0]["_id"], *point_at(lat, lng, 100, 0))
    await check_in(services, principal(gone), stores[1]["_id"], *point_at(lat, lng, 200, 0))
    await services.accounts.delete_user(ObjectId(gone.id))
    await geoindex.rebuild(services)
    resp = await client.get("/v1/stores/nearby", params={"lat": lat, "lng": lng}, headers=merchant.headers)
    assert resp.status_code == 200, resp.text
    items = resp.json()["items"]
    assert [s["name"] for s in items] == ["m0", "m1", "m2"]
    assert items[0]["mayor"] == {"id": kept.id, "username": kept.username, "display_name": kept.username}
    assert items[1]["mayor"] is None and items[2]["mayor"] is None


async def test_stores_near_a_pole_are_found_without_the_index(services):
    """Redis GEO stops at ±85.05°: a store past it is created (contract: lat in ±90), left out of the
    index, and found by a nearby read whose circle reaches past the band (MongoDB answers that one);
    the index rebuild skips it instead of failing its whole batch."""
    merchant = await make_account(services, "merchant")
    lng = random.uniform(-179, 179)
    polar = await create_store(services, ObjectId(merchant.id), name="pole station", lat=-85.2, lng=lng)
    near_band = await create_store(services, ObjectId(merchant.id), name="band edge", lat=-85.0, lng=lng)
    assert not geoindex.covers(-85.1, 1000.0) and geoindex.covers(-84.0, 1000.0)
    docs = (await nearby_stores(services, -85.1, lng, radius_m=20_000.0, limit=10)).docs
    assert {d["_id"] for d in docs} == {str(polar["_id"]), str(near_band["_id"])}
    assert await geoindex.rebuild(services) >= 2
    members = {name.decode() if isinstance(name, bytes) else name
               for name in await services.redis.zrange(stores_geo(None), 0, -1)}
    assert geoindex.member(near_band) in members and geoindex.member(polar) not in members
