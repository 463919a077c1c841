"""Push subscriptions: MongoDB ``push_subscriptions``, one document per browser endpoint.

``{_id, endpoint (unique), user_id, token_id, p256dh, auth (base64url as the browser gave them),
created_at, updated_at}``. ``token_id`` is the session that subscribed (``tokens._id``): once it
is revoked or expired (signing out, a password change ending other sessions, account deletion) the
device gets nothing more, and the sender deletes the subscription (:func:`live_only`).

An endpoint belongs to one user: subscribing it again (another account signed in on the same
browser) moves it to the new user, so the previous one stops receiving on that device. A user
keeps at most ``push_max_subscriptions``; a new one beyond that replaces the oldest (old browsers
are rarely unsubscribed). Both writes run in one transaction.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, IndexModel

from push.endpoints import check_endpoint, check_keys
from solomo.core.services import Services
from solomo.core.txn import Txn, run_transaction

INDEXES: dict[str, list[IndexModel]] = {
    "push_subscriptions": [
        IndexModel([("endpoint", ASCENDING)], unique=True, name="endpoint_unique"),
        IndexModel([("user_id", ASCENDING), ("created_at", DESCENDING)], name="by_user_newest"),
    ],
}
"""Created at start-up by :mod:`solomo.db`."""


async def subscribe(services: Services, user_id: ObjectId, token_id: str, endpoint: str, p256dh: str,
                    auth: str) -> None:
    """Stores (or refreshes) the subscription after every check passed; raises 422 before any write."""
    check_endpoint(services.settings, endpoint)
    check_keys(p256dh, auth)
    limit = services.settings.push_max_subscriptions
    now = datetime.now(UTC)

    async def body(txn: Txn) -> None:
        coll = services.db.push_subscriptions
        await coll.update_one(
            {"endpoint": endpoint},
            {"$set": {"user_id": user_id, "token_id": token_id, "p256dh": p256dh, "auth": auth, "updated_at": now},
             "$setOnInsert": {"created_at": now}},
            upsert=True, session=txn.session)
        extra = await coll.find({"user_id": user_id}, {"_id": 1}, session=txn.session) \
            .sort([("created_at", DESCENDING), ("_id", DESCENDING)]).skip(limit).to_list(None)
        if extra:
            await coll.delete_many({"_id": {"$in": [d["_id"] for d in extra]}}, session=txn.session)

    await run_transaction(services, body)


async def unsubscribe(services: Services, user_id: ObjectId, endpoint: str) -> None:
    """Removes the user's subscription of that endpoint (nothing when there is none: idempotent)."""
    await services.db.push_subscriptions.delete_one({"endpoint": endpoint, "user_id": user_id})


async def subscribed_users(services: Services, user_ids: list[str]) -> set[str]:
    """Which of ``user_ids`` have at least one subscription."""
    oids = [ObjectId(u) for u in user_ids if ObjectId.is_valid(u)]
    if not oids:
        return set()
    found = await services.db.push_subscriptions.distinct("user_id", {"user_id": {"$in": oids}})
    return {str(u) for u in found}


async def of_users(services: Services, user_ids: list[str]) -> list[dict[str, Any]]:
    """Every subscription of ``user_ids``."""
    oids = [ObjectId(u) for u in user_ids if ObjectId.is_valid(u)]
    if not oids:
        return []
    return await services.db.push_subscriptions.find({"user_id": {"$in": oids}}).to_list(None)


async def drop(services: Services, sub: dict[str, Any]) -> None:
    """The push service said the subscription is gone (404/410): forget it (unless it was renewed
    with other keys meanwhile)."""
    await services.db.push_subscriptions.delete_one({"_id": sub["_id"], "p256dh": sub["p256dh"]})


async def live_only(services: Services, subs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``subs`` whose session is still valid and whose account is not suspended; those whose
    session ended are deleted (their device signed out). A suspended account's are kept, unused:
    suspension keeps the account's tokens, and its sockets close, so nothing reaches it — a push
    would — until a moderator lifts it."""
    token_ids = list({s["token_id"] for s in subs if s.get("token_id")})
    live: set[str] = set()
    if token_ids:
        cursor = services.db.tokens.find({"_id": {"$in": token_ids}, "expires_at": {"$gt": datetime.now(UTC)}},
                                         {"_id": 1})
        live = {str(d["_id"]) async for d in cursor}
    kept: list[dict[str, Any]] = []
    ended: list[dict[str, Any]] = []
    for sub in subs:
        (kept if sub.get("token_id") in live else ended).append(sub)
    if ended:
        await services.db.push_subscriptions.delete_many(
            {"_id": {"$in": [s["_id"] for s in ended]}, "token_id": {"$nin": list(live)}})
    owners = list({s["user_id"] for s in kept})
    if not owners:
        return []
    active = {d["_id"] async for d in services.db.users.find(
        {"_id": {"$in": owners}, "status": {"$nin": ["suspended", "deleted"]}}, {"_id": 1})}
    return [s for s in kept if s["user_id"] in active]


async def for_user(services: Services, user_id: ObjectId) -> list[dict[str, Any]]:
    return await services.db.push_subscriptions.find({"user_id": user_id}).sort("created_at", DESCENDING) \
        .to_list(None)
