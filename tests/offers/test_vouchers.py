"""Claims under concurrency, redemption at the counter, my vouchers, and the merchant's stats."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime

from bson import ObjectId

from offers.codes import normalize
from offers.vouchers import claim, redeem
from tests.offers.helpers import create_offer, follow_store, merchant_with_store
from tests.support import make_account, register


async def test_500_concurrent_claims_on_stock_100_give_exactly_100(client, services):
    merchant, store = await merchant_with_store(client)
    offer = await create_offer(client, merchant, store["id"], stock=100)
    sem = asyncio.Semaphore(50)

    async def account():
        async with sem:
            return await make_account(services, "user")

    users = await asyncio.gather(*(account() for _ in range(500)))
    responses = await asyncio.gather(*(client.post(f"/v1/offers/{offer['id']}/claim", headers=u.headers)
                                       for u in users))
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 100, 409: 400}, statuses
    assert all(r.json()["error"]["code"] == "sold_out" for r in responses if r.status_code == 409)
    vouchers = await services.db.vouchers.find({"offer_id": ObjectId(offer["id"])}).to_list(None)
    assert len(vouchers) == 100 and len({v["user_id"] for v in vouchers}) == 100
    assert len({v["code"] for v in vouchers}) == 100
    doc = await services.db.offers.find_one({"_id": ObjectId(offer["id"])})
    assert doc["claimed"] == 100
    got = await client.get(f"/v1/offers/{offer['id']}", headers=users[0].headers)
    assert got.json()["claimed"] == 100


async def test_one_voucher_per_user_even_when_racing(client, services):
    merchant, store = await merchant_with_store(client)
    offer = await create_offer(client, merchant, store["id"], stock=5)
    user = await register(client)
    responses = await asyncio.gather(*(client.post(f"/v1/offers/{offer['id']}/claim", headers=user.headers)
                                       for _ in range(10)))
    assert sorted(r.status_code for r in responses) == [200] * 9 + [201]
    assert len({r.json()["id"] for r in responses}) == 1
    voucher = responses[0].json()
    assert set(voucher) >= {"id", "offer_id", "store_id", "user_id", "code", "status", "expires_at", "redeemed_at"}
    assert voucher["status"] == "claimed" and voucher["user_id"] == user.id and voucher["store_id"] == store["id"]
    assert voucher["qr"].endswith(voucher["code"]) and len(voucher["code"]) == 11
    doc = await services.db.offers.find_one({"_id": ObjectId(offer["id"])})
    assert doc["claimed"] == 1


async def test_claiming_expired_sold_out_or_unknown(client, services):
    merchant, store = await merchant_with_store(client)
    offer = await create_offer(client, merchant, store["id"], stock=1)
    first, second = await register(client), await register(client)
    assert (await client.post(f"/v1/offers/{offer['id']}/claim", headers=first.headers)).status_code == 201
    resp = await client.post(f"/v1/offers/{offer['id']}/claim", headers=second.headers)
    assert resp.status_code == 409 and resp.json()["error"]["code"] == "sold_out"
    later = await create_offer(client, merchant, store["id"])
    await services.db.offers.update_one({"_id": ObjectId(later["id"])}, {"$set": {"expires_at": datetime.now(UTC)}})
    resp = await client.post(f"/v1/offers/{later['id']}/claim", headers=second.headers)
    assert resp.status_code == 410 and resp.json()["error"]["code"] == "offer_expired"
    for bad in ["nope", str(ObjectId())]:
        assert (await client.post(f"/v1/offers/{bad}/claim", headers=second.headers)).status_code == 404
    assert await services.db.vouchers.count_documents({"offer_id": ObjectId(later["id"])}) == 0


async def test_redemption_once_by_the_owner_at_that_store(client, services):
    merchant, store = await merchant_with_store(client)
    other_merchant, other_store = await merchant_with_store(client)
    offer = await create_offer(client, merchant, store["id"])
    user = await register(client)
    voucher = (await client.post(f"/v1/offers/{offer['id']}/claim", headers=user.headers)).json()
    url = f"/v1/stores/{store['id']}/redemptions"
    # not the owner of this store
    for acct in (user, other_merchant):
        resp = await client.post(url, json={"code": voucher["code"]}, headers=acct.headers)
        assert resp.status_code == 403
    # another store's owner, at their own store
    resp = await client.post(f"/v1/stores/{other_store['id']}/redemptions", json={"code": voucher["code"]},
                             headers=other_merchant.headers)
    assert resp.status_code == 403 and resp.json()["error"]["code"] == "forbidden"
    # the clerk types it in lower case with a space; two tills race
    typed = voucher["code"].lower().replace("-", " ")
    results = await asyncio.gather(*(client.post(url, json={"code": typed}, headers=merchant.headers)
                                     for _ in range(5)))
    assert sorted(r.status_code for r in results) == [200] + [409] * 4
    done = next(r for r in results if r.status_code == 200).json()["voucher"]
    assert done["status"] == "redeemed" and done["redeemed_at"] and done["id"] == voucher["id"]
    assert all(r.json()["error"]["code"] == "already_redeemed" for r in results if r.status_code == 409)
    mine = (await client.get("/v1/me/vouchers", headers=user.headers)).json()
    assert mine["items"][0]["status"] == "redeemed"
    for body in [{}, {"code": 123}, {"code": ""}, {"code": "x", "extra": 1}]:
        assert (await client.post(url, json=body, headers=merchant.headers)).status_code == 422


async def test_expired_voucher_and_unknown_codes(client, services):
    merchant, store = await merchant_with_store(client)
    offer = await create_offer(client, merchant, store["id"])
    user = await register(client)
    voucher = (await client.post(f"/v1/offers/{offer['id']}/claim", headers=user.headers)).json()
    await services.db.vouchers.update_one({"_id": ObjectId(voucher["id"])}, {"$set": {"expires_at": datetime.now(UTC)}})
    url = f"/v1/stores/{store['id']}/redemptions"
    resp = await client.post(url, json={"code": voucher["qr"]}, headers=merchant.headers)
    assert resp.status_code == 410 and resp.json()["error"]["code"] == "voucher_expired"
    mine = (await client.get("/v1/me/vouchers", headers=user.headers)).json()
    assert mine["items"][0]["status"] == "expired"
    resp = await client.post(url, json={"code": "ZZZZZ-ZZZZZ"}, headers=merchant.headers)
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "unknown_code"
    resp = await client.post(url, json={"code": "not a code at all"}, headers=merchant.headers)
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "unknown_code"


async def test_guessing_is_rate_limited_per_store(client, services):
    merchant, store = await merchant_with_store(client)
    offer = await create_offer(client, merchant, store["id"])
    user = await register(client)
    voucher = (await client.post(f"/v1/offers/{offer['id']}/claim", headers=user.headers)).json()
    url = f"/v1/stores/{store['id']}/redemptions"
    codes = []
    for _ in range(12):
        resp = await client.post(url, json={"code": "0000000000"}, headers=merchant.headers)
        codes.append(resp.status_code)
    assert codes[:10] == [404] * 10 and codes[10:] == [429, 429]
    resp = await client.post(url, json={"code": voucher["code"]}, headers=merchant.headers)
    assert resp.status_code == 429 and int(resp.headers["Retry-After"]) >= 1
    # another store is not affected
    m2, s2 = await merchant_with_store(client)
    resp = await client.post(f"/v1/stores/{s2['id']}/redemptions", json={"code": "0000000000"}, headers=m2.headers)
    assert resp.status_code == 404


async def test_my_vouchers_pages_newest_first(client):
    merchant, store = await merchant_with_store(client)
    user = await register(client)
    ids = []
    for _ in range(5):
        offer = await create_offer(client, merchant, store["id"])
        ids.append((await client.post(f"/v1/offers/{offer['id']}/claim", headers=user.headers)).json()["id"])
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/v1/me/vouchers", params=params, headers=user.headers)).json()
        seen += [v["id"] for v in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(ids))
    other = await register(client)
    assert (await client.get("/v1/me/vouchers", headers=other.headers)).json() == {"items": [], "next_cursor": None}
    assert (await client.get("/v1/me/vouchers", params={"cursor": "bad"}, headers=user.headers)).status_code == 400


async def test_store_stats_funnel(client, services):
    merchant, store = await merchant_with_store(client)
    fans = [await register(client) for _ in range(3)]
    for fan in fans:
        await follow_store(client, fan, store["id"])
    offer = await create_offer(client, merchant, store["id"], stock=10)
    vouchers = [(await client.post(f"/v1/offers/{offer['id']}/claim", headers=f.headers)).json() for f in fans[:2]]
    await client.post(f"/v1/stores/{store['id']}/redemptions", json={"code": vouchers[0]["code"]},
                      headers=merchant.headers)
    await services.db.offers.update_one({"_id": ObjectId(offer["id"])}, {"$max": {"pushed": 3}})
    resp = await client.get(f"/v1/stores/{store['id']}/stats", headers=merchant.headers)
    assert resp.status_code == 200
    body = resp.json()
    assert body["followers"] == 3 and body["checkins"] == 0 and body["unique_visitors"] == 0
    assert body["offers"] == [{"offer_id": offer["id"], "pushed": 3, "claimed": 2, "redeemed": 1}]
    assert (await client.get(f"/v1/stores/{store['id']}/stats", headers=fans[0].headers)).status_code == 403


async def test_domain_claim_and_redeem_directly(client, services):
    merchant, store = await merchant_with_store(client)
    offer = await create_offer(client, merchant, store["id"], stock=2)
    user = await register(client)
    v1, created = await claim(services, ObjectId(user.id), ObjectId(offer["id"]))
    v2, again = await claim(services, ObjectId(user.id), ObjectId(offer["id"]))
    assert created and not again and v1["_id"] == v2["_id"]
    done = await redeem(services, ObjectId(merchant.id), store["id"], v1["code"])
    assert done["status"] == "redeemed" and normalize(v1["code"]) == v1["code"]
