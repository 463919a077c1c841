"""PATCH /v1/stores/{id} (issue 16): the owner edits a store; nearby (Redis GEO index and MongoDB),
the store's offers (nearby and on arrival) and post summaries follow at once."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from bson import ObjectId

from checkins.nearby import _from_mongo
from offers import live
from solomo.core.keys import stores_geo
from tests.checkins.helpers import new_store
from tests.offers.helpers import create_offer, follow_store
from tests.realtime.wsclient import open_ws, recv_type
from tests.support import offset, random_point, register, wait_until


async def _nearby_ids(client, acct, lat, lng, **params) -> list[str]:
    resp = await client.get("/v1/stores/nearby", params={"lat": lat, "lng": lng, "radius_m": 300, **params},
                            headers=acct.headers)
    assert resp.status_code == 200, resp.text
    return [s["id"] for s in resp.json()["items"]]


async def test_moved_store_is_nearby_at_once_and_its_offers_follow(client, services):
    merchant = await register(client, "merchant")
    lat, lng = random_point()
    store = await new_store(client, merchant, lat, lng, name="Old Spot", category="cafe")
    offer = await create_offer(client, merchant, store["id"], radius_m=200)
    new_lat, new_lng = offset(lat, lng, north_m=3000)
    reader = await register(client)
    assert store["id"] in await _nearby_ids(client, reader, lat, lng)

    resp = await client.patch(f"/v1/stores/{store['id']}", json={"lat": new_lat, "lng": new_lng, "category": "bar",
                                                                 "name": "New Spot", "address": "2 Side St"},
                              headers=merchant.headers)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["lat"], body["lng"], body["category"], body["name"], body["address"]) == (
        new_lat, new_lng, "bar", "New Spot", "2 Side St")
    # nearby: the Redis index path and the MongoDB path both agree, old place empty, category moved
    assert store["id"] in await _nearby_ids(client, reader, new_lat, new_lng)
    assert store["id"] in await _nearby_ids(client, reader, new_lat, new_lng, category="bar")
    assert store["id"] not in await _nearby_ids(client, reader, new_lat, new_lng, category="cafe")
    assert store["id"] not in await _nearby_ids(client, reader, lat, lng)
    docs = (await _from_mongo(services, new_lat, new_lng, radius_m=300, category=None, limit=50, after=None)).docs
    assert store["id"] in [d["_id"] for d in docs]
    members = await services.redis.zrange(stores_geo("cafe"), 0, -1)
    assert not [m for m in members if m.startswith(store["id"])]
    # the offer: nearby listing and the live index moved with the store
    near_new = await client.get("/v1/offers/nearby", params={"lat": new_lat, "lng": new_lng}, headers=reader.headers)
    assert offer["id"] in [o["id"] for o in near_new.json()["items"]]
    near_old = await client.get("/v1/offers/nearby", params={"lat": lat, "lng": lng}, headers=reader.headers)
    assert offer["id"] not in [o["id"] for o in near_old.json()["items"]]
    assert offer["id"] in [oid for oid, _ in await live.covering(services.redis, new_lat, new_lng)]
    assert offer["id"] not in [oid for oid, _ in await live.covering(services.redis, lat, lng)]
    got = await client.get(f"/v1/offers/{offer['id']}", headers=reader.headers)
    assert got.json()["store"] == {"id": store["id"], "name": "New Spot", "lat": new_lat, "lng": new_lng}


async def test_follower_arriving_at_the_new_place_gets_the_offer(live_server, client, services):
    merchant = await register(client, "merchant")
    lat, lng = random_point()
    store = await new_store(client, merchant, lat, lng)
    fan = await register(client)
    await follow_store(client, fan, store["id"])
    offer = await create_offer(client, merchant, store["id"], radius_m=100)
    new_lat, new_lng = offset(lat, lng, east_m=2000)
    resp = await client.patch(f"/v1/stores/{store['id']}", json={"lat": new_lat, "lng": new_lng},
                              headers=merchant.headers)
    assert resp.status_code == 200, resp.text
    ws = await open_ws(live_server, fan.token)
    await ws.send(json.dumps({"type": "location", "lat": new_lat, "lng": new_lng}))
    msg = await recv_type(ws, "offer", timeout=5)
    assert msg["data"]["id"] == offer["id"] and msg["data"]["store"]["lat"] == new_lat
    await ws.close()


async def test_rename_shows_in_posts_at_once(client, services):
    merchant = await register(client, "merchant")
    store = await new_store(client, merchant, name="Before")
    post = await client.post("/v1/posts", json={"text": "hello", "store_id": store["id"]}, headers=merchant.headers)
    assert post.status_code == 201, post.text
    first = await client.get(f"/v1/posts/{post.json()['id']}", headers=merchant.headers)
    assert first.json()["store"]["name"] == "Before"  # now in this process's summary cache
    resp = await client.patch(f"/v1/stores/{store['id']}", json={"name": "After"}, headers=merchant.headers)
    assert resp.status_code == 200, resp.text
    again = await client.get(f"/v1/posts/{post.json()['id']}", headers=merchant.headers)
    assert again.json()["store"]["name"] == "After"


async def test_store_edit_rules_and_bad_input(client, services):
    merchant = await register(client, "merchant")
    store = await new_store(client, merchant, name="Kept", address="1 Main St")
    before = await services.db.stores.find_one({"_id": ObjectId(store["id"])})
    other = await register(client, "merchant")
    user = await register(client)
    for who in (other, user):
        resp = await client.patch(f"/v1/stores/{store['id']}", json={"name": "Mine"}, headers=who.headers)
        assert resp.status_code == 403 and resp.json()["error"]["code"] == "forbidden"
    assert (await client.patch(f"/v1/stores/{store['id']}", json={"name": "x"})).status_code == 401
    resp = await client.patch("/v1/stores/" + "0" * 24, json={"name": "x"}, headers=merchant.headers)
    assert resp.status_code == 404
    for bad in ({"name": ""}, {"name": "x" * 81}, {"name": None}, {"lat": 91}, {"lng": -181}, {"lat": None},
                {"lat": "1"}, {"category": "spaceship"}, {"checkin_radius_m": 10}, {"checkin_radius_m": 2001},
                {"address": "x" * 201}, {"owner_id": other.id}, {"checkins_count": 5}):
        resp = await client.patch(f"/v1/stores/{store['id']}", json=bad, headers=merchant.headers)
        assert resp.status_code == 422, (bad, resp.text)
    for bad in ({"name": "blockword cafe"}, {"address": "reviewword road"}, {"name": "   "}):
        resp = await client.patch(f"/v1/stores/{store['id']}", json=bad, headers=merchant.headers)
        assert resp.status_code == 422, (bad, resp.text)
    resp = await client.patch(f"/v1/stores/{store['id']}", json={"name": "blockword"}, headers=merchant.headers)
    assert resp.json()["error"]["code"] == "content_rejected"
    after = await services.db.stores.find_one({"_id": ObjectId(store["id"])})
    assert after == before  # nothing was written by any refused edit
    # empty patch: the store as it is; address null clears it
    resp = await client.patch(f"/v1/stores/{store['id']}", json={}, headers=merchant.headers)
    assert resp.status_code == 200 and resp.json()["name"] == "Kept"
    resp = await client.patch(f"/v1/stores/{store['id']}", json={"address": None, "checkin_radius_m": 20},
                              headers=merchant.headers)
    assert resp.status_code == 200 and resp.json()["address"] is None and resp.json()["checkin_radius_m"] == 20


@pytest.mark.parametrize("raw", [b"[]", b'{"name": 1}', b"nope"])
async def test_store_edit_bad_bodies(client, raw):
    merchant = await register(client, "merchant")
    store = await new_store(client, merchant)
    resp = await client.patch(f"/v1/stores/{store['id']}", content=raw, headers={
        **merchant.headers, "content-type": "application/json"})
    assert resp.status_code in (400, 422), resp.text


async def _store_with_a_local_post(client: Any) -> tuple[Any, dict[str, Any], str, Callable[[float, float],
                                                                                       Awaitable[list[str]]]]:
    """A merchant's store with one post, already in the local feed at the store (fanned out, cells
    built), and a reader's local page near any point: (merchant, store, post id, local ids)."""
    merchant = await register(client, "merchant")
    lat, lng = random_point()
    store = await new_store(client, merchant, lat, lng)
    post = await client.post("/v1/posts", json={"text": "at the shop", "store_id": store["id"]},
                             headers=merchant.headers)
    assert post.status_code == 201, post.text
    post_id = post.json()["id"]
    reader = await register(client)

    async def local_ids(at_lat: float, at_lng: float) -> list[str]:
        resp = await client.get("/v1/feed/local", params={"lat": at_lat, "lng": at_lng, "radius_m": 300},
                                headers=reader.headers)
        assert resp.status_code == 200, resp.text
        return [p["id"] for p in resp.json()["items"]]

    async def in_old_place() -> bool:  # read until the fan-out wrote it (and the cells exist)
        return post_id in await local_ids(lat, lng)

    await wait_until(in_old_place)
    return merchant, store, post_id, local_ids


