"""Helpers for the check-in tests: stores at exact distances, principals, backdating."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId
from geopy.distance import geodesic

from solomo.accounts import Principal
from tests.support import Account, random_point


def point_at(lat: float, lng: float, metres: float, bearing: float = 0.0) -> tuple[float, float]:
    """The point exactly ``metres`` (geodesic) from (lat, lng) along ``bearing`` degrees."""
    dest = geodesic(meters=metres).destination((lat, lng), bearing)
    return dest.latitude, dest.longitude


async def new_store(client: Any, merchant: Account, lat: float | None = None, lng: float | None = None,
                    **fields: Any) -> dict[str, Any]:
    if lat is None or lng is None:
        lat, lng = random_point()
    body = {"name": fields.pop("name", "Cafe"), "lat": lat, "lng": lng, **fields}
    resp = await client.post("/v1/stores", json=body, headers=merchant.headers)
    assert resp.status_code == 201, resp.text
    return resp.json()


async def checkin(client: Any, account: Account, store: dict[str, Any], lat: float | None = None,
                  lng: float | None = None, **fields: Any) -> Any:
    body = {"store_id": store["id"], "lat": store["lat"] if lat is None else lat,
            "lng": store["lng"] if lng is None else lng, **fields}
    return await client.post("/v1/checkins", json=body, headers=account.headers)


def principal(account: Account) -> Principal:
    return Principal(ObjectId(account.id), account.username, account.username, account.role)


async def backdate_checkins(services: Any, account: Account, delta: timedelta) -> None:
    """Move all of a user's check-ins (and their days) ``delta`` into the past."""
    async for doc in services.db.checkins.find({"user_id": ObjectId(account.id)}):
        at = doc["created_at"] - delta
        await services.db.checkins.update_one(
            {"_id": doc["_id"]}, {"$set": {"created_at": at, "day": at.astimezone(UTC).strftime("%Y-%m-%d")}})
    # the user's guard keeps their newest check-ins for the rules (checkins.checkin): they moved too
    guard = await services.db.checkin_guards.find_one({"_id": ObjectId(account.id)}, {"recent": 1})
    if guard and guard.get("recent"):
        recent = [{**entry, "created_at": entry["created_at"] - delta} for entry in guard["recent"]]
        await services.db.checkin_guards.update_one({"_id": guard["_id"]}, {"$set": {"recent": recent}})


async def counts(services: Any, account: Account, store_id: str | None = None) -> dict[str, Any]:
    uid = ObjectId(account.id)
    out: dict[str, Any] = {
        "checkins": await services.db.checkins.count_documents({"user_id": uid}),
        "posts": await services.db.posts.count_documents({"author_id": uid}),
    }
    if store_id:
        store = await services.db.stores.find_one({"_id": ObjectId(store_id)})
        out["store"] = (store["checkins_count"], store["unique_visitors"], store["mayor_id"])
        out["visitors"] = await services.db.store_visitors.count_documents({"store_id": ObjectId(store_id)})
    return out


def days_ago(n: float) -> datetime:
    return datetime.now(UTC) - timedelta(days=n)


def day_start_ago(n: int) -> datetime:
    """UTC midnight ``n`` days ago: a test that adds hours to it stays on that (UTC) calendar day,
    whatever the time the test runs (``days_ago(n) + 7 h`` crosses midnight after 17:00)."""
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=n)
