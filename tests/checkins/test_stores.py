"""Stores: creation (merchants only), reading, bad input, and nearby search with paging."""

from __future__ import annotations

import pytest
from bson import ObjectId

from checkins.stores import get_store
from geo.distance import geodesic_m
from solomo.core.errors import NotFound
from tests.checkins.helpers import new_store, point_at
from tests.support import make_account, random_point, register, unique_name

STORE_KEYS = {"id", "name", "lat", "lng", "category", "address", "owner_id", "checkin_radius_m", "timezone",
              "checkins_count", "followers_count", "mayor", "created_at"}


async def test_merchant_creates_and_reads_store(client, services):
    merchant = await register(client, "merchant")
    lat, lng = random_point()
    store = await new_store(client, merchant, lat, lng, name="  Blue Bottle  ", category="cafe",
                            address="1 Main St", checkin_radius_m=50)
    assert set(store) == STORE_KEYS
    assert store["name"] == "Blue Bottle" and store["category"] == "cafe" and store["address"] == "1 Main St"
    assert (store["lat"], store["lng"]) == (lat, lng)
    assert store["owner_id"] == merchant.id and store["checkin_radius_m"] == 50
    assert store["checkins_count"] == 0 and store["followers_count"] == 0 and store["mayor"] is None
    doc = await services.db.stores.find_one({"_id": ObjectId(store["id"])})
    assert doc["location"] == {"type": "Point", "coordinates": [lng, lat]}
    assert doc["unique_visitors"] == 0 and doc["mayor_id"] is None
    resp = await client.get(f"/v1/stores/{store['id']}", headers=merchant.headers)
    assert resp.status_code == 200 and resp.json() == store
    assert (await get_store(services, store["id"]))["_id"] == doc["_id"]


async def test_store_defaults(client):
    merchant = await register(client, "merchant")
    store = await new_store(client, merchant)
    assert store["category"] == "other" and store["checkin_radius_m"] == 200 and store["address"] is None


@pytest.mark.parametrize("role", ["user", "moderator"])
async def test_only_merchants_create_stores(client, services, role):
    account = await make_account(services, role)
    name = unique_name("store")
    resp = await client.post("/v1/stores", json={"name": name, "lat": 1.0, "lng": 2.0}, headers=account.headers)
    assert resp.status_code == 403 and resp.json()["error"]["code"] == "forbidden"
    assert await services.db.stores.count_documents({"name": name}) == 0
    resp = await client.post("/v1/stores", json={"name": name, "lat": 1.0, "lng": 2.0})
    assert resp.status_code == 401


@pytest.mark.parametrize("patch", [
    {"name": ""}, {"name": "   "}, {"name": "x" * 81}, {"name": 5},
    {"lat": 91}, {"lat": -90.0001}, {"lng": -181}, {"lng": 180.5}, {"lat": "1.0"}, {"lng": None},
    {"checkin_radius_m": 19}, {"checkin_radius_m": 2001}, {"checkin_radius_m": 200.5}, {"checkin_radius_m": "200"},
    {"category": "casino"}, {"address": "a" * 201}, {"owner_id": "0" * 24}, {"mayor_id": None},
    {"name": {"$gt": ""}},
])
async def test_store_bad_input(client, services, patch):
    merchant = await register(client, "merchant")
    body = {"name": unique_name("s"), "lat": 10.0, "lng": 20.0, **patch}
    resp = await client.post("/v1/stores", json=body, headers=merchant.headers)
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["code"] == "invalid"
    assert await services.db.stores.count_documents({"owner_id": ObjectId(merchant.id)}) == 0


@pytest.mark.parametrize("raw", [b'{"name": "a", "lat": NaN, "lng": 1}', b'{"name": "a", "lat": 1, "lng": Infinity}',
                                 b'{"name": "a", "lng": 1}', b"[]"])
async def test_store_bad_raw_json(client, services, raw):
    merchant = await register(client, "merchant")
    resp = await client.post("/v1/stores", content=raw,
                             headers={**merchant.headers, "content-type": "application/json"})
    assert resp.status_code in (400, 422), resp.text
    assert "error" in resp.json()
    assert await services.db.stores.count_documents({"owner_id": ObjectId(merchant.id)}) == 0


async def test_unknown_and_malformed_store_ids(client, services):
    user = await register(client)
    for bad in [str(ObjectId()), "nope", "0" * 23, "g" * 24]:
        resp = await client.get(f"/v1/stores/{bad}", headers=user.headers)
        assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found"
    with pytest.raises(NotFound):
        await get_store(services, "definitely-not-an-id")
    with pytest.raises(NotFound):
        await get_store(services, ObjectId())


