"""API4 (unrestricted resource consumption) and content abuse through offers.

One free merchant account must not degrade everyone: the work of a socket ``location`` message
is bounded whatever the number of live offers around, a store and a merchant have the contract's
limits (5 live offers per store, 20 offers per store a day, 20 stores per merchant, also under
concurrent requests), and offer text passes the word filter.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bson import ObjectId

from geo.geojson import geo_point
from offers import live
from offers.arrival import deliver_on_arrival
from tests.offers.helpers import in_minutes
from tests.security.conftest import account, error_code
from tests.support import CommandLog, counted_services, offset, random_point

MANY_OFFERS = 500


@pytest.fixture
async def counted(services) -> AsyncIterator[tuple[Any, CommandLog]]:
    async with counted_services(services) as pair:
        yield pair


async def _flood(services: Any, merchant_id: ObjectId, lat: float, lng: float, audience: str = "followers") -> None:
    """MANY_OFFERS live offers of one merchant over 100 stores within 300 m, written directly."""
    from offers.audiences import followers_store

    now = datetime.now(UTC)
    stores = [{"_id": ObjectId(), "name": f"Spam {i}", "category": "other", "address": None, "owner_id": merchant_id,
               "location": geo_point(*offset(lat, lng, north_m=i * 3)), "checkin_radius_m": 200,
               "checkins_count": 0, "unique_visitors": 0, "followers_count": 0, "mayor_id": None, "created_at": now}
              for i in range(100)]
    await services.db.stores.insert_many(stores)
    offers = []
    for i in range(MANY_OFFERS):
        store = stores[i % len(stores)]
        offers.append({"_id": ObjectId(), "store_id": store["_id"], "owner_id": merchant_id, "title": f"Deal {i}",
                       "description": "", "radius_m": 5000, "stock": None, "claimed": 0, "pushed": 0,
                       "location": store["location"], "expires_at": now + timedelta(hours=1), "created_at": now,
                       "created_ms": int(now.timestamp() * 1000), "status": "live", "targeting": "done",
                       "audience": audience})
    await services.db.offers.insert_many(offers)
    expires = int((now + timedelta(hours=1)).timestamp() * 1000)
    for offer in offers:
        o_lng, o_lat = offer["location"]["coordinates"]
        await live.register(services.redis, str(offer["_id"]), o_lat, o_lng, 5000, expires, followers_store(offer))


def _ids_examined(log: CommandLog, collection: str, field: str) -> list[int]:
    """How many ids each ``find`` on ``collection`` asked MongoDB about (``field: {$in: ids}``)."""
    return [len(cmd["filter"][field]["$in"]) for name, cmd in log.commands
            if name == "find" and cmd.get("find") == collection and isinstance(cmd["filter"].get(field), dict)]


async def test_one_location_message_does_bounded_work_among_many_live_offers(services, counted, leak_scanner):
    counted_services, log = counted
    merchant = await account(services, leak_scanner, "merchant")
    lat, lng = random_point()
    await _flood(services, ObjectId(merchant.id), lat, lng)
    user = await account(services, leak_scanner)
    here = offset(lat, lng, east_m=100)

    assert len(await live.covering(services.redis, *here)) <= live.SCAN_CAP
    await deliver_on_arrival(counted_services, user.id, *here)
    # every offer is for its store's followers, and the user follows none of the stores: one query
    # of the user's follows among at most the cap of stores judges them all, no offer is read
    examined = _ids_examined(log, "follows", "target_id")
    assert examined and max(examined) <= live.SCAN_CAP, examined
    assert [name for name, _ in log.commands] == ["find"] and _ids_examined(log, "offers", "_id") == []

    # the next messages from around here: the offers were judged for this user, MongoDB is not asked
    log.commands.clear()
    for east in (110, 120, 130):
        await deliver_on_arrival(counted_services, user.id, *offset(lat, lng, east_m=east))
    assert log.commands == []


async def test_one_location_message_reads_at_most_the_cap_of_offers_for_everyone_nearby(services, counted,
                                                                                       leak_scanner):
    """Offers whose audience is not a store's followers are read to be judged: at most the cap."""
    counted_services, log = counted
    merchant = await account(services, leak_scanner, "merchant")
    lat, lng = random_point()
    await _flood(services, ObjectId(merchant.id), lat, lng, audience="nearby")
    user = await account(services, leak_scanner)
    await deliver_on_arrival(counted_services, user.id, *offset(lat, lng, east_m=100))
    examined = _ids_examined(log, "offers", "_id")
    assert examined and max(examined) <= live.SCAN_CAP, examined
    assert _ids_examined(log, "follows", "target_id") == []  # nobody's follows decide a nearby offer


async def _store(api: Any, merchant: Any) -> dict[str, Any]:
    lat, lng = random_point()
    resp = await api.post("/v1/stores", json={"name": "Abuse Cafe", "lat": lat, "lng": lng}, headers=merchant.headers)
    assert resp.status_code == 201, resp.text
    return resp.json()


async def _offer(api: Any, merchant: Any, store_id: str, title: str = "Two for one") -> Any:
    return await api.post(f"/v1/stores/{store_id}/offers", headers=merchant.headers,
                          json={"title": title, "radius_m": 500, "expires_at": in_minutes(30)})


