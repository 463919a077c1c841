"""Offers: creation rules, reading, nearby listing, and the domain pieces behind them."""

from __future__ import annotations

import pytest
from bson import ObjectId

from offers import codes, live
from solomo.core.keys import LIVE_OFFERS_META
from tests.offers.helpers import create_offer, in_minutes, merchant_with_store
from tests.support import offset, register


async def test_create_and_read_offer(client):
    merchant, store = await merchant_with_store(client)
    offer = await create_offer(client, merchant, store["id"], description="2pm-5pm", stock=10)
    assert set(offer) == {"id", "store", "title", "description", "radius_m", "stock", "claimed", "audience",
                          "status", "expires_at", "created_at"}
    assert offer["status"] == "live"
    assert offer["store"] == {"id": store["id"], "name": store["name"], "lat": store["lat"], "lng": store["lng"]}
    assert offer["stock"] == 10 and offer["claimed"] == 0 and offer["expires_at"].endswith("Z")
    reader = await register(client)
    got = await client.get(f"/v1/offers/{offer['id']}", headers=reader.headers)
    assert got.status_code == 200 and got.json() == offer
    unlimited = await create_offer(client, merchant, store["id"])
    assert unlimited["stock"] is None


async def test_only_the_owner_may_offer(client):
    merchant, store = await merchant_with_store(client)
    other_merchant, _ = await merchant_with_store(client)
    user = await register(client)
    body = {"title": "x", "radius_m": 500, "expires_at": in_minutes(10)}
    for acct in (other_merchant, user):
        resp = await client.post(f"/v1/stores/{store['id']}/offers", json=body, headers=acct.headers)
        assert resp.status_code == 403 and resp.json()["error"]["code"] == "forbidden"
    for bad_id in ["nope", str(ObjectId())]:
        resp = await client.post(f"/v1/stores/{bad_id}/offers", json=body, headers=merchant.headers)
        assert resp.status_code == 404
    resp = await client.post(f"/v1/stores/{store['id']}/offers", json=body)
    assert resp.status_code == 401


async def test_offer_creation_is_limited_per_caller_and_a_refusal_stores_no_key(client, services, monkeypatch):
    """Anyone may post a valid offer to anyone's store with a fresh Idempotency-Key each time: each
    403 is kept a day as that key's answer, so the per-caller limit is what bounds them; a refused
    request keeps no key."""
    monkeypatch.setitem(services.settings.rate_limits, "offer", "3/minute")
    merchant, store = await merchant_with_store(client)
    stranger = await register(client)
    url, body = f"/v1/stores/{store['id']}/offers", {"title": "x", "radius_m": 500, "expires_at": in_minutes(10)}
    for n in range(6):
        resp = await client.post(url, json=body, headers={**stranger.headers, "Idempotency-Key": f"k{n}-{ObjectId()}"})
        if n < 3:
            assert resp.status_code == 403, resp.text
        else:
            assert resp.status_code == 429 and resp.json()["error"]["code"] == "rate_limited", resp.text
            assert 1 <= int(resp.headers["Retry-After"]) <= 60
    assert (await client.post(url, json=body, headers=stranger.headers)).status_code == 429  # without a key too
    assert await services.db.idempotency.count_documents({"user_id": ObjectId(stranger.id)}) == 3
    await create_offer(client, merchant, store["id"])  # the owner's budget is the owner's own


async def test_offer_input_is_validated(client):
    merchant, store = await merchant_with_store(client)
    good = {"title": "x", "radius_m": 500, "expires_at": in_minutes(10)}
    for patch in [
        {"radius_m": 49}, {"radius_m": 5001}, {"radius_m": "500"}, {"title": ""}, {"title": "   "},
        {"title": "x" * 121}, {"expires_at": in_minutes(-1)}, {"expires_at": in_minutes(60 * 24 * 100)},
        {"expires_at": "tomorrow"}, {"expires_at": "2030-01-01T00:00:00"}, {"stock": 0}, {"stock": -5},
        {"stock": 1.5}, {"owner_id": "me"},
    ]:
        resp = await client.post(f"/v1/stores/{store['id']}/offers", json={**good, **patch}, headers=merchant.headers)
        assert resp.status_code == 422, (patch, resp.text)
        assert resp.json()["error"]["code"] == "invalid"
    resp = await client.post(f"/v1/stores/{store['id']}/offers", content=b"{", headers={
        **merchant.headers, "content-type": "application/json"})
    assert resp.status_code == 400


