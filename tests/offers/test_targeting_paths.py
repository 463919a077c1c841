"""Targeting in one call, without sockets: near ∩ online ∩ follower, once each, and the cases that
end it early — the concurrent reads of :func:`offers.targeting.target_offer` change none of it."""

from __future__ import annotations

from typing import Any

from bson import ObjectId

from geo.positions import set_position
from offers import live, targeting
from offers.sweeps import restore_live
from offers.targeting import offer_events, target_offer
from solomo.core import tasknames
from tests.offers.helpers import create_offer, follow_store, merchant_with_store
from tests.support import delivered_to, mark_offline, mark_online, offset, register


def as_large_audience(monkeypatch) -> None:
    """Every store counts as a large audience: its offers are targeted by the task, never inline."""
    monkeypatch.setattr(targeting, "INLINE_MAX_FOLLOWERS", -1)


async def test_near_online_followers_get_it_once(client, services, monkeypatch, hold_tasks):
    as_large_audience(monkeypatch)
    merchant, store = await merchant_with_store(client)
    lat, lng = store["lat"], store["lng"]
    accounts = [await register(client) for _ in range(4)]
    near_on, near_off, far_on, stranger = accounts
    for acct in (near_on, near_off, far_on):
        await follow_store(client, acct, store["id"])
    for acct, north in ((near_on, 100), (near_off, 150), (far_on, 3000), (stranger, 50)):
        await set_position(services.redis, acct.id, *offset(lat, lng, north_m=north))
    await mark_online(services, near_on.id, far_on.id, stranger.id)
    try:
        held = hold_tasks()  # no worker targets the offer before the test does
        offer = await create_offer(client, merchant, store["id"], radius_m=500)
        assert (tasknames.OFFERS_TARGET, (offer["id"],)) in await held.sent()
        assert await target_offer(services, offer["id"]) == 1
        assert await delivered_to(services, offer["id"]) == {near_on.id}
        doc = await services.db.offers.find_one({"_id": ObjectId(offer["id"])})
        assert doc["pushed"] == 1 and doc["targeting"] == "done"
        assert await target_offer(services, offer["id"]) == 0  # a re-run sends nothing again
    finally:
        await mark_offline(services, near_on.id, far_on.id, stranger.id)


async def test_expired_or_unknown_offers_end_at_once(client, services, monkeypatch, hold_tasks):
    as_large_audience(monkeypatch)
    merchant, store = await merchant_with_store(client)
    hold_tasks()
    offer = await create_offer(client, merchant, store["id"], radius_m=500)
    await services.db.offers.update_one({"_id": ObjectId(offer["id"])}, {"$set": {"stock": 1, "claimed": 1}})
    assert await target_offer(services, offer["id"]) == 0
    assert (await services.db.offers.find_one({"_id": ObjectId(offer["id"])}))["targeting"] == "done"
    assert await target_offer(services, str(ObjectId())) == 0
    assert await target_offer(services, "not-an-id") == 0


def test_events_share_the_offer_and_differ_by_distance():
    from datetime import UTC, datetime

    import orjson

    from solomo.core.eventtypes import OfferEvent

    now = datetime.now(UTC)
    offer = {"_id": ObjectId(), "title": "t \"quoted\"", "description": "", "radius_m": 100, "stock": None,
             "claimed": 0, "expires_at": now, "created_at": now}
    store = {"_id": ObjectId(), "name": "s", "location": {"type": "Point", "coordinates": [2.0, 1.0]}}
    (prefix, suffix), parts = offer_events(offer, store, [("a", 12.34), ("b", 56.78), ("c", 0.0)])
    assert [uid for uid, _ in parts] == ["a", "b", "c"]
    datas = [orjson.loads(prefix + part + suffix) for _, part in parts]
    assert [d["distance_m"] for d in datas] == [12.3, 56.8, 0.0]
    for data in datas:  # exactly the catalogue's payload, field for field and in order
        expected = OfferEvent.model_validate(data).data()
        assert list(data) == list(expected) and data == expected
    assert datas[0]["store"] == {"id": str(store["_id"]), "name": "s", "lat": 1.0, "lng": 2.0}
    assert datas[0]["title"] == 't "quoted"'


async def test_a_live_offer_lost_from_the_redis_index_is_restored_by_the_sweep(client, services, hold_tasks):
    """MongoDB is the truth: an offer dropped from the live index (a Redis flush, a failover that lost
    the write, an upgrade of the key layout) is back after one sweep, so later arrivals still get it;
    an ended or sold-out one is not put back."""
    merchant, store = await merchant_with_store(client)
    lat, lng = store["lat"], store["lng"]
    hold_tasks()
    offer = await create_offer(client, merchant, store["id"], radius_m=500)
    gone = await create_offer(client, merchant, store["id"], radius_m=500)
    await target_offer(services, offer["id"])
    await target_offer(services, gone["id"])
    assert {offer["id"], gone["id"]} <= {o for o, _ in await live.covering(services.redis, lat, lng)}
    await services.db.offers.update_one({"_id": ObjectId(gone["id"])}, {"$set": {"stock": 1, "claimed": 1}})
    await live.unregister(services.redis, [offer["id"], gone["id"]])  # what a flush leaves
    assert await live.covering(services.redis, lat, lng) == []
    assert await restore_live(services) >= 1
    found = {o for o, _ in await live.covering(services.redis, lat, lng)}
    assert offer["id"] in found and gone["id"] not in found


