"""The follow graph: idempotent follow/unfollow, counts without drift, lists and cursors."""

from __future__ import annotations

import asyncio

from bson import ObjectId

from feed import follows
from tests.feed.helpers import all_ids, events, follow
from tests.support import register


async def _counts(client, account):
    resp = await client.get(f"/v1/users/{account.id}", headers=account.headers)
    return resp.json()["followers_count"], resp.json()["following_count"]


async def test_follow_unfollow_idempotent_with_counts(client, services):
    a, b = await register(client), await register(client)
    for _ in range(3):
        await follow(client, a, b)
    assert await _counts(client, b) == (1, 0)
    assert await _counts(client, a) == (0, 1)
    assert await services.db.follows.count_documents({"follower_id": ObjectId(a.id)}) == 1
    for _ in range(2):
        resp = await client.delete(f"/v1/users/{b.id}/follow", headers=a.headers)
        assert resp.status_code == 204
    assert await _counts(client, b) == (0, 0) and await _counts(client, a) == (0, 0)


async def test_follow_notifies_once(client, services):
    a, b = await register(client), await register(client)
    await follow(client, a, b)
    await follow(client, a, b)
    got = [e for e in await events(services, b, "notification") if e["data"]["kind"] == "follow"]
    assert len(got) == 1 and [u["id"] for u in got[0]["data"]["actors"]] == [a.id]


async def test_bad_follows(client, services):
    a = await register(client)
    resp = await client.post(f"/v1/users/{a.id}/follow", headers=a.headers)
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "cannot_follow_self"
    for path in (f"/v1/users/{'0' * 24}/follow", "/v1/users/nope/follow", f"/v1/stores/{'0' * 24}/follow"):
        resp = await client.post(path, headers=a.headers)
        assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found"
    deleted = await register(client)
    await services.accounts.delete_user(ObjectId(deleted.id))
    assert (await client.post(f"/v1/users/{deleted.id}/follow", headers=a.headers)).status_code == 404
    assert await services.db.follows.count_documents({"follower_id": ObjectId(a.id)}) == 0
    assert (await client.post(f"/v1/users/{a.id}/follow")).status_code == 401


async def test_concurrent_follow_unfollow_never_drifts(client, services):
    target = await register(client)
    fans = [await register(client) for _ in range(6)]
    tid = ObjectId(target.id)

    async def churn(fan):
        fid = ObjectId(fan.id)
        for i in range(6):
            if i % 2 == 0:
                await asyncio.gather(follows.follow(services, fid, "user", tid),
                                     follows.follow(services, fid, "user", tid))
            else:
                await asyncio.gather(follows.unfollow(services, fid, "user", tid),
                                     follows.unfollow(services, fid, "user", tid))
        await follows.follow(services, fid, "user", tid)

    await asyncio.gather(*(churn(f) for f in fans))
    real = await services.db.follows.count_documents({"target_type": "user", "target_id": tid})
    assert real == len(fans)
    assert (await _counts(client, target))[0] == len(fans)
    for fan in fans:
        assert (await _counts(client, fan))[1] == 1


async def test_store_follow_counts(client, services):
    merchant = await register(client, role="merchant")
    resp = await client.post("/v1/stores", json={"name": "S", "lat": 1.0, "lng": 2.0}, headers=merchant.headers)
    store = resp.json()
    fans = [await register(client) for _ in range(3)]
    await asyncio.gather(*(follow(client, f, store["id"], "stores") for f in fans for _ in range(2)))
    doc = await services.db.stores.find_one({"_id": ObjectId(store["id"])})
    assert doc["followers_count"] == 3
    assert await services.db.follows.count_documents(
        {"target_type": "store", "target_id": ObjectId(store["id"])}) == 3
    resp = await client.delete(f"/v1/stores/{store['id']}/follow", headers=fans[0].headers)
    assert resp.status_code == 204
    doc = await services.db.stores.find_one({"_id": ObjectId(store["id"])})
    assert doc["followers_count"] == 2
    assert (await _counts(client, fans[1]))[1] == 0  # following_count counts users only


async def test_follower_and_following_pages(client, services):
    star = await register(client)
    fans = [await register(client) for _ in range(7)]
    for fan in fans:
        await follow(client, fan, star)
    got = await all_ids(client, star, f"/v1/users/{star.id}/followers", limit=3)
    assert got == [f.id for f in reversed(fans)]
    await follow(client, fans[0], fans[1])
    following = await all_ids(client, star, f"/v1/users/{fans[0].id}/following", limit=1)
    assert following == [fans[1].id, star.id]
    resp = await client.get(f"/v1/users/{star.id}/followers", params={"limit": 2}, headers=star.headers)
    body = resp.json()
    assert set(body["items"][0]) == {"id", "username", "display_name", "role", "bio", "avatar_url",
                                     "followers_count", "following_count", "created_at"}
    tampered = body["next_cursor"][:-2] + ("AA" if not body["next_cursor"].endswith("AA") else "BB")
    for cursor in (tampered, "garbage", "x" * 600):
        resp = await client.get(f"/v1/users/{star.id}/followers", params={"cursor": cursor}, headers=star.headers)
        assert resp.status_code in (400, 422)
        assert resp.json()["error"]["code"] in ("invalid_cursor", "invalid")
    for limit in (0, 101, "x"):
        resp = await client.get(f"/v1/users/{star.id}/followers", params={"limit": limit}, headers=star.headers)
        assert resp.status_code == 422
    resp = await client.get(f"/v1/users/{'0' * 24}/followers", headers=star.headers)
    assert resp.status_code == 404


async def test_follows_are_bounded_per_kind_and_a_repeat_at_the_bound_is_fine(client, services, monkeypatch):
    """Every home read of a full timeline goes through the reader's follows: one account's are
    bounded (users, and separately stores), in the follow's own transaction."""
    from tests.offers.helpers import merchant_with_store

    monkeypatch.setattr(follows, "MAX_FOLLOWING", 3)
    fan = await register(client)
    people = [await register(client) for _ in range(4)]
    stores = [(await merchant_with_store(client))[1] for _ in range(4)]
    for person in people[:3]:
        await follow(client, fan, person)
    refused = await client.post(f"/v1/users/{people[3].id}/follow", headers=fan.headers)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "too_many_follows", refused.text
    await follow(client, fan, people[0])  # a repeat at the bound changes nothing, and is no error
    assert await _counts(client, fan) == (0, 3)
    for store in stores[:3]:  # stores have a bound of their own
        await follow(client, fan, store["id"], kind="stores")
    refused = await client.post(f"/v1/stores/{stores[3]['id']}/follow", headers=fan.headers)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "too_many_follows", refused.text
    assert (await client.delete(f"/v1/users/{people[1].id}/follow", headers=fan.headers)).status_code == 204
    await follow(client, fan, people[3])  # room again
    assert (await client.delete(f"/v1/stores/{stores[0]['id']}/follow", headers=fan.headers)).status_code == 204
    await follow(client, fan, stores[3]["id"], kind="stores")
    assert await _counts(client, fan) == (0, 3)
    assert await services.db.follows.count_documents({"follower_id": ObjectId(fan.id)}) == 6
    doc = await services.db.users.find_one({"_id": ObjectId(fan.id)})
    assert doc["stores_following_count"] == 3
    assert (await _counts(client, people[3]))[0] == 1  # followed once, after the refusal that never counted
