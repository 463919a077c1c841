"""Where an offer is targeted: inline in the request for a small audience (no worker needed), by the
task for a large one, and never twice to anyone when both run."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from bson import ObjectId

from offers import targeting
from offers.targeting import target_offer
from solomo.core import tasknames
from tests.offers.helpers import create_offer, follow_store, merchant_with_store
from tests.realtime.wsclient import open_ws, quiet_for, recv_type
from tests.support import delivered_to, mark_offline, mark_online, offset, register, wait_until


async def _located_socket(live_server: str, services: Any, token: str, lat: float, lng: float) -> Any:
    ws = await open_ws(live_server, token)
    await ws.send(json.dumps({"type": "location", "lat": lat, "lng": lng}))
    await ws.send(json.dumps({"type": "ping"}))
    await recv_type(ws, "pong")
    return ws


async def test_a_small_audience_gets_the_offer_in_the_request_without_a_worker(live_server, client, services,
                                                                               hold_tasks):
    merchant, store = await merchant_with_store(client)
    fan = await register(client)
    await follow_store(client, fan, store["id"])
    ws = await _located_socket(live_server, services, fan.token, *offset(store["lat"], store["lng"], north_m=80))
    await wait_until(lambda: _online(services, fan.id))
    tasks = hold_tasks()  # no worker: only the request
    offer = await create_offer(client, merchant, store["id"], radius_m=300)
    # targeted by the request, after its answer (the ASGI call returns once it is done): the delivery
    # is recorded and the offer is done, no task was sent
    assert await delivered_to(services, offer["id"]) == {fan.id}
    doc = await services.db.offers.find_one({"_id": ObjectId(offer["id"])})
    assert doc["targeting"] == "done" and doc["pushed"] == 1
    assert await tasks.sent() == []
    msg = await recv_type(ws, "offer", timeout=10)
    assert msg["data"]["id"] == offer["id"] and 70 < msg["data"]["distance_m"] < 90
    # the task, sent again anyway (a sweep, a retry), finds nothing left to do
    assert await target_offer(services, offer["id"]) == 0
    assert await quiet_for(ws, 0.5, "offer") == []
    await ws.close()


async def test_a_large_audience_goes_to_the_task(client, services, monkeypatch, hold_tasks):
    monkeypatch.setattr(targeting, "INLINE_MAX_FOLLOWERS", 0)  # one follower is already "large"
    merchant, store = await merchant_with_store(client)
    fan = await register(client)
    await follow_store(client, fan, store["id"])
    from geo.positions import set_position

    await set_position(services.redis, fan.id, *offset(store["lat"], store["lng"], north_m=50))
    await mark_online(services, fan.id)
    try:
        tasks = hold_tasks()
        offer = await create_offer(client, merchant, store["id"], radius_m=300)
        assert await tasks.sent() == [(tasknames.OFFERS_TARGET, (offer["id"],))]
        assert await delivered_to(services, offer["id"]) == set()  # nothing inline
        doc = await services.db.offers.find_one({"_id": ObjectId(offer["id"])})
        assert doc["targeting"] == "pending"
        assert await target_offer(services, offer["id"]) == 1  # the task's body
        assert await delivered_to(services, offer["id"]) == {fan.id}
    finally:
        await mark_offline(services, fan.id)


async def test_inline_and_task_together_deliver_once(live_server, client, services, monkeypatch, hold_tasks):
    """The inline run and the task at the same time (a slow request while a sweep re-sends the
    task): the dedupe sets let each follower's event be recorded once, and each socket sees it once."""
    monkeypatch.setattr(targeting, "INLINE_MAX_FOLLOWERS", -1)  # the request leaves it pending
    merchant, store = await merchant_with_store(client)
    fans = [await register(client) for _ in range(3)]
    sockets = []
    for i, fan in enumerate(fans):
        await follow_store(client, fan, store["id"])
        sockets.append(await _located_socket(live_server, services, fan.token,
                                             *offset(store["lat"], store["lng"], north_m=40 + 20 * i)))
    await wait_until(lambda: _online(services, *(f.id for f in fans)))
    hold_tasks()
    offer = await create_offer(client, merchant, store["id"], radius_m=300)
    doc = await services.db.offers.find_one({"_id": ObjectId(offer["id"])})
    store_doc = await services.db.stores.find_one({"_id": ObjectId(store["id"])})
    # the request's inline path (start_push's body) and two task runs, all at once
    counts = await asyncio.gather(targeting._target(services, doc, store_doc),
                                  target_offer(services, offer["id"]), target_offer(services, offer["id"]))
    assert sum(counts) == 3
    assert await delivered_to(services, offer["id"]) == {f.id for f in fans}
    for ws in sockets:
        assert (await recv_type(ws, "offer", timeout=10))["data"]["id"] == offer["id"]
    for ws in sockets:
        assert await quiet_for(ws, 0.5, "offer") == []
        await ws.close()
    doc = await services.db.offers.find_one({"_id": ObjectId(offer["id"])})
    assert doc["pushed"] == 3 and doc["targeting"] == "done"


async def test_a_failing_inline_run_hands_the_offer_to_the_task(client, services, monkeypatch, hold_tasks):
    merchant, store = await merchant_with_store(client)

    async def broken(*args: Any) -> int:
        raise ConnectionError("Redis is gone")

    monkeypatch.setattr(targeting, "_target", broken)
    tasks = hold_tasks()
    offer = await create_offer(client, merchant, store["id"], radius_m=300)  # still 201: the offer is durable
    assert await tasks.sent() == [(tasknames.OFFERS_TARGET, (offer["id"],))]
    doc = await services.db.offers.find_one({"_id": ObjectId(offer["id"])})
    assert doc["targeting"] == "pending"  # and the sweep re-sends it if that task is lost too


async def _online(services: Any, *ids: str) -> bool:
    from tests.support import online

    return all(await online(services, *ids))