async def _three_fans_one_a_chunk(client, services, monkeypatch) -> tuple[Any, dict[str, Any], list[Any]]:
    """A store's three online followers near it, in user id order, targeted by the task one a chunk."""
    as_large_audience(monkeypatch)
    monkeypatch.setattr(services.settings, "fanout_chunk", 1)
    merchant, store = await merchant_with_store(client)
    fans = sorted([await register(client) for _ in range(3)], key=lambda a: a.id)
    for north, fan in enumerate(fans):
        await follow_store(client, fan, store["id"])
        await set_position(services.redis, fan.id, *offset(store["lat"], store["lng"], north_m=50 + 10 * north))
    await mark_online(services, *(f.id for f in fans))
    return merchant, store, fans


async def test_a_chunks_inbox_writes_do_not_hold_up_the_next_chunk(client, services, monkeypatch, hold_tasks):
    """A chunk's inbox entries are written while the next chunk is published, and its checkpoint
    only after them: with the first chunk's inbox write held, the second chunk already has the offer
    and no checkpoint is recorded; released, everyone has one entry and the targeting is done."""
    import asyncio

    from notifications import offerinbox

    merchant, store, fans = await _three_fans_one_a_chunk(client, services, monkeypatch)
    release = asyncio.Event()
    first_inbox = asyncio.Event()
    real_record = offerinbox.record_offers

    async def held_first(services_: Any, offer: dict[str, Any], user_ids: list[str]) -> int:
        if not first_inbox.is_set():
            first_inbox.set()
            await release.wait()
        return await real_record(services_, offer, user_ids)

    monkeypatch.setattr(offerinbox, "record_offers", held_first)
    try:
        hold_tasks()
        offer = await create_offer(client, merchant, store["id"], radius_m=500)
        oid = ObjectId(offer["id"])
        run = asyncio.create_task(target_offer(services, offer["id"]))
        for _ in range(200):  # bounded: the second chunk is published while the first inbox waits
            if len(await delivered_to(services, offer["id"])) >= 2 or run.done():
                break
            await asyncio.sleep(0.02)
        assert await delivered_to(services, offer["id"]) == {fans[0].id, fans[1].id}
        doc = await services.db.offers.find_one({"_id": oid})
        assert "targeting_progress" not in doc and doc["targeting"] == "pending"  # no checkpoint before its inbox
        release.set()
        assert await run == 3
        doc = await services.db.offers.find_one({"_id": oid})
        assert doc["targeting"] == "done" and doc["pushed"] == 3
        deliveries = await services.db.offer_deliveries.find({"offer_id": oid}).to_list(None)
        assert sorted(str(r) for d in deliveries for r in d["recipients"]) == [f.id for f in fans]
    finally:
        release.set()
        await mark_offline(services, *(f.id for f in fans))


async def test_a_chunks_inbox_writes_wait_for_the_next_chunks_reads(client, services, monkeypatch, hold_tasks):
    """The next chunk's recipients are read (while this chunk is published) before this chunk's
    inbox entries are written: thousands of inserts never sit in front of those reads."""
    from notifications import offerinbox

    merchant, store, fans = await _three_fans_one_a_chunk(client, services, monkeypatch)
    order: list[str] = []
    real_recipients, real_record = targeting._recipients, offerinbox.record_offers

    async def read(services_: Any, offer: dict[str, Any], store_: dict[str, Any], audience: Any,
                   near: list[tuple[str, float]]) -> list[tuple[str, float]]:
        out = await real_recipients(services_, offer, store_, audience, near)
        order.append("read " + ",".join(uid for uid, _ in near))
        return out

    async def record(services_: Any, offer: dict[str, Any], user_ids: list[str]) -> int:
        order.append("inbox " + ",".join(user_ids))
        return await real_record(services_, offer, user_ids)

    monkeypatch.setattr(targeting, "_recipients", read)
    monkeypatch.setattr(offerinbox, "record_offers", record)
    try:
        hold_tasks()
        offer = await create_offer(client, merchant, store["id"], radius_m=500)
        assert await target_offer(services, offer["id"]) == 3
    finally:
        await mark_offline(services, *(f.id for f in fans))
    ids = [f.id for f in fans]
    assert order.index(f"read {ids[1]}") < order.index(f"inbox {ids[0]}")
    assert order.index(f"read {ids[2]}") < order.index(f"inbox {ids[1]}")
    assert [o for o in order if o.startswith("inbox")] == [f"inbox {uid}" for uid in ids]  # in chunk order