async def _nearby(client, account, **params):
    resp = await client.get("/v1/stores/nearby", params=params, headers=account.headers)
    assert resp.status_code == 200, resp.text
    return resp.json()


async def test_nearby_orders_filters_and_measures(client):
    merchant = await register(client, "merchant")
    lat, lng = random_point()
    plan = [(1500, "bar"), (50, "cafe"), (800, "cafe"), (300, "food"), (999, "bar")]
    made = {}
    for metres, category in plan:
        slat, slng = point_at(lat, lng, metres, bearing=metres % 360)
        made[metres] = await new_store(client, merchant, slat, slng, name=f"s{metres}", category=category)
    body = await _nearby(client, merchant, lat=lat, lng=lng)
    assert [s["name"] for s in body["items"]] == ["s50", "s300", "s800", "s999"]
    assert body["next_cursor"] is None
    for item in body["items"]:
        exact = geodesic_m(lat, lng, item["lat"], item["lng"])
        assert item["distance_m"] == pytest.approx(exact, rel=0.006, abs=0.2)
        assert set(item) == STORE_KEYS | {"distance_m"}
    distances = [s["distance_m"] for s in body["items"]]
    assert distances == sorted(distances)
    body = await _nearby(client, merchant, lat=lat, lng=lng, radius_m=2000)
    assert [s["name"] for s in body["items"]] == ["s50", "s300", "s800", "s999", "s1500"]
    body = await _nearby(client, merchant, lat=lat, lng=lng, radius_m=2000, category="bar")
    assert [s["name"] for s in body["items"]] == ["s999", "s1500"]
    body = await _nearby(client, merchant, lat=lat, lng=lng, radius_m=100)
    assert [s["name"] for s in body["items"]] == ["s50"]
    body = await _nearby(client, merchant, lat=lat, lng=lng, radius_m=2000, category="hotel")
    assert body["items"] == []


async def test_nearby_pages_cover_everything_once_with_ties(client):
    merchant = await register(client, "merchant")
    lat, lng = random_point()
    spots = [point_at(lat, lng, m, 30) for m in (100, 200, 300)]
    names = []
    for i in range(11):
        # four stores share each of the first two addresses: ties in distance straddle pages
        slat, slng = spots[0] if i < 4 else spots[1] if i < 8 else point_at(lat, lng, 400 + 10 * i, 200)
        names.append((await new_store(client, merchant, slat, slng, name=f"t{i}"))["id"])
    full = await _nearby(client, merchant, lat=lat, lng=lng, limit=100)
    assert sorted(s["id"] for s in full["items"]) == sorted(names)
    expected = [(s["distance_m"], s["id"]) for s in full["items"]]
    assert expected == sorted(expected)
    for limit in (1, 2, 3, 5):
        seen: list[str] = []
        cursor = None
        for _ in range(20):
            params = {"lat": lat, "lng": lng, "limit": limit, **({"cursor": cursor} if cursor else {})}
            body = await _nearby(client, merchant, **params)
            assert len(body["items"]) <= limit
            seen += [s["id"] for s in body["items"]]
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert seen == [i for _, i in expected], f"limit={limit}"


@pytest.mark.parametrize("params", [
    {"lat": 91, "lng": 0}, {"lat": 0, "lng": -181}, {"lat": "nan", "lng": 0}, {"lat": "inf", "lng": 0},
    {"lat": "abc", "lng": 0}, {"lng": 0}, {"lat": 0, "lng": 0, "radius_m": 50001},
    {"lat": 0, "lng": 0, "radius_m": 0}, {"lat": 0, "lng": 0, "radius_m": -5},
    {"lat": 0, "lng": 0, "limit": 0}, {"lat": 0, "lng": 0, "limit": 101}, {"lat": 0, "lng": 0, "category": "casino"},
    {"lat": 0, "lng": 0, "bogus": 1},
])
async def test_nearby_bad_query(client, params):
    user = await register(client)
    resp = await client.get("/v1/stores/nearby", params=params, headers=user.headers)
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["code"] == "invalid"


async def test_nearby_bad_cursor(client):
    user = await register(client)
    resp = await client.get("/v1/stores/nearby", params={"lat": 0, "lng": 0, "cursor": "forged"},
                            headers=user.headers)
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "invalid_cursor"
    assert (await client.get("/v1/stores/nearby", params={"lat": 0, "lng": 0})).status_code == 401
