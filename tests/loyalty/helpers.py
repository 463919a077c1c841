"""Partner stores, points and spend codes through the public API (and the ledger's own credit)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bson import ObjectId

from loyalty.ledger import credit
from solomo.core.txn import Txn, run_transaction_again_on_duplicate
from tests.offers.helpers import merchant_with_store
from tests.support import Account

PROGRAMME = {"enabled": True, "checkin_points": 10, "redemption_points": 5}


async def partner_store(client: Any, **settings: Any) -> tuple[Account, dict[str, Any]]:
    """A merchant and a store in the programme (10 points a check-in day, 5 a redemption)."""
    merchant, store = await merchant_with_store(client)
    resp = await client.put(f"/v1/stores/{store['id']}/loyalty", json={**PROGRAMME, **settings},
                            headers=merchant.headers)
    assert resp.status_code == 200, resp.text
    return merchant, store


async def grant(services: Any, user_id: str, store_id: str, points: int) -> dict[str, Any]:
    """Earns ``points`` through the ledger's credit (what check-ins and redemptions call), in a
    transaction of its own: a balance to spend without walking to the store."""
    store = await services.db.stores.find_one({"_id": ObjectId(store_id)})

    async def body(txn: Txn) -> dict[str, Any] | None:
        return await credit(services, txn, user_id=ObjectId(user_id), store=store, kind="checkin", points=points,
                            source_id=ObjectId(), once=f"test:{ObjectId()}", now=datetime.now(UTC))

    entry = await run_transaction_again_on_duplicate(services, body)
    assert entry is not None
    return entry


async def spend_code(client: Any, user: Account) -> str:
    resp = await client.post("/v1/me/points/spend-codes", headers=user.headers)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["code"])


async def charge(client: Any, merchant: Account, store_id: str, code: str, points: Any,
                 headers: dict[str, str] | None = None) -> Any:
    return await client.post(f"/v1/stores/{store_id}/points/charge", json={"code": code, "points": points},
                             headers={**merchant.headers, **(headers or {})})


async def balance(client: Any, user: Account) -> dict[str, int]:
    resp = await client.get("/v1/me/points", headers=user.headers)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


async def ledger_sum(services: Any, user_id: str) -> int:
    rows = await services.db.points_ledger.find({"user_id": ObjectId(user_id)}, {"points": 1}).to_list(None)
    return sum(int(r["points"]) for r in rows)


async def direct_codes(services: Any, user: Account, n: int) -> list[str]:
    """``n`` spend codes through the domain function (the route's own rate limit allows 30 a minute)."""
    from loyalty.spending import create_code

    return [str((await create_code(services, ObjectId(user.id)))["code"]) for _ in range(n)]