async def test_at_most_five_live_offers_per_store_even_concurrently(api, services, leak_scanner):
    merchant = await account(services, leak_scanner, "merchant")
    store = await _store(api, merchant)
    answers = await asyncio.gather(*(_offer(api, merchant, store["id"]) for _ in range(8)))
    codes = sorted(r.status_code for r in answers)
    assert codes == [201] * 5 + [409] * 3, codes
    assert {error_code(r) for r in answers if r.status_code == 409} == {"too_many_live_offers"}
    live_now = await services.db.offers.count_documents({"store_id": ObjectId(store["id"]),
                                                          "expires_at": {"$gt": datetime.now(UTC)}})
    assert live_now == 5
    # one of them sells out or expires: its place is free again
    first = next(r.json() for r in answers if r.status_code == 201)
    await services.db.offers.update_one({"_id": ObjectId(first["id"])},
                                        {"$set": {"expires_at": datetime.now(UTC) - timedelta(seconds=1)}})
    assert (await _offer(api, merchant, store["id"])).status_code == 201
    assert (await _offer(api, merchant, store["id"])).status_code == 409


async def test_at_most_twenty_offers_per_store_per_day(api, services, leak_scanner):
    merchant = await account(services, leak_scanner, "merchant")
    store = await _store(api, merchant)
    store_id = ObjectId(store["id"])
    now = datetime.now(UTC)
    past = now - timedelta(minutes=1)

    def ended(created: datetime) -> dict[str, Any]:  # an offer made at ``created``, no longer live
        return {"_id": ObjectId.from_datetime(created), "store_id": store_id, "owner_id": ObjectId(merchant.id),
                "title": "old", "description": "", "radius_m": 500, "stock": None, "claimed": 0, "pushed": 0,
                "location": geo_point(store["lat"], store["lng"]), "expires_at": past, "created_at": created,
                "created_ms": int(created.timestamp() * 1000), "status": "live", "targeting": "done"}

    # yesterday's offers do not count; 19 of the last 24 hours do
    await services.db.offers.insert_many([ended(now - timedelta(hours=25, seconds=i)) for i in range(10)])
    await services.db.offers.insert_many([ended(now - timedelta(hours=20, seconds=i)) for i in range(19)])
    assert (await _offer(api, merchant, store["id"])).status_code == 201  # the 20th today
    resp = await _offer(api, merchant, store["id"])
    assert resp.status_code == 429 and error_code(resp) == "rate_limited"
    retry = int(resp.headers["Retry-After"])
    assert 4 * 3600 - 30 < retry <= 4 * 3600 + 2  # when the oldest of today's leaves the 24-hour window


async def test_at_most_twenty_stores_per_merchant_even_concurrently(api, services, leak_scanner):
    merchant = await account(services, leak_scanner, "merchant")
    for _ in range(17):
        await _store(api, merchant)
    lat, lng = random_point()
    answers = await asyncio.gather(*(api.post("/v1/stores", json={"name": "More", "lat": lat, "lng": lng},
                                              headers=merchant.headers) for _ in range(6)))
    codes = sorted(r.status_code for r in answers)
    assert codes == [201] * 3 + [429] * 3, codes
    assert all(error_code(r) == "rate_limited" and r.headers.get("Retry-After") for r in answers
               if r.status_code == 429)
    assert await services.db.stores.count_documents({"owner_id": ObjectId(merchant.id)}) == 20


@pytest.fixture
async def offer_words(scanning_client, services, leak_scanner) -> AsyncIterator[tuple[str, str]]:
    """A block word and a review word on the live lists for one test; the lists are put back."""
    mod = await account(services, leak_scanner, "moderator")
    before = (await scanning_client.get("/v1/moderation/words", headers=mod.headers)).json()
    block, review = f"zqblock{ObjectId()}", f"zqreview{ObjectId()}"
    resp = await scanning_client.put("/v1/moderation/words", headers=mod.headers, json={
        "block": [*before["block"], block], "review": [*before["review"], review], "reason": "offer words"})
    assert resp.status_code == 200, resp.text
    yield block, review
    resp = await scanning_client.put("/v1/moderation/words", headers=mod.headers, json={**before, "reason": "restore"})
    assert resp.status_code == 200, resp.text


async def test_offer_text_passes_the_word_filter(api, services, leak_scanner, offer_words):
    block, review = offer_words
    merchant = await account(services, leak_scanner, "merchant")
    store = await _store(api, merchant)
    for body in ({"title": f"Cheap {block}"}, {"title": "Fine", "description": f"with {block.upper()} inside"}):
        resp = await api.post(f"/v1/stores/{store['id']}/offers", headers=merchant.headers,
                              json={"radius_m": 500, "expires_at": in_minutes(30), **body})
        assert resp.status_code == 422 and error_code(resp) == "content_rejected", resp.text
        assert block not in resp.text
    assert await services.db.offers.count_documents({"store_id": ObjectId(store["id"])}) == 0

    resp = await _offer(api, merchant, store["id"], title=f"Deal {review}")
    assert resp.status_code == 201 and resp.json()["status"] == "pending_review"
    held = resp.json()
    doc = await services.db.offers.find_one({"_id": ObjectId(held["id"])})
    assert doc is not None and doc["targeting"] == "held"  # no targeting task: not pushed
    assert await services.redis.hget(live.LIVE_OFFERS_META, held["id"]) is None  # no late arrival either
    outsider = await account(services, leak_scanner)
    assert (await api.get(f"/v1/offers/{held['id']}", headers=outsider.headers)).status_code == 404
    assert (await api.post(f"/v1/offers/{held['id']}/claim", headers=outsider.headers)).status_code == 404
    nearby = await api.get("/v1/offers/nearby", params={"lat": store["lat"], "lng": store["lng"]},
                           headers=outsider.headers)
    assert held["id"] not in [o["id"] for o in nearby.json()["items"]]
    owner_view = await api.get(f"/v1/offers/{held['id']}", headers=merchant.headers)
    assert owner_view.status_code == 200 and owner_view.json()["status"] == "pending_review"
