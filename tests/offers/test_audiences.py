"""Offer audiences against the real servers: who each audience reaches (the push at creation and
the arrival path), the nearby cap and opt-out, once per user, bad input, the preview.

Check-ins are written straight into MongoDB with their ``day`` and time (the check-in rules — one an
hour, travel speed — would make a three-month history take three months), exactly the fields the
audience queries read."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId

from geo.distance import fast_m
from geo.positions import forget, set_position
from geo.privacy import coarsen
from offers.arrival import deliver_on_arrival
from offers.nearbycap import PER_DAY
from offers.targeting import target_offer
from solomo.core.keys import event_history
from tests.offers.helpers import create_offer, follow_store, merchant_with_store
from tests.support import Account, delivered_to, mark_offline, mark_online, offset, random_point, register


async def visited(services: Any, user: Account, store: dict[str, Any], *days_ago: int) -> None:
    """``user`` checked in at ``store`` once on each of these days (days ago)."""
    now = datetime.now(UTC)
    docs = [{"_id": ObjectId(), "user_id": ObjectId(user.id), "store_id": ObjectId(store["id"]),
             "day": (now - timedelta(days=d)).strftime("%Y-%m-%d"), "created_at": now - timedelta(days=d)}
            for d in days_ago]
    await services.db.checkins.insert_many(docs)


async def near(services: Any, store: dict[str, Any], *users: Account) -> None:
    for i, user in enumerate(users):
        await set_position(services.redis, user.id, *offset(store["lat"], store["lng"], north_m=25 + 15 * i))


async def opt_out(client: Any, user: Account) -> None:
    resp = await client.patch("/v1/me", json={"offers_from_unfollowed": False}, headers=user.headers)
    assert resp.status_code == 200, resp.text


async def people(client: Any, services: Any, store: dict[str, Any]) -> dict[str, Account]:
    """Around one store: a follower who never visited, a one-time visitor, a regular (3 days), a
    2-day visitor, a visitor of 120 days ago, a stranger, and a stranger who opted out."""
    names = ["follower", "once", "regular", "twice", "old", "stranger", "refuser"]
    users = {name: await register(client) for name in names}
    await follow_store(client, users["follower"], store["id"])
    await visited(services, users["once"], store, 10)
    await visited(services, users["regular"], store, 1, 5, 40)
    await visited(services, users["twice"], store, 2, 3)
    await visited(services, users["old"], store, 120)
    await opt_out(client, users["refuser"])
    return users


def ids(users: dict[str, Account], *names: str) -> set[str]:
    return {users[n].id for n in names}


async def test_each_audience_reaches_exactly_its_users(client, services):
    merchant, store = await merchant_with_store(client)
    users = await people(client, services, store)
    await near(services, store, *users.values())
    await mark_online(services, *(u.id for u in users.values()))
    try:
        expected = [
            ({}, ["follower"]),
            ({"audience": "visitors"}, ["once", "regular", "twice"]),
            ({"audience": "visitors", "audience_days": 4}, ["regular", "twice"]),
            ({"audience": "regulars"}, ["regular"]),
            ({"audience": "regulars", "min_visits": 2}, ["regular", "twice"]),
        ]
        for fields, names in expected:
            offer = await create_offer(client, merchant, store["id"], **fields)
            assert offer["audience"] == fields.get("audience", "followers")
            assert await delivered_to(services, offer["id"]) == ids(users, *names), fields
            await client.post(f"/v1/offers/{offer['id']}/end", headers=merchant.headers)  # 5 live at most
        offer = await create_offer(client, merchant, store["id"], audience="nearby")
        everyone_but_refuser = set(users) - {"refuser"}
        assert await delivered_to(services, offer["id"]) == ids(users, *everyone_but_refuser)
    finally:
        await mark_offline(services, *(u.id for u in users.values()))


async def test_the_offer_shape_carries_the_audience(client, services):
    merchant, store = await merchant_with_store(client)
    offer = await create_offer(client, merchant, store["id"], audience="regulars", min_visits=4)
    assert (offer["audience"], offer["min_visits"], offer.get("audience_days")) == ("regulars", 4, None)
    got = (await client.get(f"/v1/offers/{offer['id']}", headers=merchant.headers)).json()
    assert (got["audience"], got["min_visits"]) == ("regulars", 4)
    offer = await create_offer(client, merchant, store["id"], audience="visitors")
    assert (offer["audience"], offer["audience_days"]) == ("visitors", 90)


async def test_the_fourth_nearby_offer_of_a_day_reaches_followers_only(client, services):
    merchant, first = await merchant_with_store(client)
    stores = [first]
    for i in range(1, PER_DAY + 1):
        lat, lng = offset(first["lat"], first["lng"], east_m=30 * i)
        resp = await client.post("/v1/stores", json={"name": f"Shop {i}", "lat": lat, "lng": lng},
                                 headers=merchant.headers)
        stores.append(resp.json())
    stranger, fan = await register(client), await register(client)
    await follow_store(client, fan, stores[-1]["id"])
    await near(services, first, stranger, fan)
    await mark_online(services, stranger.id, fan.id)
    try:
        offers = [await create_offer(client, merchant, s["id"], audience="nearby", radius_m=800) for s in stores]
        got = [await delivered_to(services, o["id"]) for o in offers]
        assert [stranger.id in g for g in got] == [True] * PER_DAY + [False]
        assert all(fan.id in g for g in got)  # 3 as a stranger, the 4th as a follower of that store
        # a re-run takes no second place and sends nothing again
        await services.db.offers.update_many({"_id": {"$in": [ObjectId(o["id"]) for o in offers]}},
                                             {"$set": {"targeting": "pending"}})
        assert [await target_offer(services, o["id"]) for o in offers] == [0] * len(offers)
        assert stranger.id not in await delivered_to(services, offers[-1]["id"])
        assert await _offer_events(services, stranger) == PER_DAY
    finally:
        await mark_offline(services, stranger.id, fan.id)


async def test_arrival_path_follows_each_audience(client, services):
    """Nobody is near when the offers are made; then everyone arrives (a location message)."""
    merchant, store = await merchant_with_store(client)
    users = await people(client, services, store)
    offers = {
        "followers": await create_offer(client, merchant, store["id"]),
        "visitors": await create_offer(client, merchant, store["id"], audience="visitors"),
        "regulars": await create_offer(client, merchant, store["id"], audience="regulars"),
        "nearby": await create_offer(client, merchant, store["id"], audience="nearby"),
    }
    for offer in offers.values():
        assert await delivered_to(services, offer["id"]) == set()
    lat, lng = offset(store["lat"], store["lng"], north_m=30)
    for user in users.values():
        await deliver_on_arrival(services, user.id, lat, lng)
    assert await delivered_to(services, offers["followers"]["id"]) == ids(users, "follower")
    assert await delivered_to(services, offers["visitors"]["id"]) == ids(users, "once", "regular", "twice")
    assert await delivered_to(services, offers["regulars"]["id"]) == ids(users, "regular")
    assert await delivered_to(services, offers["nearby"]["id"]) == ids(users, *(set(users) - {"refuser"}))
    # arriving again (the judged cache forgotten) and the task re-run change nothing: once per user
    for user in users.values():
        await services.redis.delete(f"offers:judged:{user.id}")
        assert await deliver_on_arrival(services, user.id, lat, lng) == 0
    assert await _offer_events(services, users["regular"]) == 3  # visitors, regulars, nearby: each once


async def test_pushed_then_arrived_is_still_once(client, services):
    merchant, store = await merchant_with_store(client)
    regular = await register(client)
    await visited(services, regular, store, 1, 2, 3)
    await near(services, store, regular)
    await mark_online(services, regular.id)
    try:
        offer = await create_offer(client, merchant, store["id"], audience="regulars")
        assert await delivered_to(services, offer["id"]) == {regular.id}
        assert await deliver_on_arrival(services, regular.id, store["lat"], store["lng"]) == 0
        assert await _offer_events(services, regular) == 1
    finally:
        await mark_offline(services, regular.id)


async def test_bad_audiences_are_refused_and_nothing_is_written(client, services):
    merchant, store = await merchant_with_store(client)
    body = {"title": "Tea", "radius_m": 500,
            "expires_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat().replace("+00:00", "Z")}
    cases = [
        ({"audience": "regulars", "min_visits": 0}, "min_visits"),
        ({"audience": "regulars", "min_visits": 1000}, "min_visits"),
        ({"audience": "everyone"}, "audience"),
        ({"audience": "visitors", "audience_days": 0}, "audience_days"),
        ({"audience": "visitors", "audience_days": 366}, "audience_days"),
        ({"audience": "followers", "min_visits": 3}, "min_visits"),
    ]
    for fields, word in cases:
        resp = await client.post(f"/v1/stores/{store['id']}/offers", json={**body, **fields}, headers=merchant.headers)
        assert resp.status_code == 422, (fields, resp.text)
        error = resp.json()["error"]
        assert error["code"] == "invalid" and word in error["message"], (fields, error)
    assert await services.db.offers.count_documents({"store_id": ObjectId(store["id"])}) == 0


async def test_preview_sizes_and_reach(client, services):
    # the store on a point of the public grid: a fix within ~55 m north of it has the store's own
    # grid point as its public position (the preview counts public positions)
    merchant, store = await merchant_with_store(client, *coarsen(*random_point()))
    users = await people(client, services, store)
    far = await register(client)
    await visited(services, far, store, 6)  # a visitor, but not near now
    await near(services, store, *users.values())
    await mark_online(services, users["regular"].id, users["stranger"].id, users["refuser"].id, users["once"].id)
    url = f"/v1/stores/{store['id']}/audience"
    try:
        async def ask(**params: Any) -> dict[str, Any]:
            resp = await client.get(url, params=params, headers=merchant.headers)
            assert resp.status_code == 200, resp.text
            return resp.json()

        followers = await ask()
        assert (followers["size"], followers["online_in_radius"], followers["radius_m"]) == (1, 0, 500)
        visitors = await ask(audience="visitors")
        assert (visitors["size"], visitors["online_in_radius"]) == (4, 2)  # once, regular, twice, far; 2 online
        assert (await ask(audience="visitors", audience_days=4))["size"] == 2
        assert (await ask(audience="regulars"))["size"] == 1
        assert (await ask(audience="regulars", min_visits=2))["size"] == 2
        nearby = await ask(audience="nearby")
        assert (nearby["size"], nearby["online_in_radius"]) == (len(users), 3)  # the refuser is not counted
        await create_offer(client, merchant, store["id"], radius_m=1200)
        assert (await ask())["radius_m"] == 1200  # the last offer's radius by default
        # the three nearest (25, 40 and 55 m north) are shown at the store's grid point; the next at 111 m
        assert (await ask(audience="nearby", radius_m=50))["size"] == 3
        bad = await client.get(url, params={"audience": "regulars", "min_visits": 0}, headers=merchant.headers)
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid"
        other, _ = await merchant_with_store(client)
        denied = await client.get(url, headers=other.headers)
        assert denied.status_code == 403 and denied.json()["error"]["code"] == "forbidden"
    finally:
        await mark_offline(services, *(u.id for u in users.values()))


async def test_the_preview_counts_public_positions_so_no_radius_finds_a_fix(client, services):
    """A merchant asking the preview at radius after radius would find a user's fix to the metre if
    it counted fixes. It counts public positions (the fix snapped to the grid): wherever the fix is
    inside its grid cell, every radius answers the same, and the count changes only at the grid
    point's own distance."""
    merchant, store = await merchant_with_store(client, *coarsen(*random_point()))
    user = await register(client)
    cell = (round(store["lat"] + 0.003, 3), store["lng"])  # a grid point ~333 m north of the store
    shown = fast_m(store["lat"], store["lng"], *cell)
    url = f"/v1/stores/{store['id']}/audience"
    radii = list(range(280, 400, 15))  # (the preview is rate limited per merchant: 60 a minute)

    async def sizes() -> list[int]:
        out = []
        for radius in radii:
            resp = await client.get(url, params={"audience": "nearby", "radius_m": radius}, headers=merchant.headers)
            assert resp.status_code == 200, resp.text
            out.append(resp.json()["size"])
        return out

    try:
        answers = []
        for north, east in ((0.0, 0.0), (-0.00045, -0.00045), (0.00045, 0.00045), (-0.0004, 0.0003)):
            await set_position(services.redis, user.id, cell[0] + north, cell[1] + east)
            answers.append(await sizes())
        assert answers[0] == [int(r >= shown) for r in radii], (shown, answers[0])
        assert all(a == answers[0] for a in answers), answers
    finally:
        await forget(services.redis, user.id)


