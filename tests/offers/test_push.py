"""Offers pushed over real sockets: targeting in the Celery worker, late arrivals, once only."""

from __future__ import annotations

import json

from bson import ObjectId

from geo.positions import get_position
from offers.targeting import target_offer
from tests.offers.helpers import create_offer, follow_store, merchant_with_store
from tests.realtime.wsclient import open_ws, quiet_for, recv_type
from tests.support import delivered_to, offset, online, register, wait_until


async def located(live_server, services, acct, lat, lng):
    """A socket for ``acct`` whose live position is (lat, lng)."""
    ws = await open_ws(live_server, acct.token)
    await ws.send(json.dumps({"type": "location", "lat": lat, "lng": lng}))
    await ws.send(json.dumps({"type": "ping"}))
    await recv_type(ws, "pong")
    assert await get_position(services.redis, acct.id, 60) is not None
    return ws


async def test_offer_reaches_near_followers_only_and_late_arrivals_once(live_server, celery_worker, client, services):
    merchant, store = await merchant_with_store(client)
    lat, lng = store["lat"], store["lng"]
    near, far, stranger = await register(client), await register(client), await register(client)
    for acct in (near, far):
        await follow_store(client, acct, store["id"])
    ws_near = await located(live_server, services, near, *offset(lat, lng, north_m=120))
    ws_far = await located(live_server, services, far, *offset(lat, lng, east_m=3000))
    ws_stranger = await located(live_server, services, stranger, *offset(lat, lng, north_m=50))

    offer = await create_offer(client, merchant, store["id"], radius_m=500, stock=50)
    msg = await recv_type(ws_near, "offer", timeout=10)
    assert msg["data"]["id"] == offer["id"] and msg["data"]["title"] == offer["title"]
    assert 110 < msg["data"]["distance_m"] < 130
    assert msg["data"]["store"]["id"] == store["id"] and msg["id"]
    assert await quiet_for(ws_far, 0.7, "offer") == []
    assert await quiet_for(ws_stranger, 0.1, "offer") == []

    # the far follower walks into the radius: gets it once, however often they report a location
    for north in (200, 150, 100):
        await ws_far.send(json.dumps({"type": "location", "lat": offset(lat, lng, north_m=north)[0], "lng": lng}))
    late = await recv_type(ws_far, "offer", timeout=5)
    assert late["data"]["id"] == offer["id"] and 190 < late["data"]["distance_m"] < 210
    assert await quiet_for(ws_far, 0.7, "offer") == []
    # the stranger (not a follower) never gets it, even inside the radius
    await ws_stranger.send(json.dumps({"type": "location", "lat": offset(lat, lng, north_m=10)[0], "lng": lng}))
    assert await quiet_for(ws_stranger, 0.5, "offer") == []

    # a retried targeting task and new locations add no duplicate
    assert await target_offer(services, offer["id"]) == 0
    await ws_near.send(json.dumps({"type": "location", "lat": lat, "lng": lng}))
    assert await quiet_for(ws_near, 0.5, "offer") == []
    assert await delivered_to(services, offer["id"]) == {near.id, far.id}
    doc = await services.db.offers.find_one({"_id": ObjectId(offer["id"])})
    assert doc["pushed"] == 2 and doc["targeting"] == "done"
    stats = (await client.get(f"/v1/stores/{store['id']}/stats", headers=merchant.headers)).json()
    assert stats["offers"][0]["pushed"] == 2 and stats["followers"] == 2
    for ws in (ws_near, ws_far, ws_stranger):
        await ws.close()


async def test_offline_follower_gets_it_on_reconnect_with_location(live_server, celery_worker, client, services):
    merchant, store = await merchant_with_store(client)
    fan = await register(client)
    await follow_store(client, fan, store["id"])
    ws = await located(live_server, services, fan, *offset(store["lat"], store["lng"], north_m=100))
    await ws.close()
    await wait_until(lambda: _offline(services, fan.id))
    offer = await create_offer(client, merchant, store["id"], radius_m=300)
    await wait_until(lambda: _targeted(services, offer["id"]))
    assert fan.id not in await delivered_to(services, offer["id"])  # not online: not pushed
    ws = await open_ws(live_server, fan.token)
    lat, lng = offset(store["lat"], store["lng"], north_m=90)
    await ws.send(json.dumps({"type": "location", "lat": lat, "lng": lng}))
    msg = await recv_type(ws, "offer", timeout=5)
    assert msg["data"]["id"] == offer["id"]
    await ws.close()


async def test_expired_offer_is_not_pushed_to_arrivals(live_server, client, services):
    from datetime import UTC, datetime

    merchant, store = await merchant_with_store(client)
    fan = await register(client)
    await follow_store(client, fan, store["id"])
    offer = await create_offer(client, merchant, store["id"], radius_m=300)
    await services.db.offers.update_one({"_id": ObjectId(offer["id"])}, {"$set": {"expires_at": datetime.now(UTC)}})
    ws = await open_ws(live_server, fan.token)
    await ws.send(json.dumps({"type": "location", "lat": store["lat"], "lng": store["lng"]}))
    assert await quiet_for(ws, 0.7, "offer") == []
    await ws.close()


async def _offline(services, uid):
    return not (await online(services, uid))[0]


async def _targeted(services, offer_id):
    doc = await services.db.offers.find_one({"_id": ObjectId(offer_id)})
    return doc["targeting"] == "done"
