"""Who an offer is for: its audience, chosen by the merchant, and the rule deciding membership.

* ``followers`` (the default): the store's followers;
* ``visitors``: users who checked in at the store in the last ``audience_days`` days
  (:data:`DAYS_MIN` .. :data:`DAYS_MAX`, default :data:`DAYS_DEFAULT`);
* ``regulars``: users with at least ``min_visits`` distinct check-in days at the store in the last
  :data:`REGULAR_WINDOW_DAYS` days (:data:`VISITS_MIN` .. :data:`VISITS_MAX`, default
  :data:`VISITS_DEFAULT`: one visit is a visitor, and 90 is every day of the window). Days are the
  store's local days, as in its insights and the loyalty ledger (:mod:`checkins.localtime`): the
  window is its last 90 local days, today included, and a check-in's day is computed from its
  ``created_at`` in the query (:func:`checkins.localtime.local_day_expr`; the check-in's stored
  ``day`` is the UTC day, which the mayor still counts), so a time zone change applies at once and
  no stored check-in needs rewriting;
* ``nearby``: anyone near the store; a non-follower's share of those is limited by
  :mod:`offers.nearbycap` (at most 3 a day, none after an opt-out).

Membership is only ever asked about *candidates*: the users with a fresh position within the
offer's radius (targeting) or the one user who just arrived (:mod:`offers.arrival`). So the
queries are ``$in`` lists of at most :data:`CHUNK` users against the indexes ``follows``
``(follower_id, target_type, target_id)`` and ``checkins`` ``(user_id, store_id, created_at)``
(:data:`MEMBERSHIP_INDEX`: one short range per candidate), never a scan of the store's history.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, cast

from bson import ObjectId

from checkins.localtime import day_start_utc, local_day_expr, today
from solomo.core.errors import Invalid
from solomo.core.ids import maybe_id
from solomo.core.services import Services

Kind = Literal["followers", "visitors", "regulars", "nearby"]
KINDS: tuple[Kind, ...] = ("followers", "visitors", "regulars", "nearby")
DAYS_MIN, DAYS_MAX, DAYS_DEFAULT = 1, 365, 90
VISITS_MIN, VISITS_MAX, VISITS_DEFAULT = 2, 90, 3
REGULAR_WINDOW_DAYS = 90
CHUNK = 1000
MEMBERSHIP_INDEX = "by_user_store"
"""``checkins (user_id, store_id, created_at)`` (checkins/indexes.py): membership reads it."""
"""Candidates per ``$in`` query (chunks are read concurrently)."""


@dataclass(frozen=True)
class Audience:
    kind: Kind
    days: int | None = None
    """visitors: the look-back in days."""
    min_visits: int | None = None
    """regulars: distinct check-in days needed in the last :data:`REGULAR_WINDOW_DAYS`."""

    def fields(self) -> dict[str, Any]:
        """What the offer document (and the Offer shape) stores."""
        out: dict[str, Any] = {"audience": self.kind}
        if self.days is not None:
            out["audience_days"] = self.days
        if self.min_visits is not None:
            out["min_visits"] = self.min_visits
        return out


def audience_of(kind: str | None, audience_days: int | None = None, min_visits: int | None = None) -> Audience:
    """The validated audience (422 ``invalid`` naming the bad field). A parameter of another
    audience is refused rather than ignored, so a client never believes it targeted something it
    did not."""
    kind = kind or "followers"
    if kind not in KINDS:
        raise Invalid(f"audience must be one of {', '.join(KINDS)}")
    if audience_days is not None and kind != "visitors":
        raise Invalid("audience_days applies to the visitors audience only")
    if min_visits is not None and kind != "regulars":
        raise Invalid("min_visits applies to the regulars audience only")
    if kind == "visitors":
        days = DAYS_DEFAULT if audience_days is None else audience_days
        if not DAYS_MIN <= days <= DAYS_MAX:
            raise Invalid(f"audience_days must be {DAYS_MIN}..{DAYS_MAX}")
        return Audience("visitors", days=days)
    if kind == "regulars":
        visits = VISITS_DEFAULT if min_visits is None else min_visits
        if not VISITS_MIN <= visits <= VISITS_MAX:
            raise Invalid(f"min_visits must be {VISITS_MIN}..{VISITS_MAX} (check-in days in the last "
                          f"{REGULAR_WINDOW_DAYS} days)")
        return Audience("regulars", min_visits=visits)
    return Audience(cast(Kind, kind))


def audience_of_offer(doc: dict[str, Any]) -> Audience:
    """The audience stored on an offer (older offers have none: followers)."""
    kind = str(doc.get("audience") or "followers")
    if kind == "visitors":
        return Audience("visitors", days=int(doc.get("audience_days") or DAYS_DEFAULT))
    if kind == "regulars":
        return Audience("regulars", min_visits=int(doc.get("min_visits") or VISITS_DEFAULT))
    return Audience("nearby" if kind == "nearby" else "followers")


def followers_store(doc: dict[str, Any]) -> str | None:
    """The id of the store whose followers are the offer's audience (None for any other audience):
    the live index keeps it, so a location message judges who is not a follower without reading
    the offer (:mod:`offers.arrival`)."""
    return str(doc["store_id"]) if audience_of_offer(doc).kind == "followers" else None


def since(audience: Audience, store: dict[str, Any], now: datetime | None = None) -> datetime:
    """Start of the check-in window of a visitors audience (``days`` × 24 hours ago: no day is
    counted) or a regulars audience (the start of the store-local day 89 days before today)."""
    now = now or datetime.now(UTC)
    if audience.kind == "visitors" and audience.days:
        return now - timedelta(days=audience.days)
    return day_start_utc(store, today(store, now) - timedelta(days=REGULAR_WINDOW_DAYS - 1))


def _oids(user_ids: list[str]) -> list[ObjectId]:
    return [oid for oid in (maybe_id(u) for u in user_ids) if oid is not None]


async def _chunked(oids: list[ObjectId], read: Any) -> set[str]:
    found = await asyncio.gather(*(read(oids[i:i + CHUNK]) for i in range(0, len(oids), CHUNK)))
    return {uid for part in found for uid in part}


async def followers_among(services: Services, store_id: ObjectId, user_ids: list[str]) -> set[str]:
    """Which of ``user_ids`` follow the store."""
    async def read(chunk: list[ObjectId]) -> list[str]:
        cursor = services.db.follows.find(
            {"follower_id": {"$in": chunk}, "target_type": "store", "target_id": store_id},
            {"follower_id": 1, "_id": 0})
        return [str(d["follower_id"]) for d in await cursor.to_list(None)]

    return await _chunked(_oids(user_ids), read)


async def visit_days_among(services: Services, store: dict[str, Any], start: datetime, user_ids: list[str],
                           min_days: int, now: datetime | None = None) -> set[str]:
    """Which of ``user_ids`` checked in at the store on at least ``min_days`` distinct store-local
    days since ``start`` (1: visitors). The match is on the index's prefix, then grouped per user."""
    day = local_day_expr(store, "created_at", start, now or datetime.now(UTC))

    async def read(chunk: list[ObjectId]) -> list[str]:
        pipeline: list[dict[str, Any]] = [
            {"$match": {"store_id": store["_id"], "created_at": {"$gte": start}, "user_id": {"$in": chunk}}},
            {"$project": {"_id": 0, "user_id": 1, "day": day}},
            {"$group": {"_id": "$user_id", "days": {"$addToSet": "$day"}}},
            {"$match": {"$expr": {"$gte": [{"$size": "$days"}, min_days]}}},
            {"$project": {"_id": 1}},
        ]
        # by_user_store: one short index range per candidate (its check-ins at this store in the
        # window); the store-first index would scan the store's whole window for every chunk
        rows = await (await services.db.checkins.aggregate(pipeline, hint=MEMBERSHIP_INDEX)).to_list(None)
        return [str(r["_id"]) for r in rows]

    return await _chunked(_oids(user_ids), read)


async def members_among(services: Services, store: dict[str, Any], audience: Audience, user_ids: list[str],
                        now: datetime | None = None) -> set[str]:
    """Which of the candidates ``user_ids`` the audience of ``store`` (its ``_id`` and ``timezone``)
    holds. ``nearby`` holds them all: its limits (cap, opt-out) are applied to the reachable ones
    only, by :mod:`offers.nearbycap`."""
    if not user_ids:
        return set()
    if audience.kind == "followers":
        return await followers_among(services, store["_id"], user_ids)
    if audience.kind == "visitors":
        return await visit_days_among(services, store, since(audience, store, now), user_ids, 1, now)
    if audience.kind == "regulars":
        return await visit_days_among(services, store, since(audience, store, now), user_ids,
                                      audience.min_visits or VISITS_DEFAULT, now)
    return set(user_ids)