async def _offer_events(services: Any, user: Account) -> int:
    return sum(1 for _, fields in await services.redis.xrange(event_history(user.id)) if fields["type"] == "offer")


async def test_checking_in_makes_a_judged_out_user_a_visitor_at_once(client, services):
    """Judged "not a visitor" on arrival, the user checks in: their next location brings the offer
    (the check-in forgets the judgements instead of leaving them for ten minutes)."""
    merchant, store = await merchant_with_store(client)
    newcomer = await register(client)
    offer = await create_offer(client, merchant, store["id"], audience="visitors")
    lat, lng = offset(store["lat"], store["lng"], north_m=30)
    assert await deliver_on_arrival(services, newcomer.id, lat, lng) == 0  # judged: not a visitor
    assert await deliver_on_arrival(services, newcomer.id, lat, lng) == 0  # and remembered so
    resp = await client.post("/v1/checkins", json={"store_id": store["id"], "lat": lat, "lng": lng},
                             headers=newcomer.headers)
    assert resp.status_code == 201, resp.text
    assert await deliver_on_arrival(services, newcomer.id, lat, lng) == 1
    assert await delivered_to(services, offer["id"]) == {newcomer.id}


async def test_arrivals_together_get_only_the_offers_still_claimable(client, services):
    """Location messages of one moment share their offer reads (offers.arrival.OFFERS): the liveness
    checks run on what was read, so a sold-out, ended or held offer reaches none of them."""
    merchant, store = await merchant_with_store(client)
    made = [await create_offer(client, merchant, store["id"], audience="nearby") for _ in range(4)]
    live, sold_out, ended, held = (ObjectId(o["id"]) for o in made)
    await services.db.offers.update_one({"_id": sold_out}, {"$set": {"stock": 1, "claimed": 1}})
    await services.db.offers.update_one({"_id": ended}, {"$set": {"status": "ended"}})
    await services.db.offers.update_one({"_id": held}, {"$set": {"status": "pending_review"}})
    users = [await register(client) for _ in range(6)]
    lat, lng = offset(store["lat"], store["lng"], north_m=40)
    sent = await asyncio.gather(*(deliver_on_arrival(services, u.id, lat, lng) for u in users))
    assert sent == [1] * len(users)
    assert await delivered_to(services, str(live)) == {u.id for u in users}
    for other in (sold_out, ended, held):
        assert await delivered_to(services, str(other)) == set()