async def test_posts_at_a_moved_store_move_in_local_feeds(client, services, celery_worker):
    merchant, store, post_id, local_ids = await _store_with_a_local_post(client)
    lat, lng = store["lat"], store["lng"]
    new_lat, new_lng = offset(lat, lng, north_m=-4000)
    assert post_id not in await local_ids(new_lat, new_lng)  # builds the new place's cells, without it
    resp = await client.patch(f"/v1/stores/{store['id']}", json={"lat": new_lat, "lng": new_lng},
                              headers=merchant.headers)
    assert resp.status_code == 200, resp.text
    assert post_id in await local_ids(new_lat, new_lng)
    assert post_id not in await local_ids(lat, lng)
    got = (await client.get(f"/v1/posts/{post_id}", headers=merchant.headers)).json()
    assert (got["lat"], got["lng"]) == (new_lat, new_lng)


async def test_moves_are_limited_per_store(client, services):
    from solomo.core.ratelimit import limits_for

    limit = min(item.amount for item in limits_for(services, "store_move"))
    merchant = await register(client, "merchant")
    lat, lng = random_point()
    store = await new_store(client, merchant, lat, lng)
    for i in range(limit):
        resp = await client.patch(f"/v1/stores/{store['id']}", json={"lat": lat + (i + 1) * 1e-4},
                                  headers=merchant.headers)
        assert resp.status_code == 200, resp.text
    refused = await client.patch(f"/v1/stores/{store['id']}", json={"lat": lat - 1e-3, "name": "Elsewhere"},
                                 headers=merchant.headers)
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limited"
    doc = await services.db.stores.find_one({"_id": ObjectId(store["id"])})
    assert doc["location"]["coordinates"][1] == lat + limit * 1e-4 and doc["name"] != "Elsewhere"
    # other edits are not moves: still allowed
    resp = await client.patch(f"/v1/stores/{store['id']}", json={"name": "Renamed"}, headers=merchant.headers)
    assert resp.status_code == 200 and resp.json()["name"] == "Renamed"


