"""Stores, follows and offers through the public API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.support import Account, random_point, register


async def merchant_with_store(client: Any, lat: float | None = None, lng: float | None = None
                              ) -> tuple[Account, dict[str, Any]]:
    if lat is None or lng is None:
        lat, lng = random_point()
    merchant = await register(client, role="merchant")
    resp = await client.post("/v1/stores", json={"name": "Tea House", "lat": lat, "lng": lng}, headers=merchant.headers)
    assert resp.status_code == 201, resp.text
    return merchant, resp.json()


async def follow_store(client: Any, acct: Account, store_id: str) -> None:
    resp = await client.post(f"/v1/stores/{store_id}/follow", headers=acct.headers)
    assert resp.status_code == 204, resp.text


def in_minutes(minutes: float) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


async def create_offer(client: Any, merchant: Account, store_id: str, **fields: Any) -> dict[str, Any]:
    body = {"title": "Half-price tea", "radius_m": 500, "expires_at": in_minutes(30), **fields}
    resp = await client.post(f"/v1/stores/{store_id}/offers", json=body, headers=merchant.headers)
    assert resp.status_code == 201, resp.text
    return resp.json()


async def offer_to_a_follower(client: Any, services: Any) -> tuple[Account, Account, dict[str, Any], Any]:
    """A store's offer (300 m) and a follower of the store who is not online: ``(merchant, fan,
    offer, deliver)``, where ``deliver(users)`` takes ``[(user id, distance)]`` through the
    delivery path every targeting and arrival takes, and returns how many were sent."""
    from bson import ObjectId

    from offers.targeting import send_offer

    merchant, store = await merchant_with_store(client)
    fan = await register(client)
    await follow_store(client, fan, store["id"])
    offer = await create_offer(client, merchant, store["id"], radius_m=300)

    async def deliver(users: list[tuple[str, float]]) -> int:
        doc = await services.db.offers.find_one({"_id": ObjectId(offer["id"])})
        store_doc = await services.db.stores.find_one({"_id": ObjectId(store["id"])})
        return int(await send_offer(services, doc, store_doc, users))

    return merchant, fan, offer, deliver
