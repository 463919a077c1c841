"""Offers held for review (a review word in their text): no push until a moderator approves,
the moderation queue lists them as ``{"offer": Offer, ...}`` items, decisions are audited; and the
arrival path's memory of judged offers (forgotten on a follow; new offers seen at once)."""

from __future__ import annotations

from bson import ObjectId

from geo.positions import set_position
from offers import live
from offers.arrival import deliver_on_arrival
from offers.targeting import target_offer
from solomo.core import tasknames
from tests.moderation.conftest import extra_words  # noqa: F401  (the fixture)
from tests.moderation.helpers import token
from tests.offers.helpers import create_offer, follow_store, merchant_with_store
from tests.support import make_account, mark_offline, mark_online, offset, register


async def test_review_word_holds_the_offer_until_a_moderator_approves(client, services, hold_tasks,
                                                                     extra_words):  # noqa: F811
    review = token("zr")
    await extra_words(review=[review])
    merchant, store = await merchant_with_store(client)
    follower = await register(client)
    await follow_store(client, follower, store["id"])
    await set_position(services.redis, follower.id, *offset(store["lat"], store["lng"], north_m=100))
    await mark_online(services, follower.id)
    moderator = await make_account(services, "moderator")
    held = hold_tasks()
    try:
        offer = await create_offer(client, merchant, store["id"], description=f"a {review} deal")
        assert offer["status"] == "pending_review"
        assert await held.sent() == []  # not targeted
        assert await target_offer(services, offer["id"]) == 0  # a stray task pushes nothing either
        assert await deliver_on_arrival(services, follower.id, store["lat"], store["lng"]) == 0

        queue = (await client.get("/v1/moderation/queue", params={"limit": 100}, headers=moderator.headers)).json()
        items = [i for i in queue["items"] if "offer" in i and i["offer"]["id"] == offer["id"]]
        assert len(items) == 1 and items[0]["offer"] == offer
        assert items[0]["flags"][0]["source"] == "words" and items[0]["queued_at"]
        assert all("post" in i or "offer" in i for i in queue["items"])

        resp = await client.post(f"/v1/moderation/offers/{offer['id']}", headers=merchant.headers,
                                 json={"action": "approve", "reason": "mine"})
        assert resp.status_code == 403
        resp = await client.post(f"/v1/moderation/offers/{offer['id']}", headers=moderator.headers,
                                 json={"action": "approve", "reason": "harmless"})
        assert resp.status_code == 200 and resp.json()["status"] == "live", resp.text
        assert await held.sent() == [(tasknames.OFFERS_TARGET, (offer["id"],))]
        assert await target_offer(services, offer["id"]) == 1  # now it is pushed
        again = await client.post(f"/v1/moderation/offers/{offer['id']}", headers=moderator.headers,
                                  json={"action": "approve", "reason": "twice"})
        assert again.status_code == 409 and again.json()["error"]["code"] == "invalid_transition"
    finally:
        await mark_offline(services, follower.id)
    queue = (await client.get("/v1/moderation/queue", params={"limit": 100}, headers=moderator.headers)).json()
    assert offer["id"] not in [i["offer"]["id"] for i in queue["items"] if "offer" in i]
    audit = (await client.get("/v1/moderation/audit", params={"target_type": "offer", "target_id": offer["id"]},
                              headers=moderator.headers)).json()["items"]
    assert [(a["action"], a["before"], a["after"]) for a in audit] == [
        ("approve", {"status": "pending_review"}, {"status": "live"})]


async def test_a_removed_offer_ends_for_everyone(client, services):
    merchant, store = await merchant_with_store(client)
    offer = await create_offer(client, merchant, store["id"])
    moderator = await make_account(services, "moderator")
    resp = await client.post(f"/v1/moderation/offers/{offer['id']}", headers=moderator.headers,
                             json={"action": "remove", "reason": "scam"})
    assert resp.status_code == 200 and resp.json()["status"] == "ended"
    assert await services.redis.hget(live.LIVE_OFFERS_META, offer["id"]) is None
    user = await register(client)
    resp = await client.post(f"/v1/offers/{offer['id']}/claim", headers=user.headers)
    assert resp.status_code == 410 and resp.json()["error"]["code"] == "offer_ended"
    assert (await client.get(f"/v1/offers/{offer['id']}", headers=user.headers)).status_code == 404
    resp = await client.post(f"/v1/moderation/offers/{ObjectId()}", headers=moderator.headers,
                             json={"action": "remove", "reason": "x"})
    assert resp.status_code == 404


