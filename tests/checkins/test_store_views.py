"""The store cache behind nearby pages (checkins/storeviews.py): a store on a nearby page is the store
MongoDB has (``GET /v1/stores/{id}``), and no change leaves a stale count, name or mayor behind."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from bson import ObjectId

from checkins import geoindex, storeviews
from checkins.mayor import refresh_mayor
from profiles import erasure
from solomo.core.keys import store_gen_key, store_view_key
from tests.checkins.helpers import backdate_checkins, checkin, days_ago, new_store
from tests.support import Account, random_point, register, wait_until


async def _listed(client: Any, who: Account, store: dict[str, Any]) -> dict[str, Any]:
    """The store as a nearby page shows it (without its distance), read through the Redis index."""
    resp = await client.get("/v1/stores/nearby", params={"lat": store["lat"], "lng": store["lng"], "radius_m": 30},
                            headers=who.headers)
    assert resp.status_code == 200, resp.text
    [item] = [i for i in resp.json()["items"] if i["id"] == store["id"]]
    item.pop("distance_m")
    return item


async def _truth(client: Any, who: Account, store: dict[str, Any]) -> dict[str, Any]:
    resp = await client.get(f"/v1/stores/{store['id']}", headers=who.headers)
    assert resp.status_code == 200, resp.text
    return resp.json()


async def _same(client: Any, services: Any, who: Account, store: dict[str, Any]) -> dict[str, Any]:
    """Reads the page twice (the second read is served from the cache) and checks both against MongoDB."""
    first = await _listed(client, who, store)
    assert await services.redis.exists(store_view_key(store["id"]))  # the page filled the cache
    again = await _listed(client, who, store)
    truth = await _truth(client, who, store)
    assert first == again == truth
    return truth


async def test_every_change_to_a_listed_store_shows_on_the_next_nearby_page(client, services):
    merchant, regular, fan = await register(client, "merchant"), await register(client), await register(client)
    lat, lng = random_point()
    store = await new_store(client, merchant, lat, lng, name="Old Name", checkin_radius_m=100)
    await geoindex.rebuild(services)
    assert (await _same(client, services, fan, store))["checkins_count"] == 0

    assert (await checkin(client, regular, store)).status_code == 201
    shown = await _same(client, services, fan, store)
    assert shown["checkins_count"] == 1 and shown["mayor"]["id"] == regular.id

    assert (await client.post(f"/v1/stores/{store['id']}/follow", headers=fan.headers)).status_code == 204
    assert (await _same(client, services, fan, store))["followers_count"] == 1
    assert (await client.delete(f"/v1/stores/{store['id']}/follow", headers=fan.headers)).status_code == 204
    assert (await _same(client, services, fan, store))["followers_count"] == 0

    resp = await client.patch(f"/v1/stores/{store['id']}", headers=merchant.headers,
                              json={"name": "New Name", "address": "1 Nanjing Rd", "category": "bar"})
    assert resp.status_code == 200, resp.text
    shown = await _same(client, services, fan, store)
    assert (shown["name"], shown["address"], shown["category"]) == ("New Name", "1 Nanjing Rd", "bar")

    # the hourly recount: the mayor's check-ins aged out of the window, the seat is empty
    await backdate_checkins(services, regular, timedelta(days=70))
    assert await refresh_mayor(services, ObjectId(store["id"]), days_ago(0)) is None
    assert (await _same(client, services, fan, store))["mayor"] is None


async def test_an_erased_follower_leaves_the_listed_count(client, services):
    merchant, fan = await register(client, "merchant"), await register(client)
    lat, lng = random_point()
    store = await new_store(client, merchant, lat, lng)
    await geoindex.rebuild(services)
    assert (await client.post(f"/v1/stores/{store['id']}/follow", headers=fan.headers)).status_code == 204
    assert (await _same(client, services, merchant, store))["followers_count"] == 1
    resp = await client.request("DELETE", "/v1/me", json={"password": "password123"}, headers=fan.headers)
    assert resp.status_code == 204, resp.text

    async def uncounted() -> bool:
        return (await _listed(client, merchant, store))["followers_count"] == 0

    await wait_until(uncounted, timeout=20)
    assert (await _same(client, services, merchant, store))["followers_count"] == 0


async def test_a_fill_that_raced_a_change_is_not_stored(client, services):
    """A page read the store from MongoDB before a check-in and stores its (stale) view after it."""
    merchant = await register(client, "merchant")
    store = await new_store(client, merchant)
    sid = ObjectId(store["id"])
    seen = await storeviews.VIEWS.generations(services, [sid])  # read before the page's MongoDB read
    await storeviews.invalidate(services, [sid])  # the check-in's invalidation, after its commit
    assert sid in await storeviews.VIEWS.fill(services, [sid], seen)  # the page still gets its answer…
    assert not await services.redis.exists(store_view_key(sid))  # …but does not cache it
    await storeviews.VIEWS.fill(services, [sid])  # without a change in between it is stored
    assert await services.redis.exists(store_view_key(sid))
    missing = ObjectId()
    assert await storeviews.load(services, [missing]) == {}
    assert not await services.redis.exists(store_view_key(missing))  # a missing store is not cached


async def test_a_generation_is_never_repeated_after_its_key_expired(client, services):
    """A reader read the generation just before its key expired; a change then invalidates: the
    new generation must differ from what the reader read, or its stale fill would be stored."""
    merchant = await register(client, "merchant")
    sid = ObjectId((await new_store(client, merchant))["id"])
    await storeviews.invalidate(services, [sid])  # an earlier change: the generation exists
    seen = await storeviews.VIEWS.generations(services, [sid])
    await services.redis.delete(store_gen_key(sid))  # …and expires
    await storeviews.invalidate(services, [sid])  # a change after the reader's MongoDB read
    await storeviews.VIEWS.fill(services, [sid], seen)
    assert not await services.redis.exists(store_view_key(sid))


async def test_a_mayors_new_name_or_erasure_shows_on_the_next_nearby_page(client, services):
    """Mayors' names on nearby pages come from the process's summary cache: a rename or an erasure
    of the mayor is on the very next page (the shared generation they move is read with the views)."""
    merchant, regular, fan = await register(client, "merchant"), await register(client), await register(client)
    lat, lng = random_point()
    store = await new_store(client, merchant, lat, lng, checkin_radius_m=100)
    await geoindex.rebuild(services)
    assert (await checkin(client, regular, store)).status_code == 201
    assert (await _same(client, services, fan, store))["mayor"]["display_name"] == regular.username
    assert (await client.patch("/v1/me", json={"display_name": "Mayor Li"}, headers=regular.headers)).status_code == 200
    assert (await _same(client, services, fan, store))["mayor"]["display_name"] == "Mayor Li"
    # erasure's first step alone: the account is deleted, its seat not yet cleared (a later step does
    # that): the cached summary must go at once, by the generation the tombstone moves
    await erasure.STEPS[0](services, ObjectId(regular.id))
    assert (await _same(client, services, fan, store))["mayor"] is None


def _store_doc(name: str, address: str | None, mayor: ObjectId | None) -> dict[str, Any]:
    return {"_id": ObjectId(), "name": name, "address": address, "category": "cafe", "owner_id": ObjectId(),
            "location": {"type": "Point", "coordinates": [121.4737021, 31.2303904]}, "checkin_radius_m": 150,
            "timezone": "Asia/Shanghai", "checkins_count": 7, "followers_count": 2, "mayor_id": mayor,
            "created_at": datetime(2026, 12, 5, 22, 0, 0, 123000, tzinfo=UTC)}


AWKWARD_NAMES = [("Plain", None), ('Quote " and \\ back', "1 Main St"), ("咖啡馆 ☕ 🎉", "上海\n第二行"),
                 (',"public":{"x":1}', ',"public":')]


def test_a_stores_json_is_the_text_of_its_rendered_dict():
    mayor = {"id": str(ObjectId()), "username": "may", "display_name": "梅 \"M\""}
    for name, address in AWKWARD_NAMES:
        for summary in (None, mayor):
            view = storeviews.to_view(_store_doc(name, address, ObjectId(summary["id"]) if summary else None))
            for distance in (None, 0.0, 12.349, 999.96, 1234.5):
                expected = {**storeviews.render(view, summary),
                            "distance_m": None if distance is None else round(distance, 1)}
                made = storeviews.store_json(view, orjson.dumps(summary).decode(), distance)
                assert orjson.dumps(made) == orjson.dumps(expected)
                assert orjson.loads(orjson.dumps([made])) == [expected]


def test_a_stored_view_reads_back_the_same_in_either_layout():
    for name, address in AWKWARD_NAMES:
        for mayor in (None, ObjectId()):
            view = storeviews.to_view(_store_doc(name, address, mayor))
            assert storeviews.decode(storeviews.encode(view)) == view
            assert storeviews.decode(storeviews.encode(view).decode()) == view
            # the layout of the version before: a process of this one reads what such a process stored
            before = orjson.dumps({"_id": view["_id"], "mayor_id": view["mayor_id"],
                                   "public": orjson.loads(view["public_json"])})
            assert storeviews.decode(before) == view
            # and a process of the version before reads what this one stores
            assert orjson.loads(storeviews.encode(view))["public"] == orjson.loads(view["public_json"])
