"""Offers: a merchant's time-limited deal at their store, with a push radius and optional stock.

Creating one screens its title and description against the word lists (a block word → 422
``content_rejected``), checks the store's limits (:mod:`offers.limits`) and writes the document
in one transaction. A live offer (``targeting: "pending"``) is pushed by
:func:`offers.targeting.start_push`, run once the answer is sent (:mod:`solomo.core.afterwards`):
targeted in the API process for a small audience, else registered
in the live index (:mod:`offers.live`, for followers who arrive later) and handed to the targeting
task; the maintenance sweep re-enqueues targeting still pending, so a lost
broker message delays the push but never loses it. An offer matching a review word is stored
``status: "pending_review"`` (``targeting: "held"``): not indexed, not pushed, not claimable,
until a moderator approves it (:mod:`moderation.offers`).

The stored ``status`` is ``live``, ``pending_review`` or ``removed`` (by a moderator; older
documents have none: live). The public status adds time and stock: see :func:`offer_status`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId

from checkins.stores import store_latlng, store_summary
from geo.geojson import geo_point
from moderation.screen import screen_text
from offers.audiences import Audience, audience_of_offer
from offers.limits import claim_offer_place
from offers.stores import owned_store
from solomo.accounts import Principal
from solomo.core.afterwards import after_response
from solomo.core.errors import Invalid, NotFound
from solomo.core.jsonio import rfc3339
from solomo.core.pagination import Position, after_filter, cut_page, lookahead
from solomo.core.services import Services
from solomo.core.timeutil import aware, ms_of
from solomo.core.txn import Txn, run_transaction

RADIUS_MIN_M, RADIUS_MAX_M = 50, 5000
MAX_LIFETIME = timedelta(days=90)
MIN_LIFETIME = timedelta(seconds=1)


def expires_ms(doc: dict[str, Any]) -> int:
    return ms_of(doc["expires_at"])


def is_live(doc: dict[str, Any], now: datetime | None = None) -> bool:
    return aware(doc["expires_at"]) > (now or datetime.now(UTC))


def sold_out(doc: dict[str, Any]) -> bool:
    return doc.get("stock") is not None and int(doc.get("claimed", 0)) >= int(doc["stock"])


HELD = ("pending_review", "removed", "ended")
"""Stored statuses of offers nobody may be pushed or claim."""


def stored_status(doc: dict[str, Any]) -> str:
    return str(doc.get("status", "live"))


def offer_status(doc: dict[str, Any], now: datetime | None = None) -> str:
    """The contract's status: ``pending_review``; ``ended`` (ended or removed); ``expired``;
    ``sold_out``; else ``live``."""
    stored = stored_status(doc)
    if stored == "pending_review":
        return "pending_review"
    if stored in ("removed", "ended"):
        return "ended"
    if not is_live(doc, now):
        return "expired"
    return "sold_out" if sold_out(doc) else "live"


def live_query(now: datetime) -> dict[str, Any]:
    """The MongoDB filter for offers still claimable at ``now``: not held (:data:`HELD`), not
    expired (:func:`is_live`) and not sold out (:func:`sold_out`)."""
    return {"expires_at": {"$gt": now}, "status": {"$nin": list(HELD)},
            "$expr": {"$or": [{"$eq": ["$stock", None]}, {"$lt": ["$claimed", "$stock"]}]}}


def offer_public(doc: dict[str, Any], store: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(doc["_id"]),
        "store": store_summary(store),
        "title": doc["title"],
        "description": doc.get("description") or "",
        "radius_m": doc["radius_m"],
        "stock": doc.get("stock"),
        "claimed": int(doc.get("claimed", 0)),
        **audience_of_offer(doc).fields(),  # who it is pushed to (older documents have none: followers)
        "status": offer_status(doc),
        "expires_at": rfc3339(doc["expires_at"]),
        "created_at": rfc3339(doc["created_at"]),
    }


async def create_offer(
    services: Services,
    owner_id: ObjectId,
    store_id: ObjectId | str,
    *,
    title: str,
    description: str | None,
    radius_m: int,
    expires_at: datetime,
    stock: int | None,
    audience: Audience | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Insert an offer for the owner's store and start its push (or hold it for review);
    returns ``(offer, store)``."""
    store = await owned_store(services, store_id, owner_id)
    title = title.strip()
    if not title:
        raise Invalid("title must not be blank")
    description = (description or "").strip()
    if not RADIUS_MIN_M <= radius_m <= RADIUS_MAX_M:
        raise Invalid(f"radius_m must be {RADIUS_MIN_M}..{RADIUS_MAX_M}")
    if stock is not None and stock < 1:
        raise Invalid("stock must be at least 1 (or null for unlimited)")
    now = datetime.now(UTC)
    expires_at = aware(expires_at).astimezone(UTC)
    if expires_at < now + MIN_LIFETIME:
        raise Invalid("expires_at must be in the future")
    if expires_at > now + MAX_LIFETIME:
        raise Invalid(f"an offer may run at most {MAX_LIFETIME.days} days")
    verdict, review_words = await screen_text(services, f"{title}\n{description}")
    held = verdict == "review"
    lat, lng = store_latlng(store)
    doc: dict[str, Any] = {
        "_id": ObjectId(),
        "store_id": store["_id"],
        "owner_id": owner_id,
        "title": title,
        "description": description,
        "radius_m": radius_m,
        "stock": stock,
        "claimed": 0,
        "pushed": 0,
        "location": geo_point(lat, lng),
        "expires_at": expires_at,
        "created_at": now,
        "created_ms": ms_of(now),
        "status": "pending_review" if held else "live",
        "targeting": "held" if held else "pending",
        **(audience or Audience("followers")).fields(),
    }
    if held:
        doc["flags"] = [{"source": "words", "words": review_words, "at": now}]

    async def insert(txn: Txn) -> None:
        await claim_offer_place(services, txn.session, store["_id"], now)
        await services.db.offers.insert_one(doc, session=txn.session)

    await run_transaction(services, insert)
    if held:
        return doc, store
    from offers.targeting import start_push  # imported here: targeting builds on this module

    # inline for a small audience, else the task; never raises. After the answer: the merchant's
    # 201 does not wait for the deliveries (half the request's time in the soak), and an API process
    # that dies before they run leaves the offer "pending" for the sweep, as a failed inline run does
    await after_response(lambda: start_push(services, doc, store), f"pushing offer {doc['_id']}")
    return doc, store


