"""Ending an offer early and a store's offer list (issue 16), against the real servers."""

from __future__ import annotations

import json

from bson import ObjectId

from offers import live
from solomo.core import keys
from tests.offers.helpers import create_offer, follow_store, merchant_with_store
from tests.realtime.wsclient import open_ws, quiet_for
from tests.support import register


async def test_end_offer_closes_claims_gate_and_index_but_keeps_vouchers(client, services):
    merchant, store = await merchant_with_store(client)
    offer = await create_offer(client, merchant, store["id"], stock=5)
    assert offer["status"] == "live" and offer["audience"] == "followers"
    early, late = await register(client), await register(client)
    claimed = await client.post(f"/v1/offers/{offer['id']}/claim", headers=early.headers)
    assert claimed.status_code == 201, claimed.text
    assert await services.redis.hexists(keys.claim_gate(offer["id"]), "stock")  # the gate is built and open

    resp = await client.post(f"/v1/offers/{offer['id']}/end", headers=merchant.headers)
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "ended" and resp.json()["id"] == offer["id"]
    # the Redis gate answers from now on, and the live index forgot it
    assert await services.redis.hget(keys.claim_gate(offer["id"]), "closed") == "offer_ended"
    assert await services.redis.hget(keys.LIVE_OFFERS_META, offer["id"]) is None
    refused = await client.post(f"/v1/offers/{offer['id']}/claim", headers=late.headers)
    assert refused.status_code == 410 and refused.json()["error"]["code"] == "offer_ended"
    # with the gate lost (a Redis flush), MongoDB still says ended
    await services.redis.delete(keys.claim_gate(offer["id"]))
    refused = await client.post(f"/v1/offers/{offer['id']}/claim", headers=late.headers)
    assert refused.status_code == 410 and refused.json()["error"]["code"] == "offer_ended"
    assert await services.db.vouchers.count_documents({"offer_id": ObjectId(offer["id"])}) == 1
    # the voucher claimed before stays redeemable
    code = claimed.json()["code"]
    redeemed = await client.post(f"/v1/stores/{store['id']}/redemptions", json={"code": code},
                                 headers=merchant.headers)
    assert redeemed.status_code == 200 and redeemed.json()["voucher"]["status"] == "redeemed"
    # ending again answers the ended offer; GET agrees
    again = await client.post(f"/v1/offers/{offer['id']}/end", headers=merchant.headers)
    assert again.status_code == 200 and again.json()["status"] == "ended"
    got = await client.get(f"/v1/offers/{offer['id']}", headers=late.headers)
    assert got.json()["status"] == "ended"


async def test_end_offer_rules(client, services):
    merchant, store = await merchant_with_store(client)
    other_merchant, _ = await merchant_with_store(client)
    offer = await create_offer(client, merchant, store["id"])
    user = await register(client)
    for who in (user, other_merchant):
        resp = await client.post(f"/v1/offers/{offer['id']}/end", headers=who.headers)
        assert resp.status_code == 403 and resp.json()["error"]["code"] == "forbidden"
    assert (await services.db.offers.find_one({"_id": ObjectId(offer["id"])}))["status"] == "live"
    for bad in ("nope", "0" * 24):
        resp = await client.post(f"/v1/offers/{bad}/end", headers=merchant.headers)
        assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found"
    resp = await client.post(f"/v1/offers/{offer['id']}/end")
    assert resp.status_code == 401
    from datetime import UTC, datetime

    await services.db.offers.update_one({"_id": ObjectId(offer["id"])}, {"$set": {"expires_at": datetime.now(UTC)}})
    resp = await client.post(f"/v1/offers/{offer['id']}/end", headers=merchant.headers)
    assert resp.status_code == 409 and resp.json()["error"]["code"] == "invalid_transition"


