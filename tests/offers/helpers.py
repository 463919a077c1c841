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
