"""The audience preview: how many users an audience holds, and how many of them an offer would
reach now.

``size``: followers → the store's ``followers_count``; visitors and regulars → distinct users from
one aggregation over the store's check-ins in the window, counting store-local days as
:mod:`offers.audiences` does (the ``(store_id, created_at, user_id, day)`` index covers it),
reading at most :data:`SCAN_CAP` check-ins, newest first — beyond that ``capped`` is true and
``size`` is a lower bound; nearby → the users with a fresh position in the radius.

Positions here are *public* ones (the fix snapped to the grid:
:func:`geo.positions.users_within_public`): the preview is a figure shown to the merchant, and one
made of fixes, asked at radius after radius from store position after store position, would locate
a user to the metre.

``online_in_radius``: of the users with a fresh position in the radius (the nearest
:data:`CANDIDATE_CAP`), those reachable now (an open socket, or a Web Push subscription) and in
the audience — the same test as targeting (:mod:`offers.targeting`), without the nearby cap's
places (a preview takes none), but without the users who opted out of unfollowed stores' offers.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from bson import ObjectId

from checkins.localtime import local_day_expr
from geo.positions import users_within_public
from offers.audiences import Audience, followers_among, since
from offers.nearbycap import opted_out
from offers.offers import RADIUS_MAX_M, RADIUS_MIN_M
from offers.stores import owned_store
from offers.targeting import reachable_members
from solomo.core.errors import Invalid
from solomo.core.services import Services

DEFAULT_RADIUS_M = 500
SCAN_CAP = 200_000
"""Check-ins one size count reads at most (a store with more in its window gets a lower bound)."""
CANDIDATE_CAP = 20_000
"""Positioned users near the store one preview looks at, nearest first."""


async def preview(services: Services, owner_id: ObjectId, store_id: str, audience: Audience,
                  radius_m: int | None) -> dict[str, Any]:
    store = await owned_store(services, store_id, owner_id)
    radius = radius_m if radius_m is not None else await _last_radius(services, store["_id"])
    if not RADIUS_MIN_M <= radius <= RADIUS_MAX_M:
        raise Invalid(f"radius_m must be {RADIUS_MIN_M}..{RADIUS_MAX_M}")
    lng, lat = store["location"]["coordinates"]
    near = await users_within_public(services.redis, lat, lng, radius, services.settings.position_ttl_s)
    (size, capped), online = await asyncio.gather(
        _size(services, store, audience, len(near)), _reachable(services, store, audience, near[:CANDIDATE_CAP]))
    return {"size": size, "online_in_radius": online, "radius_m": radius, "capped": capped}


async def _last_radius(services: Services, store_id: ObjectId) -> int:
    last = await services.db.offers.find_one({"store_id": store_id}, {"radius_m": 1}, sort=[("_id", -1)])
    return int(last["radius_m"]) if last else DEFAULT_RADIUS_M


async def _size(services: Services, store: dict[str, Any], audience: Audience, near: int) -> tuple[int, bool]:
    if audience.kind == "followers":
        return int(store.get("followers_count", 0)), False
    if audience.kind == "nearby":
        return near, False
    min_days = (audience.min_visits or 1) if audience.kind == "regulars" else 1
    now = datetime.now(UTC)
    start = since(audience, store, now)
    pipeline: list[dict[str, Any]] = [
        {"$match": {"store_id": store["_id"], "created_at": {"$gte": start}}},
        {"$sort": {"created_at": -1}},
        {"$limit": SCAN_CAP + 1},
        {"$project": {"_id": 0, "user_id": 1, "day": local_day_expr(store, "created_at", start, now)}},
        {"$group": {"_id": "$user_id", "days": {"$addToSet": "$day"}, "n": {"$sum": 1}}},
        {"$match": {"$expr": {"$gte": [{"$size": "$days"}, min_days]}}},
        {"$group": {"_id": None, "users": {"$sum": 1}, "scanned": {"$sum": "$n"}}},
    ]
    rows = await (await services.db.checkins.aggregate(pipeline)).to_list(None)
    if not rows:
        return 0, False
    # ``scanned`` counts only the kept users' check-ins: capped is judged on the window's count
    scanned = await services.db.checkins.count_documents(
        {"store_id": store["_id"], "created_at": {"$gte": start}}, limit=SCAN_CAP + 1)
    return int(rows[0]["users"]), scanned > SCAN_CAP


async def _reachable(services: Services, store: dict[str, Any], audience: Audience,
                     near: list[tuple[str, float]]) -> int:
    reach = await reachable_members(services, store, audience, [uid for uid, _ in near])
    if reach and audience.kind == "nearby":
        followers = await followers_among(services, store["_id"], list(reach))
        reach -= await opted_out(services, [u for u in reach if u not in followers])
    return len(reach)