NOT_SHOWN = ("pending_review", "removed")
"""Stored statuses of an offer that nobody but its owner and moderators sees."""


async def get_offer(services: Services, offer_id: ObjectId,
                    viewer: Principal | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The offer and its store. With a ``viewer``, an offer held for review or removed
    (:data:`NOT_SHOWN`) is 404 to everyone but its owner and moderators."""
    doc = await services.db.offers.find_one({"_id": offer_id})
    if doc is None:
        raise NotFound("offer not found")
    if (viewer is not None and stored_status(doc) in NOT_SHOWN
            and viewer.id != doc.get("owner_id") and viewer.role != "moderator"):
        raise NotFound("offer not found")
    store = await services.db.stores.find_one({"_id": doc["store_id"]})
    if store is None:
        raise NotFound("offer not found")
    return doc, store


async def hydrate_offers(services: Services, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    store_ids = list({d["store_id"] for d in docs})
    stores = {s["_id"]: s async for s in services.db.stores.find({"_id": {"$in": store_ids}},
                                                                  {"name": 1, "location": 1})}
    return [offer_public(d, stores[d["store_id"]]) for d in docs if d["store_id"] in stores]


async def nearby_offers(
    services: Services, lat: float, lng: float, limit: int, after: Position | None
) -> tuple[list[dict[str, Any]], Position | None]:
    """Live offers (not expired, not sold out) whose radius covers the point, nearest first.

    Pages by ``(distance, id)``; returns public offers with ``distance_m`` and the next position.
    """
    now = datetime.now(UTC)
    pipeline: list[dict[str, Any]] = [
        {"$geoNear": {"near": geo_point(lat, lng), "key": "location",
                      "distanceField": "distance_m", "maxDistance": RADIUS_MAX_M, "spherical": True,
                      "query": live_query(now)}},
        {"$match": {"$expr": {"$lte": ["$distance_m", "$radius_m"]}}},
    ]
    if after is not None:
        pipeline.append({"$match": after_filter("distance_m", after, descending=False)})
    pipeline += [{"$sort": {"distance_m": 1, "_id": 1}}, {"$limit": lookahead(limit)}]
    rows = await (await services.db.offers.aggregate(pipeline)).to_list(None)
    docs, nxt = cut_page(rows, limit, lambda d: Position(float(d["distance_m"]), d["_id"]))
    items = await hydrate_offers(services, docs)
    dist_by_id = {str(d["_id"]): round(float(d["distance_m"]), 1) for d in docs}
    for item in items:
        item["distance_m"] = dist_by_id[item["id"]]
    return items, nxt