async def test_arrivals_together_each_get_their_own_followers_answer(client, services):
    """The location messages of one moment share the question "which of these stores does the user
    follow" (feed.followed); each user still gets exactly their own answer."""
    merchant, store = await merchant_with_store(client)
    offer = await create_offer(client, merchant, store["id"])  # followers
    fans = [await register(client) for _ in range(3)]
    strangers = [await register(client) for _ in range(3)]
    for fan in fans:
        await follow_store(client, fan, store["id"])
    lat, lng = offset(store["lat"], store["lng"], north_m=40)
    everyone = [u for pair in zip(fans, strangers, strict=True) for u in pair]
    sent = await asyncio.gather(*(deliver_on_arrival(services, u.id, lat, lng) for u in everyone))
    assert sent == [1, 0] * 3
    assert await delivered_to(services, offer["id"]) == {u.id for u in fans}


async def test_the_preview_is_rate_limited_per_merchant(client, services, monkeypatch):
    """A preview reads up to 200,000 check-ins and 20,000 positions: a merchant's previews are
    counted like a write."""
    monkeypatch.setitem(services.settings.rate_limits, "audience_preview", "2/minute")
    merchant, store = await merchant_with_store(client)
    url = f"/v1/stores/{store['id']}/audience"
    answers = [await client.get(url, params={"audience": "visitors"}, headers=merchant.headers) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429], [a.text for a in answers]
    assert answers[2].json()["error"]["code"] == "rate_limited" and int(answers[2].headers["Retry-After"]) > 0
    other, theirs = await merchant_with_store(client)  # per caller: another merchant's budget is its own
    answer = await client.get(f"/v1/stores/{theirs['id']}/audience", headers=other.headers)
    assert answer.status_code == 200, answer.text