async def test_arrival_judgements_follow_a_new_follow_and_a_new_offer(client, services):
    merchant, store = await merchant_with_store(client)
    await create_offer(client, merchant, store["id"], radius_m=1000)
    user = await register(client)
    here = offset(store["lat"], store["lng"], north_m=200)
    assert await deliver_on_arrival(services, user.id, *here) == 0  # not a follower: judged and remembered
    await follow_store(client, user, store["id"])
    assert await deliver_on_arrival(services, user.id, *here) == 1  # the follow forgot that judgement
    assert await deliver_on_arrival(services, user.id, *here) == 0  # once only
    await create_offer(client, merchant, store["id"], radius_m=1000, title="second")
    assert await deliver_on_arrival(services, user.id, *here) == 1  # the cell's cache saw the new offer


async def _redis_calls(services, *commands: str) -> dict[str, int]:
    """Calls of each command so far, summed over every primary on a cluster."""
    from redis.asyncio import RedisCluster

    if isinstance(services.redis, RedisCluster):
        by_node = await services.redis.info("commandstats", target_nodes=RedisCluster.PRIMARIES)
        stats = list(by_node.values())
    else:
        stats = [await services.redis.info("commandstats")]
    return {c: sum(int(one.get(f"cmdstat_{c}", {}).get("calls", 0)) for one in stats) for c in commands}


async def test_a_location_among_judged_offers_reads_the_version_and_judgements_only(client, services, monkeypatch):
    """The cell cache's offers are a guess confirmed by the index version, read with the guess's
    judgements: a message among offers already judged costs a GET and an SMISMEMBER (one round
    trip), no read of the index; once the index moves, the cell is read again and a new offer is
    judged at once; a stale guess (an ended offer still in the cache) is not used."""
    from offers.arrival import CELLS_KEY

    # a cache of this test's own, whose cells a slow machine's pause does not expire
    monkeypatch.setitem(services.extras, CELLS_KEY, live.LiveCells(ttl_s=600))
    merchant, store = await merchant_with_store(client)
    first = await create_offer(client, merchant, store["id"], radius_m=1000)
    user = await register(client)
    here = offset(store["lat"], store["lng"], north_m=200)
    assert await deliver_on_arrival(services, user.id, *here) == 0  # not a follower: judged
    watched = ("get", "smismember", "sismember", "geosearch", "hmget")  # (scripts: the hub's heartbeat runs one)
    before = await _redis_calls(services, *watched)
    assert await deliver_on_arrival(services, user.id, *here) == 0
    after = await _redis_calls(services, *watched)
    assert {c: after[c] - before[c] for c in watched} == {
        "get": 1, "smismember": 1, "sismember": 0, "geosearch": 0, "hmget": 0}

    await follow_store(client, user, store["id"])  # forgets the judgement
    second = await create_offer(client, merchant, store["id"], radius_m=1000, title="second")
    before = await _redis_calls(services, "geosearch")
    assert await deliver_on_arrival(services, user.id, *here) == 2  # the version moved: both, at once
    assert (await _redis_calls(services, "geosearch"))["geosearch"] == before["geosearch"] + 1

    # the owner ends the first: its entry leaves the index (the version moves), so the cached cell,
    # which still holds it, is read again rather than trusted
    assert (await client.post(f"/v1/offers/{first['id']}/end", headers=merchant.headers)).status_code == 200
    assert first["id"] not in {o for o, _ in await live.covering(services.redis, *here)}
    assert second["id"] in {o for o, _ in await live.covering(services.redis, *here)}
    await services.redis.delete(f"offers:judged:{user.id}")
    before = await _redis_calls(services, "geosearch")
    assert await deliver_on_arrival(services, user.id, *here) == 0  # both delivered already
    assert (await _redis_calls(services, "geosearch"))["geosearch"] == before["geosearch"] + 1


def test_cell_cache_answers_while_fresh_with_the_version_it_was_read_at():
    cells = live.LiveCells(ttl_s=60, max_cells=2)
    offer = live.LiveOffer("o1", 1.0, 2.0, 500, 2**60)
    cells.put("a", "1", [offer])
    # with the version it was read at: the arrival path trusts it only at that version (tested above)
    assert cells.recent("a") == ("1", [offer])
    cells.put("b", "1", [])
    cells.put("c", "1", [])
    assert cells.recent("a") is None  # the least recently used cell left
    assert live.LiveCells(ttl_s=0.0).recent("a") is None
