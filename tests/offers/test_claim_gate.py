"""The claim gate (offers/gate.py): losers answered from Redis, winners written once, MongoDB the truth.

Every test runs on the real servers (and on a Redis Cluster with SOLOMO_TEST_REDIS=cluster).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import httpx2
import pytest
from bson import ObjectId

from benchmarks.seed import bulk_users
from offers import gate
from offers.sweeps import reconcile_gates
from solomo.core import keys
from solomo.embedded import free_port
from tests.offers.helpers import create_offer, merchant_with_store
from tests.support import Account, LiveServer, make_account


async def _accounts(services: Any, n: int) -> list[Account]:
    """``n`` users with tokens, inserted in bulk (registering hundreds one by one is most of a test)."""
    return [Account(str(uid), f"bulk_{uid}", token, "user", {}) for uid, token in await bulk_users(services, n)]


async def _claim_all(client: Any, offer_id: str, users: list[Account]) -> list[Any]:
    return list(await asyncio.gather(*(client.post(f"/v1/offers/{offer_id}/claim", headers=u.headers)
                                       for u in users)))


async def _gate_state(services: Any, offer_id: str) -> tuple[dict[str, str], set[str], dict[str, float]]:
    redis = services.redis
    fields = await redis.hgetall(keys.claim_gate(offer_id))
    holders = set(await redis.smembers(keys.claim_holders(offer_id)))
    pending = dict(await redis.zrange(keys.claim_pending(offer_id), 0, -1, withscores=True))
    return fields, holders, pending


async def _drop_gate(services: Any, offer_id: str) -> None:
    """What a Redis flush or a failover that lost the gate does to one offer."""
    await services.redis.delete(keys.claim_gate(offer_id))
    await services.redis.delete(keys.claim_holders(offer_id))
    await services.redis.delete(keys.claim_pending(offer_id))


async def _reserve_and_die(services: Any, offer_id: str, user: Account) -> None:
    """What a claim does before its process is killed: the gate reserves a slot, nothing is written."""
    oid = ObjectId(offer_id)
    await gate.build(services, await services.db.offers.find_one({"_id": oid}))
    assert await gate.take(services, oid, ObjectId(user.id)) == gate.RESERVED


async def _transactions_started(services: Any) -> int:
    status = await services.mongo.admin.command("serverStatus")
    return int(status["transactions"]["totalStarted"])


async def _check_truth(services: Any, offer_id: str, stock: int, won: list[Any]) -> list[dict[str, Any]]:
    """Never oversold, every 201 has its voucher, the counter matches the vouchers."""
    vouchers = await services.db.vouchers.find({"offer_id": ObjectId(offer_id)}).to_list(None)
    assert len(vouchers) <= stock
    assert len({v["user_id"] for v in vouchers}) == len(vouchers)
    ids = {str(v["_id"]) for v in vouchers}
    assert all(r.json()["id"] in ids for r in won)
    doc = await services.db.offers.find_one({"_id": ObjectId(offer_id)})
    assert doc["claimed"] == len(vouchers)
    return vouchers


async def test_500_claims_for_stock_10_give_exactly_10_winners(client, services):
    merchant, store = await merchant_with_store(client)
    offer = await create_offer(client, merchant, store["id"], stock=10)
    users = await _accounts(services, 500)
    responses = await _claim_all(client, offer["id"], users)
    assert Counter(r.status_code for r in responses) == {201: 10, 409: 490}
    assert {r.json()["error"]["code"] for r in responses if r.status_code == 409} == {"sold_out"}
    won = [r for r in responses if r.status_code == 201]
    vouchers = await _check_truth(services, offer["id"], 10, won)
    assert len(vouchers) == 10
    fields, holders, pending = await _gate_state(services, offer["id"])
    assert fields["stock"] == "10" and holders == {str(v["user_id"]) for v in vouchers} and pending == {}
    # a winner asking again gets their voucher (200), a loser still sold_out
    again = await client.post(f"/v1/offers/{offer['id']}/claim", headers=users[0].headers)
    first = responses[0]
    if first.status_code == 201:
        assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    else:
        assert again.status_code == 409


async def test_sold_out_is_answered_without_a_mongodb_transaction(client, services):
    merchant, store = await merchant_with_store(client)
    offer = await create_offer(client, merchant, store["id"], stock=1)
    winner, *losers = await _accounts(services, 21)
    assert (await client.post(f"/v1/offers/{offer['id']}/claim", headers=winner.headers)).status_code == 201
    before = await _transactions_started(services)
    responses = [await client.post(f"/v1/offers/{offer['id']}/claim", headers=u.headers) for u in losers]
    assert [r.status_code for r in responses] == [409] * 20
    assert await _transactions_started(services) == before  # 20 sold-out answers, not one transaction


async def test_idempotency_key_retry_returns_the_same_voucher(client, services):
    merchant, store = await merchant_with_store(client)
    offer = await create_offer(client, merchant, store["id"], stock=3)
    user, = await _accounts(services, 1)
    headers = {**user.headers, "Idempotency-Key": "claim-once-1"}
    first = await client.post(f"/v1/offers/{offer['id']}/claim", headers=headers)
    retry = await client.post(f"/v1/offers/{offer['id']}/claim", headers=headers)
    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json() and retry.headers.get("Idempotent-Replayed") == "true"
    plain = await client.post(f"/v1/offers/{offer['id']}/claim", headers=user.headers)
    assert plain.status_code == 200 and plain.json()["id"] == first.json()["id"]
    assert await services.db.vouchers.count_documents({"offer_id": ObjectId(offer["id"])}) == 1


async def test_gate_is_rebuilt_from_mongodb_after_a_flush(client, services):
    merchant, store = await merchant_with_store(client)
    offer = await create_offer(client, merchant, store["id"], stock=5)
    users = await _accounts(services, 8)
    early = await _claim_all(client, offer["id"], users[:3])
    assert [r.status_code for r in early] == [201] * 3
    await _drop_gate(services, offer["id"])
    # a holder still gets their voucher; the rebuilt gate counts the three from MongoDB
    again = await client.post(f"/v1/offers/{offer['id']}/claim", headers=users[0].headers)
    assert again.status_code == 200 and again.json()["id"] == early[0].json()["id"]
    fields, holders, _ = await _gate_state(services, offer["id"])
    assert fields["stock"] == "5" and holders == {u.id for u in users[:3]}
    late = [await client.post(f"/v1/offers/{offer['id']}/claim", headers=u.headers) for u in users[3:]]
    assert [r.status_code for r in late] == [201, 201, 409, 409, 409]
    await _check_truth(services, offer["id"], 5, early + late[:2])


async def test_a_wrong_gate_cannot_oversell(client, services):
    """The gate is an optimisation: told there are 1,000 slots, MongoDB still hands out 5."""
    merchant, store = await merchant_with_store(client)
    offer = await create_offer(client, merchant, store["id"], stock=5)
    users = await _accounts(services, 40)
    assert (await client.post(f"/v1/offers/{offer['id']}/claim", headers=users[0].headers)).status_code == 201
    await services.redis.hset(keys.claim_gate(offer["id"]), "stock", 1000)
    responses = await _claim_all(client, offer["id"], users[1:])
    assert Counter(r.status_code for r in responses) == {201: 4, 409: 35}
    await _check_truth(services, offer["id"], 5, [r for r in responses if r.status_code == 201])
    # MongoDB's sold-out answer rebuilt the gate: losers are answered from Redis again
    fields, holders, _ = await _gate_state(services, offer["id"])
    assert fields["stock"] == "5" and len(holders) == 5
    before = await _transactions_started(services)
    late, = await _accounts(services, 1)
    assert (await client.post(f"/v1/offers/{offer['id']}/claim", headers=late.headers)).status_code == 409
    assert await _transactions_started(services) == before


async def test_a_dead_claims_reservation_is_given_back_by_the_sweep(client, services):
    merchant, store = await merchant_with_store(client)
    offer = await create_offer(client, merchant, store["id"], stock=2)
    oid = ObjectId(offer["id"])
    ghost, first, last = await _accounts(services, 3)
    await _reserve_and_die(services, offer["id"], ghost)
    assert (await client.post(f"/v1/offers/{offer['id']}/claim", headers=first.headers)).status_code == 201
    resp = await client.post(f"/v1/offers/{offer['id']}/claim", headers=last.headers)
    assert resp.status_code == 409  # the gate counts the dead reservation
    summary = await reconcile_gates(services, stale_after_ms=0)  # as once the reservation's TTL has passed
    assert summary["gates"] >= 1
    assert (await client.post(f"/v1/offers/{offer['id']}/claim", headers=last.headers)).status_code == 201
    assert (await client.post(f"/v1/offers/{offer['id']}/claim", headers=ghost.headers)).status_code == 409
    assert await services.db.vouchers.count_documents({"offer_id": oid}) == 2


async def test_the_ghost_itself_may_still_claim_its_slot(client, services):
    """A user whose own earlier claim died mid-way is sent to MongoDB, which has the slot."""
    merchant, store = await merchant_with_store(client)
    offer = await create_offer(client, merchant, store["id"], stock=1)
    ghost, other = await _accounts(services, 2)
    await _reserve_and_die(services, offer["id"], ghost)
    assert (await client.post(f"/v1/offers/{offer['id']}/claim", headers=other.headers)).status_code == 409
    resp = await client.post(f"/v1/offers/{offer['id']}/claim", headers=ghost.headers)
    assert resp.status_code == 201
    _, holders, pending = await _gate_state(services, offer["id"])
    assert holders == {ghost.id} and pending == {}


async def test_a_lost_confirm_is_repaired_by_the_sweep(client, services):
    merchant, store = await merchant_with_store(client)
    offer = await create_offer(client, merchant, store["id"], stock=1)
    winner, = await _accounts(services, 1)
    voucher = (await client.post(f"/v1/offers/{offer['id']}/claim", headers=winner.headers)).json()
    await services.redis.srem(keys.claim_holders(offer["id"]), winner.id)  # as if Redis lost the confirm
    assert (await reconcile_gates(services))["rebuilt"] >= 1
    _, holders, _ = await _gate_state(services, offer["id"])
    assert holders == {winner.id}
    again = await client.post(f"/v1/offers/{offer['id']}/claim", headers=winner.headers)
    assert again.status_code == 200 and again.json()["id"] == voucher["id"]


async def test_ended_and_expired_offers_close_the_gate(client, services):
    merchant, store = await merchant_with_store(client)
    moderator = await make_account(services, "moderator")
    removed = await create_offer(client, merchant, store["id"], stock=5)
    users = await _accounts(services, 3)
    assert (await client.post(f"/v1/offers/{removed['id']}/claim", headers=users[0].headers)).status_code == 201
    resp = await client.post(f"/v1/moderation/offers/{removed['id']}", headers=moderator.headers,
                             json={"action": "remove", "reason": "misleading"})
    assert resp.status_code == 200, resp.text
    fields, _, _ = await _gate_state(services, removed["id"])
    assert fields["closed"] == "offer_ended"
    resp = await client.post(f"/v1/offers/{removed['id']}/claim", headers=users[1].headers)
    assert resp.status_code == 410 and resp.json()["error"]["code"] == "offer_ended"

    # ended in MongoDB behind the gate's back: the reserved claim is refused there, its slot given
    # back, and the gate closed
    ended = await create_offer(client, merchant, store["id"], stock=5)
    assert (await client.post(f"/v1/offers/{ended['id']}/claim", headers=users[0].headers)).status_code == 201
    await services.db.offers.update_one({"_id": ObjectId(ended["id"])}, {"$set": {"status": "removed"}})
    resp = await client.post(f"/v1/offers/{ended['id']}/claim", headers=users[1].headers)
    assert resp.status_code == 410 and resp.json()["error"]["code"] == "offer_ended"
    fields, _, pending = await _gate_state(services, ended["id"])
    assert fields["closed"] == "offer_ended" and pending == {}

    expired = await create_offer(client, merchant, store["id"], stock=5)
    await services.db.offers.update_one({"_id": ObjectId(expired["id"])}, {"$set": {"expires_at": datetime.now(UTC)}})
    await _drop_gate(services, expired["id"])
    for user in users[:2]:
        resp = await client.post(f"/v1/offers/{expired['id']}/claim", headers=user.headers)
        assert resp.status_code == 410 and resp.json()["error"]["code"] == "offer_expired"
    assert await services.db.vouchers.count_documents(
        {"offer_id": {"$in": [ObjectId(ended["id"]), ObjectId(expired["id"])]}}) == 1


async def test_claims_survive_the_gate_vanishing_mid_sale(client, services):
    """The gate is dropped again and again while 200 users race for 20: exactly 20 vouchers."""
    merchant, store = await merchant_with_store(client)
    offer = await create_offer(client, merchant, store["id"], stock=20)
    users = await _accounts(services, 200)
    racing = asyncio.ensure_future(_claim_all(client, offer["id"], users))
    for _ in range(200):
        if racing.done():
            break
        await _drop_gate(services, offer["id"])
        await asyncio.sleep(0.005)
    responses = await racing
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 20, 409: 180}, statuses
    vouchers = await _check_truth(services, offer["id"], 20, [r for r in responses if r.status_code == 201])
    assert len(vouchers) == 20


@pytest.mark.slow
async def test_kill_the_api_and_flush_redis_mid_sale(client, services, settings):
    """The drill: a real uvicorn process is killed (SIGKILL) mid-sale, then Redis is flushed
    mid-sale under a restarted one. Never oversold, every 201 has its voucher, and once the sweep
    has given back the dead process's reservations the whole stock is claimable again."""
    stock = 40
    merchant, store = await merchant_with_store(client)
    offer = await create_offer(client, merchant, store["id"], stock=stock)
    users = await _accounts(services, 160)
    answered: list[Any] = []

    async def race(base_url: str, racers: list[Account], disrupt: Any) -> None:
        limits = httpx2.Limits(max_connections=32)
        async with httpx2.AsyncClient(base_url=base_url, timeout=15.0, limits=limits) as http:
            async def one(user: Account) -> None:
                try:
                    resp = await http.post(f"/v1/offers/{offer['id']}/claim", headers=user.headers)
                except httpx2.HTTPError:
                    return  # in flight when the process died: no answer, no promise
                answered.append(resp)

            racing = asyncio.gather(*(one(u) for u in racers))
            for _ in range(2000):  # bounded: until a few claims were answered, or the race is over
                if len(answered) >= 3 or racing.done():
                    break
                await asyncio.sleep(0.005)
            await disrupt()
            await racing

    # A transaction of the killed process holds the offer document until MongoDB reaps it
    # (transactionLifetimeLimitSeconds, 60 s by default): claims wait out write conflicts until then.
    # The drill shortens that wait, as a deployment may (see docs/operations.md).
    admin = services.mongo.admin
    lifetime = (await admin.command("getParameter", 1, transactionLifetimeLimitSeconds=1))[
        "transactionLifetimeLimitSeconds"]
    await admin.command("setParameter", 1, transactionLifetimeLimitSeconds=3)
    first = LiveServer(port=free_port())
    first.start()
    try:
        async def kill() -> None:
            assert first.process is not None
            first.process.kill()  # SIGKILL: no shutdown, claims cut mid-way
            first.process.wait(10)

        await race(first.base_url, users[:80], kill)
    finally:
        first.stop()
    won = [r for r in answered if r.status_code == 201]
    assert all(r.status_code in (201, 409) for r in answered), Counter(r.status_code for r in answered)
    vouchers = await _check_truth(services, offer["id"], stock, won)
    # the dead process's reservations hold slots until the sweep gives them back (as once their
    # TTL has passed); then the gate counts exactly the vouchers
    _, holders, pending = await _gate_state(services, offer["id"])
    await reconcile_gates(services, stale_after_ms=0)
    _, holders, pending = await _gate_state(services, offer["id"])
    assert pending == {} and holders == {str(v["user_id"]) for v in vouchers}

    second = LiveServer(port=free_port())
    second.start()
    try:
        answered.clear()

        async def flush() -> None:
            await services.redis.flushall()

        await race(second.base_url, users[80:120], flush)
        won += [r for r in answered if r.status_code == 201]
        assert all(r.status_code in (201, 409) for r in answered), Counter(r.status_code for r in answered)
        await _check_truth(services, offer["id"], stock, won)

        # recovery: the sweep gives back slots held by claims that died with the first process (as
        # once their TTL has passed), then everyone who has no voucher tries again
        await reconcile_gates(services, stale_after_ms=0)
        async with httpx2.AsyncClient(base_url=second.base_url, timeout=15.0,
                                      limits=httpx2.Limits(max_connections=32)) as http:
            retries = list(await asyncio.gather(*(http.post(f"/v1/offers/{offer['id']}/claim", headers=u.headers)
                                                  for u in users)))
    finally:
        second.stop()
        await admin.command("setParameter", 1, transactionLifetimeLimitSeconds=lifetime)
    assert all(r.status_code in (200, 201, 409) for r in retries), Counter(r.status_code for r in retries)
    vouchers = await _check_truth(services, offer["id"], stock, won)
    assert len(vouchers) == stock  # nothing lost: the whole stock was handed out
    by_user = {str(v["user_id"]): str(v["_id"]) for v in vouchers}
    for user, resp in zip(users, retries, strict=True):
        if user.id in by_user:
            assert resp.status_code in (200, 201) and resp.json()["id"] == by_user[user.id]
        else:
            assert resp.status_code == 409 and resp.json()["error"]["code"] == "sold_out"
