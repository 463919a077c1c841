"""Checking in: the three rules, the check-in and its post in one transaction, then the fan-out.

Order of work for ``POST /v1/checkins``:

1. Load the store and apply the range rule (geodesic distance; no write needed to refuse).
2. Build the post (text validation, moderation screening, mentions) — still nothing written.
3. Queue both for this process's group commit (:mod:`checkins.groupcommit`), which commits the
   check-ins that arrive together in one MongoDB transaction. For each one, in it:

   a. the cooldown and travel rules, on the user's history kept by their ``checkin_guards``
      document (its newest check-ins), which the check-in writes: two concurrent check-ins of
      one user conflict on it, and MongoDB aborts the later one's transaction with a transient
      write conflict; it re-runs, now seeing the first one's check-in. The rules are thus
      decided on a serial history. A refused check-in writes nothing; the group goes on;
   b. insert the check-in and its post (``fanout: "pending"``: the outbox);
   c. count the visit (``checkins_count``; ``unique_visitors`` via a unique ``store_visitors``
      row, and the day's rollup, :mod:`checkins.visitdays`);
   d. decide the mayor — from the store's ``seat`` when it can tell, else by recounting the 60-day
      standings (:mod:`checkins.mayor`) — and write it with the counters;
   e. earn loyalty points for the store-local day's first check-in (:mod:`loyalty.earning`).

4. After the commit, enqueue the post's fan-out (``Txn.after_commit``; the outbox sweep re-sends
   it if this fails).

A refused check-in (any ``ApiError``) writes nothing of it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from bson import ObjectId
from redis.exceptions import RedisError

from checkins import groupcommit, rules, storeviews
from checkins.stores import get_store, store_latlng
from feed.posts import build_post
from geo.distance import geodesic_m
from geo.geojson import geo_point
from media.attach import attachable, parse_media_ids
from offers.arrival import forget_judged
from solomo.core.afterwards import after_response
from solomo.core.errors import Invalid
from solomo.core.idempotency import running_reservation
from solomo.core.jsonio import rfc3339

if TYPE_CHECKING:
    from solomo.accounts import Principal
    from solomo.core.services import Services

log = logging.getLogger("solomo.checkins")


@dataclass(frozen=True)
class CheckinResult:
    checkin: dict[str, Any]
    post: dict[str, Any]
    store: dict[str, Any]


def utc_day(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d")


def default_text(store_name: str) -> str:
    """``checked in at <store>``, with the name's ``#`` and ``@`` defused: text the user did not type
    must not open topics, mention (and notify) people, or trip the topic syntax rules."""
    return "checked in at " + store_name.replace("#", "\u266f").replace("@", "(at)")


def checkin_public(doc: dict[str, Any]) -> dict[str, Any]:
    """The contract's Checkin (plus ``accuracy_m`` and ``post_id``) as its own user sees it: with
    the device fix."""
    lng, lat = doc["location"]["coordinates"]
    return {
        "id": str(doc["_id"]),
        "user_id": str(doc["user_id"]),
        "store_id": str(doc["store_id"]),
        "lat": lat,
        "lng": lng,
        "distance_m": doc["distance_m"],
        "accuracy_m": doc.get("accuracy_m"),
        "post_id": str(doc["post_id"]) if doc.get("post_id") else None,
        "created_at": rfc3339(doc["created_at"]),
    }


def checkin_seen_by_others(doc: dict[str, Any], store_point: tuple[float, float] | None) -> dict[str, Any]:
    """The Checkin for anyone but its user (contract: Privacy): located at the store (``None`` if
    the store is gone), no distance or accuracy, the time to the second."""
    lat, lng = store_point if store_point is not None else (None, None)
    return {**checkin_public(doc), "lat": lat, "lng": lng, "distance_m": None, "accuracy_m": None,
            "created_at": rfc3339(doc["created_at"], timespec="seconds")}


async def check_in(
    services: Services,
    user: Principal,
    store_id: ObjectId | str,
    lat: float,
    lng: float,
    *,
    accuracy_m: float = rules.ACCURACY_DEFAULT_M,
    text: str | None = None,
    now: datetime | None = None,
    media_ids: Sequence[str] | None = None,
) -> CheckinResult:
    """Check ``user`` in at a store, or raise ``too_far`` / ``checkin_too_soon`` / ``impossible_travel``.

    ``now`` exists for tests and tools; the API always uses the current time.
    """
    if not 0 < accuracy_m <= rules.ACCURACY_MAX_M:
        raise Invalid(f"accuracy_m must be > 0 and at most {rules.ACCURACY_MAX_M:.0f}")
    store = await get_store(services, store_id)
    store_lat, store_lng = store_latlng(store)
    distance = geodesic_m(lat, lng, store_lat, store_lng)
    rules.check_range(distance, store["checkin_radius_m"], accuracy_m)

    now = (now or datetime.now(UTC)).astimezone(UTC)
    now = now.replace(microsecond=now.microsecond // 1000 * 1000)  # MongoDB keeps milliseconds
    checkin_id = ObjectId()
    media = await attachable(services, user.id, parse_media_ids(media_ids))
    post = await build_post(services, user, text if text is not None else default_text(store["name"]),
                            store=store, kind="checkin", checkin_id=checkin_id, created_at=now, media=media)
    checkin: dict[str, Any] = {
        "_id": checkin_id,
        "user_id": user.id,
        "store_id": store["_id"],
        "location": geo_point(lat, lng),
        "distance_m": round(distance, 1),
        "accuracy_m": accuracy_m,
        "post_id": post["_id"],
        "day": utc_day(now),
        "created_at": now,
    }
    here = rules.Fix(lat, lng, accuracy_m, now)
    # committed with the other check-ins of this moment, in one transaction (see the module's note)
    challenger = store.get("mayor_id") not in (None, user.id)  # the seat's decision will count their days
    store = await groupcommit.writer(services).submit(
        groupcommit.Pending(checkin, post, here, running_reservation(), challenger))
    # its count (and maybe its mayor) moved
    await storeviews.invalidate_quietly(services, [store["_id"]], f"check-in by {user.id}")
    # not needed by the answer (the judgements matter at the user's next location)
    await after_response(lambda: _judge_offers_again(services, user.id), f"offer judgements of {user.id}")
    return CheckinResult(checkin, post, store)


async def _judge_offers_again(services: Services, user_id: ObjectId) -> None:
    """A check-in can make the user a store's visitor or regular (offer audiences): the live offers
    judged "not for this user" are judged again at their next location. Best effort after the
    commit: a lost forget only delays those offers until the judgements expire (10 minutes)."""
    try:
        await forget_judged(services, user_id)
    except (RedisError, OSError) as exc:
        log.warning("check-in by %s: offer judgements not forgotten: %s", user_id, exc)