async def test_nearby_lists_live_offers_covering_the_point(client, services):
    merchant, store = await merchant_with_store(client)
    small = await create_offer(client, merchant, store["id"], radius_m=100, title="small")
    big = await create_offer(client, merchant, store["id"], radius_m=2000, title="big")
    gone = await create_offer(client, merchant, store["id"], radius_m=2000, title="expired")
    sold = await create_offer(client, merchant, store["id"], radius_m=2000, title="sold", stock=1)
    await services.db.offers.update_one({"_id": ObjectId(gone["id"])}, {"$set": {"expires_at": services_now()}})
    await services.db.offers.update_one({"_id": ObjectId(sold["id"])}, {"$set": {"claimed": 1}})
    reader = await register(client)
    lat, lng = offset(store["lat"], store["lng"], north_m=500)
    resp = await client.get("/v1/offers/nearby", params={"lat": lat, "lng": lng}, headers=reader.headers)
    assert resp.status_code == 200
    assert [o["id"] for o in resp.json()["items"]] == [big["id"]]
    assert 490 < resp.json()["items"][0]["distance_m"] < 510
    lat, lng = offset(store["lat"], store["lng"], north_m=50)
    resp = await client.get("/v1/offers/nearby", params={"lat": lat, "lng": lng, "limit": 1}, headers=reader.headers)
    first = resp.json()
    assert len(first["items"]) == 1 and first["next_cursor"]
    resp = await client.get("/v1/offers/nearby", params={"lat": lat, "lng": lng, "limit": 1,
                                                         "cursor": first["next_cursor"]}, headers=reader.headers)
    second = resp.json()
    assert {first["items"][0]["id"], second["items"][0]["id"]} == {small["id"], big["id"]}
    assert second["next_cursor"] is None
    for params in [{"lat": 200, "lng": 0}, {"lat": 0}, {"lat": 0, "lng": 0, "limit": 0},
                   {"lat": 0, "lng": 0, "cursor": "forged"}, {"lat": "nan", "lng": 0}]:
        resp = await client.get("/v1/offers/nearby", params=params, headers=reader.headers)
        assert resp.status_code in (400, 422), (params, resp.text)


async def test_unknown_offer_is_404(client):
    reader = await register(client)
    for bad in ["nope", str(ObjectId())]:
        assert (await client.get(f"/v1/offers/{bad}", headers=reader.headers)).status_code == 404


def services_now():
    from datetime import UTC, datetime

    return datetime.now(UTC)


def test_codes_are_readable_and_forgiving():
    seen = {codes.new_code() for _ in range(2000)}
    assert len(seen) == 2000
    code = next(iter(seen))
    assert len(code) == 10 and all(c in codes.ALPHABET for c in code)
    shown = codes.display(code)
    assert codes.normalize(shown) == code
    assert codes.normalize(" " + shown.lower().replace("-", " ") + " ") == code
    assert codes.normalize(codes.qr_payload(code)) == code
    assert codes.normalize("OIL00-00000") == "01100" + "00000"
    for bad in ["", "ABC", "ABCDE-FGHJK-1", "ABCDE-FGHJU", "ABCDE FGHJ!"]:
        assert codes.normalize(bad) is None