async def test_store_edits_are_limited_per_caller(client, services, monkeypatch):
    """Every edit reindexes the store for search, a rename makes every process drop its names and a
    time zone change rebuilds the store's rollups in the request: bounded per caller, like any
    write (a refused edit changes nothing)."""
    monkeypatch.setitem(services.settings.rate_limits, "store_edit", "3/minute")
    merchant, other = await register(client, "merchant"), await register(client, "merchant")
    store, theirs = await new_store(client, merchant), await new_store(client, other)
    url = f"/v1/stores/{store['id']}"
    for i in range(3):
        resp = await client.patch(url, json={"name": f"Name {i}"}, headers=merchant.headers)
        assert resp.status_code == 200, resp.text
    refused = await client.patch(url, json={"name": "Too many", "timezone": "Europe/London"}, headers=merchant.headers)
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    doc = await services.db.stores.find_one({"_id": ObjectId(store["id"])})
    assert (doc["name"], doc["timezone"]) == ("Name 2", "Asia/Shanghai")
    resp = await client.patch(f"/v1/stores/{theirs['id']}", json={"name": "Fine"}, headers=other.headers)
    assert resp.status_code == 200, resp.text  # another caller's budget is its own


async def test_a_move_cut_short_in_the_cells_is_finished_by_saving_again(client, services, celery_worker,
                                                                          monkeypatch):
    """Redis fails while the store's posts move in the local-feed cells: saving the same position
    again moves them there, since MongoDB still holds them at the old point."""
    from feed import localcells
    from solomo.core.errors import Unavailable

    merchant, store, post_id, local_ids = await _store_with_a_local_post(client)
    lat, lng = store["lat"], store["lng"]
    new_lat, new_lng = offset(lat, lng, north_m=-4000)
    assert post_id not in await local_ids(new_lat, new_lng)  # the new place's cells exist, without it

    async def redis_down(*args: Any, **kwargs: Any) -> int:
        raise Unavailable("injected: redis is down")

    move = {"lat": new_lat, "lng": new_lng}
    with monkeypatch.context() as patched:
        patched.setattr(localcells, "add_post", redis_down)
        resp = await client.patch(f"/v1/stores/{store['id']}", json=move, headers=merchant.headers)
        assert resp.status_code == 503, resp.text
    resp = await client.patch(f"/v1/stores/{store['id']}", json=move, headers=merchant.headers)
    assert resp.status_code == 200, resp.text
    assert post_id in await local_ids(new_lat, new_lng)
    assert post_id not in await local_ids(lat, lng)