async def test_ended_offer_is_not_pushed_on_arrival(live_server, client, services):
    merchant, store = await merchant_with_store(client)
    fan = await register(client)
    await follow_store(client, fan, store["id"])
    offer = await create_offer(client, merchant, store["id"], radius_m=300)
    assert (await client.post(f"/v1/offers/{offer['id']}/end", headers=merchant.headers)).status_code == 200
    assert await live.covering(services.redis, store["lat"], store["lng"]) == []
    ws = await open_ws(live_server, fan.token)
    await ws.send(json.dumps({"type": "location", "lat": store["lat"], "lng": store["lng"]}))
    assert await quiet_for(ws, 0.7, "offer") == []
    await ws.close()


async def test_store_offer_list_live_for_everybody_all_for_owner(client, services):
    merchant, store = await merchant_with_store(client)
    first = await create_offer(client, merchant, store["id"], title="First")
    second = await create_offer(client, merchant, store["id"], title="Second")
    third = await create_offer(client, merchant, store["id"], title="Third")
    assert (await client.post(f"/v1/offers/{second['id']}/end", headers=merchant.headers)).status_code == 200
    held = await create_offer(client, merchant, store["id"], title="Fourth")
    await services.db.offers.update_one({"_id": ObjectId(held["id"])}, {"$set": {"status": "pending_review"}})

    owner_view = await client.get(f"/v1/stores/{store['id']}/offers", headers=merchant.headers)
    assert owner_view.status_code == 200, owner_view.text
    items = owner_view.json()["items"]
    assert [o["id"] for o in items] == [held["id"], third["id"], second["id"], first["id"]]
    assert [o["status"] for o in items] == ["pending_review", "live", "ended", "live"]

    stranger = await register(client)
    public = await client.get(f"/v1/stores/{store['id']}/offers", headers=stranger.headers)
    assert [o["id"] for o in public.json()["items"]] == [third["id"], first["id"]]
    # pages of one, newest first, through the cursor
    seen, cursor = [], None
    while True:
        params = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(f"/v1/stores/{store['id']}/offers", params=params, headers=merchant.headers)).json()
        seen += [o["id"] for o in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [o["id"] for o in items]
    # the owner may also give up on the held one: it leaves the moderation queue (ended)
    resp = await client.post(f"/v1/offers/{held['id']}/end", headers=merchant.headers)
    assert resp.status_code == 200 and resp.json()["status"] == "ended"


async def test_store_offer_list_bad_input(client):
    merchant, store = await merchant_with_store(client)
    for params, status in (({"limit": 0}, 422), ({"limit": 101}, 422), ({"cursor": "garbage"}, 400),
                           ({"bogus": 1}, 422)):
        resp = await client.get(f"/v1/stores/{store['id']}/offers", params=params, headers=merchant.headers)
        assert resp.status_code == status, (params, resp.text)
    resp = await client.get("/v1/stores/" + "0" * 24 + "/offers", headers=merchant.headers)
    assert resp.status_code == 404


async def test_targeting_that_read_the_offer_before_its_end_pushes_nothing(client, services):
    """The targeting task read the offer while it was live; the owner ends it; the task goes on."""
    from geo.positions import set_position
    from offers.targeting import _target
    from tests.support import delivered_to, mark_offline, mark_online

    merchant, store = await merchant_with_store(client)
    fan = await register(client)
    await follow_store(client, fan, store["id"])
    offer = await create_offer(client, merchant, store["id"], radius_m=300)  # nobody online yet: no push
    stale = await services.db.offers.find_one({"_id": ObjectId(offer["id"])})
    assert (await client.post(f"/v1/offers/{offer['id']}/end", headers=merchant.headers)).status_code == 200
    await set_position(services.redis, fan.id, store["lat"], store["lng"])
    await mark_online(services, fan.id)
    try:
        assert await _target(services, stale, None) == 0
    finally:
        await mark_offline(services, fan.id)
    assert fan.id not in await delivered_to(services, offer["id"])
    assert await services.redis.hget(keys.LIVE_OFFERS_META, offer["id"]) is None