async def test_live_index_covers_by_radius_and_drops_expired(services):
    import time

    from tests.support import random_point

    lat, lng = random_point()
    now = int(time.time() * 1000)
    a, b, c, store = (str(ObjectId()) for _ in range(4))
    await live.register(services.redis, a, lat, lng, 300, now + 60_000, None)
    await live.register(services.redis, b, lat, lng, 1000, now + 60_000, store)
    await live.register(services.redis, c, lat, lng, 1000, now - 1, None)
    here = offset(lat, lng, east_m=600)
    found = dict(await live.covering(services.redis, *here, now_ms=now))
    assert set(found) == {b} and 590 < found[b] < 610
    assert await services.redis.hget(LIVE_OFFERS_META, c) is None  # dropped when met


async def test_live_index_keeps_the_store_of_a_followers_offer_beside_its_meta(services):
    """An offer to a store's followers names the store in ``{offers}:live:followers``; another
    audience has no entry there (nor an offer registered before the hash was kept: both read as
    "audience unknown", and the arrival path reads the offer). The meta keeps its old form, so code
    from before reads it as it did; a store entry whose offer left the index by such code (a
    rollback) is dropped by the sweep, and unregistering drops both."""
    import time

    from solomo.core.keys import LIVE_OFFERS_FOLLOWERS
    from tests.support import random_point

    lat, lng = random_point()
    now = int(time.time() * 1000)
    followers, other, gone, store = (str(ObjectId()) for _ in range(4))
    await live.register(services.redis, followers, lat, lng, 500, now + 60_000, store)
    await live.register(services.redis, other, lat, lng, 500, now + 60_000, None)
    await live.register(services.redis, gone, lat, lng, 500, now + 60_000, store)
    assert await services.redis.hget(LIVE_OFFERS_META, followers) == f"500:{now + 60_000}"
    read = {o.offer_id: o for o in await live.read_cell(services.redis, live.cell_at(lat, lng), now)}
    assert (read[followers].followers_of, read[other].followers_of) == (store, None)
    await live.register(services.redis, followers, lat, lng, 500, now + 60_000, None)  # registered anew: no store
    assert await services.redis.hget(LIVE_OFFERS_FOLLOWERS, followers) is None

    await services.redis.zrem(live.LIVE_OFFERS, gone)  # what code unaware of the hash leaves
    await services.redis.hdel(LIVE_OFFERS_META, gone)
    await live.sweep(services.redis, now_ms=now)
    assert await services.redis.hget(LIVE_OFFERS_FOLLOWERS, gone) is None
    await live.register(services.redis, gone, lat, lng, 500, now + 60_000, store)
    await live.unregister(services.redis, [gone])
    assert await services.redis.hget(LIVE_OFFERS_FOLLOWERS, gone) is None
    assert await live.read_cell(services.redis, live.cell_at(lat, lng), now + 60_000) == []  # expired: dropped


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
async def test_expires_at_at_the_edge_of_the_calendar_is_422(client, services, when):
    merchant, store = await merchant_with_store(client)
    resp = await client.post(f"/v1/stores/{store['id']}/offers", headers=merchant.headers,
                             json={"title": "t", "radius_m": 100, "expires_at": when})
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "invalid"
    assert await services.db.offers.count_documents({"store_id": ObjectId(store["id"])}) == 0


async def test_an_offer_committed_while_the_live_index_fails_is_still_a_201(client, services, monkeypatch):
    """The offer is durable once its transaction commits: a failure to add it to the live index
    right after (Redis hiccup) is repaired by its targeting task, not answered as a 503 that would
    invite a retry and a second offer."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    failed: list[bool] = []

    async def unreachable(*_: object, **__: object) -> None:
        failed.append(True)
        raise RedisConnectionError("redis went away")

    merchant, store = await merchant_with_store(client)
    monkeypatch.setattr(live, "register", unreachable)
    offer = await create_offer(client, merchant, store["id"])  # asserts the 201
    assert failed, "the live index's registration was not reached"
    assert await services.db.offers.count_documents({"_id": ObjectId(offer["id"])}) == 1
